/**
 * `deno task compare`: the chapter's comparison — fine-tuning vs training from scratch with the
 * same flags — and one chart of their test-accuracy curves. `--lr a,b,c` sweeps fine-tuning
 * learning rates (exercise 2); `--scratch-lr` sets the scratch run's.
 * @module
 */
import { curvesSvg, defaultRunConfig, type EpochMetrics } from "@webtune/core";
import { type FlagSpec, parseFlags, usage, UsageError } from "./args.ts";
import { atomicWrite } from "./atomic_write.ts";
import { EXIT_INTERRUPTED, ExitCode, main } from "./main.ts";
import { configFromFlags, runTrain, trainFlags } from "./train.ts";

const COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"];

function flags(): Record<string, FlagSpec> {
  const base = trainFlags("finetune");
  delete base.resume;
  return {
    ...base,
    lr: {
      type: "string",
      default: String(defaultRunConfig("finetune").lr),
      help: "fine-tuning lr, or a comma list to sweep",
    },
    "scratch-lr": {
      type: "string",
      default: String(defaultRunConfig("scratch").lr),
      help: "scratch lr, or a comma list",
    },
    "param-group": {
      type: "string",
      default: "true",
      help: "param groups for the fine-tuning runs",
    },
  };
}

function lrList(raw: unknown, name: string): number[] {
  const list = String(raw).split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (list.length === 0 || list.some((x) => !Number.isFinite(x) || x < 0)) {
    throw new UsageError(
      `webtune compare: --${name} expects numbers separated by commas, got ${raw}`,
    );
  }
  return list;
}

async function compareCommand(args: string[]): Promise<void> {
  const spec = flags();
  const { values } = parseFlags("compare", args, spec);
  if (values.help) {
    console.log(
      usage(
        "compare",
        "[options]",
        "Fine-tune and train from scratch with the same flags; chart both.",
        spec,
      ),
    );
    return;
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace(
    "T",
    "-",
  );
  const out = String(values.out ?? `runs/${stamp}-compare`);
  const runs: { task: "finetune" | "scratch"; lr: number }[] = [
    ...lrList(values.lr, "lr").map((lr) => ({ task: "finetune" as const, lr })),
    ...lrList(values["scratch-lr"], "scratch-lr").map((lr) => ({ task: "scratch" as const, lr })),
  ];
  const results: { name: string; dir: string; epochs: EpochMetrics[] }[] = [];
  for (const { task, lr } of runs) {
    const config = configFromFlags(task, values, lr);
    if (task === "scratch") config.paramGroup = false;
    const name = `${task} lr=${lr}`;
    const dir = `${out}/${task}-lr${lr}`;
    console.log(`== ${name} -> ${dir}`);
    const r = await runTrain({
      task,
      config,
      data: String(values.data),
      weights: task === "finetune" ? String(values.weights) : undefined,
      out: dir,
      backend: String(values.backend) as "webgpu" | "cpu",
      json: Boolean(values.json),
    });
    results.push({ name, dir, epochs: r.epochs });
    if (r.stopped) throw new ExitCode(EXIT_INTERRUPTED);
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
  await atomicWrite(`${out}/compare.svg`, svg);
  await atomicWrite(
    `${out}/compare.json`,
    JSON.stringify(
      results.map((r) => ({ name: r.name, dir: r.dir, test_acc: r.epochs.map((e) => e.test_acc) })),
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
}

if (import.meta.main) await main("compare", () => compareCommand(Deno.args));
