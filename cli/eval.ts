/**
 * `deno task eval --model DIR --data DIR|ZIP [--json]`: test accuracy, per-class precision and
 * recall, and the confusion matrix of a trained model on a data set's test split, with the test
 * transform and normalisation the run's `config.json` records.
 * @module
 */
import { classReport, describeAdapter, evaluate, RunDir } from "@webtune/core";
import { createBatchLoader, describeSkipped } from "@webtune/data";
import { denoFs } from "@webtune/data/deno_fs";
import { defineCommand, main } from "./shell.ts";
import { openData } from "./sources.ts";
import { BACKEND_FLAG, KERNELS_FLAG, MODEL_FLAG, setupCommandBackend } from "./flags.ts";

/** The `eval` command. */
export const evalCommand = defineCommand({
  name: "eval",
  synopsis: "--model DIR --data DIR|ZIP [--json]",
  description: "Evaluate a trained model on a test split.",
  flags: {
    model: MODEL_FLAG,
    data: {
      kind: "string",
      required: true,
      placeholder: "SRC",
      help: "DIR | ZIP | URL | synthetic: its test split is evaluated",
    },
    "batch-size": { kind: "number", integer: true, min: 1, default: 32, help: "images per batch" },
    json: { kind: "boolean", help: "print JSON instead of text" },
    backend: BACKEND_FLAG,
    kernels: KERNELS_FLAG,
  },
  async run({ values, out, err }) {
    const log = values.json ? err : out;
    const adapter = await setupCommandBackend(values.backend, values.kernels);
    log(`device: ${describeAdapter(adapter)}`);
    const { model, config } = await new RunDir(denoFs, values.model).readModel();
    try {
      const data = await openData(values.data, 0, log);
      const names = config.class_names;
      if (data.classes.length !== names.length || data.classes.some((c, i) => c !== names[i])) {
        throw new Error(
          `${values.data}: classes (${data.classes.join(", ")}) differ from the model's (${
            names.join(", ")
          })`,
        );
      }
      const loader = createBatchLoader(data.test, {
        transform: { kind: "test", size: config.image_size, resize: config.test_resize },
        normalize: { mean: config.mean, std: config.std },
        batchSize: values["batch-size"],
      });
      const prepared = await loader.prepare();
      const skipped = describeSkipped(prepared.skipped);
      if (skipped) log(`test: ${skipped}`);
      const result = await evaluate(model, loader.epoch());
      const report = classReport(result.labels, result.predictions, names.length);
      if (values.json) {
        out(JSON.stringify(
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
      out(`test acc ${report.accuracy.toFixed(3)} on ${result.labels.length} images`);
      const width = Math.max(9, ...names.map((c) => c.length));
      out(`${"class".padEnd(width)}  precision  recall  support`);
      names.forEach((c, i) => {
        const r = report.perClass[i];
        out(
          `${c.padEnd(width)}  ${r.precision.toFixed(3).padStart(9)}  ${
            r.recall.toFixed(3).padStart(6)
          }  ${String(r.support).padStart(7)}`,
        );
      });
      out("confusion matrix (rows: true class, columns: predicted)");
      out(`${"".padEnd(width)}  ${names.map((c) => c.padStart(width)).join(" ")}`);
      report.matrix.forEach((row, i) =>
        out(`${names[i].padEnd(width)}  ${row.map((v) => String(v).padStart(width)).join(" ")}`)
      );
    } finally {
      model.dispose();
    }
  },
});

if (import.meta.main) await main(evalCommand);
