/**
 * `deno task compare`: the chapter's comparison — fine-tuning vs training from scratch with the
 * same flags — and, beyond it, any run flag of the run-config table as a comma list
 * (`--optimizer sgd,adamw --schedule constant,cosine --lr 1e-4,5e-4`): every combination is one
 * run (the cartesian product, per task of `--tasks`). One chart of test accuracy per epoch for
 * all runs (`compare.svg`), and a table of final and best test accuracy (`compare.md`, printed).
 *
 * A parameter whose chapter value differs per task (`--lr`, `--param-group`) applies to the
 * fine-tuning runs; scratch runs keep the chapter's, with their rates from `--scratch-lr`.
 *
 * @module
 */
import {
  atomicWrite,
  CHART_COLORS,
  curvesSvg,
  defaultRunConfig,
  type EpochMetrics,
  paramEntries,
  type ParamEntry,
  savedEpoch,
  type Task,
  TASKS,
} from "@webtune/core";
import { denoFs } from "@webtune/data/deno_fs";
import type { KernelChoice } from "@webtune/core";
import { sourceWeights } from "./flags.ts";
import {
  defineCommand,
  EXIT_INTERRUPTED,
  type Flags,
  type FlagSpec,
  main,
  runConfigFromFlags,
} from "./shell.ts";
import { runTrain, timestamp, trainFlags } from "./train.ts";

/** A value of a run parameter. */
type Value = number | boolean | string;

/** Every parameter of the table that some task uses, by flag (the union over tasks). */
function listableParams(): ParamEntry[] {
  const byFlag = new Map<string, ParamEntry>();
  for (const task of TASKS) {
    for (const p of paramEntries(task)) if (p.used && !byFlag.has(p.flag)) byFlag.set(p.flag, p);
  }
  return [...byFlag.values()];
}

/** Whether the chapter's value of a parameter differs between the tasks (lr, param groups). */
function perTask(p: ParamEntry): boolean {
  return new Set(TASKS.map((task) => paramEntries(task).find((e) => e.name === p.name)!.default))
    .size > 1;
}

const PARAMS = listableParams();
const { resume: _resume, ...finetuneFlags } = trainFlags("finetune");

/**
 * `compare`'s flags: `finetune`'s, each run parameter a comma list (from the run-config table),
 * plus `--tasks` and `--scratch-lr`.
 */
const FLAGS: Flags = {
  ...finetuneFlags,
  ...Object.fromEntries(PARAMS.map((p) => {
    const flag: FlagSpec = {
      kind: "list",
      of: p.spec,
      // Unset lists leave each task its own default; lr keeps the chapter's in --help.
      default: p.name === "lr" ? String(p.default) : undefined,
      help: `${p.spec.help}${perTask(p) ? " (fine-tuning runs)" : ""}; a comma list: one run each`,
    };
    return [p.flag, flag];
  })),
  "scratch-lr": {
    kind: "list",
    of: PARAMS.find((p) => p.name === "lr")!.spec,
    default: String(defaultRunConfig("scratch").lr),
    help: "the scratch runs' lr, or a comma list",
  },
  tasks: {
    kind: "list",
    of: { kind: "enum", choices: TASKS, help: "" },
    default: TASKS.join(","),
    help: "which of the chapter's runs to make, each with every combination",
  },
};

/** One run of the comparison. */
export interface CompareRun {
  task: Task;
  /** The flag values of this combination (only the listed ones). */
  values: Record<string, Value>;
  name: string;
  dir: string;
}

/** The cartesian product of `lists`, in order (the first list varies slowest). */
export function cartesian(lists: [string, Value[]][]): Record<string, Value>[] {
  return lists.reduce<Record<string, Value>[]>(
    (combos, [flag, values]) => combos.flatMap((c) => values.map((v) => ({ ...c, [flag]: v }))),
    [{}],
  );
}

/**
 * The runs `compare` makes from parsed flag values: per task of `--tasks`, every combination of
 * the list flags the task uses. Names show the lr and every flag given more than one value.
 */
