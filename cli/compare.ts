/**
 * `deno task compare`: the chapter's comparison — fine-tuning vs training from scratch with the
 * same flags — and one chart of their test-accuracy curves. `--lr a,b,c` sweeps fine-tuning
 * learning rates (exercise 2); `--scratch-lr` sets the scratch run's.
 * @module
 */
import {
  atomicWrite,
  curvesSvg,
  defaultRunConfig,
  type EpochMetrics,
  RUN_PARAMS,
} from "@webtune/core";
import { denoFs } from "@webtune/data/deno_fs";
import { defineCommand, EXIT_INTERRUPTED, type Flags, main, runConfigFromFlags } from "./shell.ts";
import type { KernelChoice } from "@webtune/core";
import { sourceWeights } from "./flags.ts";
import { runTrain, timestamp, trainFlags } from "./train.ts";

const COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"];

const { resume: _resume, ...finetuneFlags } = trainFlags("finetune");
const lr = RUN_PARAMS.lr;

/** `compare`'s flags: fine-tuning's, with the learning rates as lists (one run each). */
const FLAGS: Flags = {
  ...finetuneFlags,
  lr: {
    kind: "numbers",
    min: lr.min,
    default: String(lr.default.finetune),
    help: "fine-tuning lr, or a comma list to sweep",
  },
  "scratch-lr": {
    kind: "numbers",
    min: lr.min,
    default: String(lr.default.scratch),
    help: "scratch lr, or a comma list",
  },
  "param-group": { ...finetuneFlags["param-group"], help: "param groups for the fine-tuning runs" },
};

/** The `compare` command. */
export const compareCommand = defineCommand({
  name: "compare",
  synopsis: "[options]",
  description: "Fine-tune and train from scratch with the same flags; chart both.",
  flags: FLAGS,
  async run({ values }) {
    const out = String(values.out ?? `runs/${timestamp()}-compare`);
    const runs = [
      ...(values.lr as number[]).map((lr) => ({ task: "finetune" as const, lr })),
      ...(values["scratch-lr"] as number[]).map((lr) => ({ task: "scratch" as const, lr })),
    ];
    const results: { name: string; dir: string; epochs: EpochMetrics[] }[] = [];
    for (const { task, lr } of runs) {
      // --param-group is the fine-tuning runs'; scratch keeps the chapter's one group.
      const flags = task === "scratch" ? { ...values, "param-group": undefined } : values;
      const config = { ...runConfigFromFlags(task, defaultRunConfig(task), flags), lr };
      const name = `${task} lr=${lr}`;
      const dir = `${out}/${task}-lr${lr}`;
      console.log(`== ${name} -> ${dir}`);
      const r = await runTrain({
        task,
        config,
        data: String(values.data),
        weights: task === "finetune" ? sourceWeights(values.weights, config.arch) : undefined,
        out: dir,
        backend: values.backend as "webgpu" | "cpu",
        kernels: values.kernels as KernelChoice,
        json: Boolean(values.json),
      });
      results.push({ name, dir, epochs: r.epochs });
      if (r.stopped) return EXIT_INTERRUPTED;
    }
    const svg = curvesSvg(
      results.map((r, i) => ({
        name: r.name,
        values: r.epochs.map((e) => e.test_acc),
        color: COLORS[i % COLORS.length],
        dash: r.name.startsWith("scratch") ? "6 3" : undefined,
      })),
      { title: "test accuracy: fine-tuning vs scratch", yMax: 1, width: 560 },
    );
    await atomicWrite(denoFs, `${out}/compare.svg`, svg);
    await atomicWrite(
      denoFs,
      `${out}/compare.json`,
      JSON.stringify(
        results.map((r) => ({
          name: r.name,
          dir: r.dir,
          test_acc: r.epochs.map((e) => e.test_acc),
        })),
        null,
        2,
      ),
    );
    for (const r of results) {
      console.log(
        `${r.name.padEnd(24)} test acc ${r.epochs.map((e) => e.test_acc.toFixed(2)).join(" ")}`,
      );
    }
    console.log(`wrote ${out}/compare.svg`);
  },
});

if (import.meta.main) await main(compareCommand);
