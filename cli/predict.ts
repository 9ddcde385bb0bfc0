/**
 * `deno task predict --model DIR [--json] IMAGE...`: class probabilities for images, with the
 * test transform and normalisation the run's `config.json` records.
 * @module
 */
import { describeAdapter, predictProbabilities, RunDir } from "@webtune/core";
import { decodeImage } from "@webtune/data";
import { denoFs } from "@webtune/data/deno_fs";
import { defineCommand, main, UsageError } from "./shell.ts";
import { BACKEND_FLAG, KERNELS_FLAG, MODEL_FLAG, setupCommandBackend } from "./flags.ts";

/** One image's prediction, as `--json` prints it. */
export interface Prediction {
  file: string;
  class: string;
  probabilities: Record<string, number>;
}

/** The `predict` command. */
export const predictCommand = defineCommand({
  name: "predict",
  synopsis: "--model DIR [--json] IMAGE...",
  description: "Classify images with a trained model.",
  positionals: true,
  flags: {
    model: MODEL_FLAG,
    json: { kind: "boolean", help: "print a JSON array instead of text" },
    backend: BACKEND_FLAG,
    kernels: KERNELS_FLAG,
  },
  async run({ values, positionals, out }) {
    if (positionals.length === 0) throw new UsageError("give at least one IMAGE (see --help)");
    const adapter = await setupCommandBackend(values.backend, values.kernels);
    if (!values.json) out(`device: ${describeAdapter(adapter)}`);
    const { model, config } = await new RunDir(denoFs, values.model).readModel();
    try {
      const images = await Promise.all(positionals.map(async (file) => {
        let bytes: Uint8Array;
        try {
          bytes = await Deno.readFile(file);
        } catch (e) {
          throw new Error(`${file}: cannot read (${(e as Error).message})`);
        }
        return decodeImage(bytes, { name: file });
      }));
      const probs = await predictProbabilities(model, images, config);
      const predictions: Prediction[] = positionals.map((file, i) => {
        const p = probs[i];
        const best = p.indexOf(Math.max(...p));
        return {
          file,
          class: config.class_names[best],
          probabilities: Object.fromEntries(config.class_names.map((c, k) => [c, p[k]])),
        };
      });
      if (values.json) {
        out(JSON.stringify(predictions, null, 2));
        return;
      }
      for (const pr of predictions) {
        const detail = Object.entries(pr.probabilities).map(([c, p]) => `${c} ${p.toFixed(3)}`)
          .join(", ");
        out(`${pr.file}: ${pr.class} (${detail})`);
      }
    } finally {
      model.dispose();
    }
  },
});

if (import.meta.main) await main(predictCommand);