export function compareRuns(values: Record<string, unknown>, out: string): CompareRun[] {
  const tasks = values.tasks as Task[];
  const runs: CompareRun[] = [];
  for (const task of tasks) {
    const lists: [string, Value[]][] = [];
    for (const p of paramEntries(task)) {
      if (!p.used) continue;
      const given =
        (task === "scratch" && p.name === "lr" ? values["scratch-lr"] : values[p.flag]) as
          | Value[]
          | undefined;
      // Per-task parameters set on the command line are the fine-tuning runs'.
      if (given === undefined || (task !== "finetune" && perTask(p) && p.name !== "lr")) continue;
      lists.push([p.flag, [...new Set(given)]]);
    }
    const shown = lists.filter(([flag, v]) => flag === "lr" || v.length > 1).map(([f]) => f);
    for (const combo of cartesian(lists)) {
      const parts = shown.map((flag) => [flag, combo[flag]] as const);
      runs.push({
        task,
        values: combo,
        name: [task, ...parts.map(([f, v]) => `${f}=${v}`)].join(" "),
        dir: `${out}/${[task, ...parts.map(([f, v]) => `${f}-${v}`)].join("_")}`,
      });
    }
  }
  return runs;
}

/** A run's result: its test accuracy per epoch. */
export interface CompareResult {
  name: string;
  dir: string;
  task: Task;
  epochs: EpochMetrics[];
}

/** The markdown table of the results: final and best test accuracy, then every epoch's. */
export function compareTable(results: CompareResult[]): string {
  const rows = results.map((r) => {
    const best = savedEpoch(r.epochs, "best");
    const final = r.epochs.at(-1);
    return [
      r.name,
      final ? final.test_acc.toFixed(3) : "–",
      best ? `${best.test_acc.toFixed(3)} (${best.epoch})` : "–",
      r.epochs.map((e) => e.test_acc.toFixed(2)).join(" "),
    ];
  });
  const header = ["run", "final test acc", "best test acc (epoch)", "test acc per epoch"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The `compare` command. */
export const compareCommand = defineCommand({
  name: "compare",
  synopsis: "[options]",
  description: "Fine-tune and train from scratch with the same flags (the chapter's " +
    "comparison); any run flag may be a comma list: every combination is a run. Charts the test " +
    "accuracy of all and tabulates final/best.",
  flags: FLAGS,
  async run({ values, out: print }) {
    const out = String(values.out ?? `runs/${timestamp()}-compare`);
    const runs = compareRuns(values, out);
    print(`${runs.length} runs: ${runs.map((r) => r.name).join("; ")}`);
    const results: CompareResult[] = [];
    for (const run of runs) {
      // One combination's values stand for the lists; the rest are the task's defaults.
      const config = runConfigFromFlags(run.task, defaultRunConfig(run.task), run.values);
      print(`== ${run.name} -> ${run.dir}`);
      const r = await runTrain({
        task: run.task,
        config,
        data: String(values.data),
        weights: run.task === "finetune" ? sourceWeights(values.weights, config.arch) : undefined,
        out: run.dir,
        backend: values.backend as "webgpu" | "cpu",
        kernels: values.kernels as KernelChoice,
        json: Boolean(values.json),
      });
      results.push({ name: run.name, dir: run.dir, task: run.task, epochs: r.epochs });
      if (r.stopped) return EXIT_INTERRUPTED;
    }
    const chapterOnly = PARAMS.every((p) =>
      p.name === "lr" || values[p.flag] === undefined || (values[p.flag] as Value[]).length < 2
    );
    const longest = Math.max(...results.map((r) => r.name.length));
    const svg = curvesSvg(
      results.map((r, i) => ({
        name: r.name,
        values: r.epochs.map((e) => e.test_acc),
        color: CHART_COLORS[i % CHART_COLORS.length],
        dash: r.task === "scratch" ? "6 3" : undefined,
      })),
      {
        title: chapterOnly ? "test accuracy: fine-tuning vs scratch" : "test accuracy",
        yMax: 1,
        width: 400 + 6 * longest,
        legendWidth: 40 + 6 * longest,
      },
    );
    const table = compareTable(results);
    await atomicWrite(denoFs, `${out}/compare.svg`, svg);
    await atomicWrite(denoFs, `${out}/compare.md`, `${table}\n`);
    await atomicWrite(
      denoFs,
      `${out}/compare.json`,
      JSON.stringify(
        results.map((r, i) => ({
          name: r.name,
          dir: r.dir,
          task: r.task,
          flags: runs[i].values,
          test_acc: r.epochs.map((e) => e.test_acc),
          best_epoch: savedEpoch(r.epochs, "best")?.epoch,
        })),
        null,
        2,
      ),
    );
    print(table);
    print(`wrote ${out}/compare.svg, compare.md, compare.json`);
  },
});

if (import.meta.main) await main(compareCommand);
