/**
 * `deno task eval --model DIR --data DIR|ZIP [--json]`: test accuracy, per-class precision and
 * recall, and the confusion matrix of a trained model on a data set's test split.
 * @module
 */
import {
  type BackendName,
  classReport,
  describeAdapter,
  evaluate,
  setupBackend,
} from "@webtune/core";
import { createBatchLoader, describeSkipped } from "@webtune/data";
import { parseFlags, usage, UsageError } from "./args.ts";
import { main } from "./main.ts";
import { openModelDir } from "./model_dir.ts";
import { openData } from "./sources.ts";

const FLAGS = {
  model: { type: "string" as const, help: "run directory with model.safetensors and config.json" },
  data: {
    type: "string" as const,
    help: "DIR | ZIP | URL | synthetic: its test split is evaluated",
  },
  "batch-size": { type: "string" as const, default: "32", help: "images per batch" },
  json: { type: "boolean" as const, default: false, help: "print JSON instead of text" },
  backend: { type: "string" as const, default: "webgpu", help: "webgpu | cpu" },
};

async function evalCommand(args: string[]): Promise<void> {
  const { values } = parseFlags("eval", args, FLAGS);
  if (values.help) {
    console.log(
      usage(
        "eval",
        "--model DIR --data DIR|ZIP [--json]",
        "Evaluate a trained model on a test split.",
        FLAGS,
      ),
    );
    return;
  }
  if (!values.model || !values.data) {
    throw new UsageError("webtune eval: --model DIR and --data DIR|ZIP are required (see --help)");
  }
  const batchSize = Number(values["batch-size"]);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new UsageError(
      `webtune eval: --batch-size expects a positive integer, got ${values["batch-size"]}`,
    );
  }
  const log = values.json ? (l: string) => console.error(l) : (l: string) => console.log(l);
  const adapter = await setupBackend({ backend: String(values.backend) as BackendName });
  log(`device: ${describeAdapter(adapter)}`);
  const { model, config } = await openModelDir(String(values.model));
  try {
    const data = await openData(String(values.data), 0, log);
    const names = config.class_names;
    if (data.classes.length !== names.length || data.classes.some((c, i) => c !== names[i])) {
      throw new Error(
        `${values.data}: classes (${data.classes.join(", ")}) differ from the model's (${
          names.join(", ")
        })`,
      );
    }
    const loader = createBatchLoader(data.test, {
      transform: { kind: "test", size: config.image_size },
      batchSize,
    });
    const prepared = await loader.prepare();
    const skipped = describeSkipped(prepared.skipped);
    if (skipped) log(`test: ${skipped}`);
    const result = await evaluate(model, loader.epoch());
    const report = classReport(result.labels, result.predictions, names.length);
    if (values.json) {
      console.log(JSON.stringify(
        {
          accuracy: report.accuracy,
          examples: result.labels.length,
          classes: names,
          per_class: Object.fromEntries(names.map((c, i) => [c, report.perClass[i]])),
          confusion_matrix: report.matrix,
        },
        null,
        2,
      ));
      return;
    }
    console.log(`test acc ${report.accuracy.toFixed(3)} on ${result.labels.length} images`);
    const width = Math.max(9, ...names.map((c) => c.length));
    console.log(`${"class".padEnd(width)}  precision  recall  support`);
    names.forEach((c, i) => {
      const r = report.perClass[i];
      console.log(
        `${c.padEnd(width)}  ${r.precision.toFixed(3).padStart(9)}  ${
          r.recall.toFixed(3).padStart(6)
        }  ${String(r.support).padStart(7)}`,
      );
    });
    console.log("confusion matrix (rows: true class, columns: predicted)");
    console.log(`${"".padEnd(width)}  ${names.map((c) => c.padStart(width)).join(" ")}`);
    report.matrix.forEach((row, i) =>
      console.log(
        `${names[i].padEnd(width)}  ${row.map((v) => String(v).padStart(width)).join(" ")}`,
      )
    );
  } finally {
    model.dispose();
  }
}

if (import.meta.main) await main("eval", () => evalCommand(Deno.args));
