/**
 * `deno task predict --model DIR [--json] IMAGE...`: class probabilities for images, with the
 * run's test transform.
 * @module
 */
import { describeAdapter, predictProbabilities, setupBackend } from "@webtune/core";
import { decodeImage } from "@webtune/data";
import type { BackendName } from "@webtune/core";
import { parseFlags, usage, UsageError } from "./args.ts";
import { main } from "./main.ts";
import { openModelDir } from "./model_dir.ts";

const FLAGS = {
  model: { type: "string" as const, help: "run directory with model.safetensors and config.json" },
  json: { type: "boolean" as const, default: false, help: "print a JSON array instead of text" },
  backend: { type: "string" as const, default: "webgpu", help: "webgpu | cpu" },
};

/** One image's prediction, as `--json` prints it. */
export interface Prediction {
  file: string;
  class: string;
  probabilities: Record<string, number>;
}

async function predictCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags("predict", args, FLAGS, true);
  if (values.help) {
    console.log(
      usage(
        "predict",
        "--model DIR [--json] IMAGE...",
        "Classify images with a trained model.",
        FLAGS,
      ),
    );
    return;
  }
  if (!values.model) throw new UsageError("webtune predict: --model DIR is required (see --help)");
  if (positionals.length === 0) {
    throw new UsageError("webtune predict: give at least one IMAGE (see --help)");
  }
  const adapter = await setupBackend({ backend: String(values.backend) as BackendName });
  if (!values.json) console.log(`device: ${describeAdapter(adapter)}`);
  const { model, config } = await openModelDir(String(values.model));
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
    const probs = await predictProbabilities(model, images, config.image_size);
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
      console.log(JSON.stringify(predictions, null, 2));
    } else {
      for (const pr of predictions) {
        const detail = Object.entries(pr.probabilities).map(([c, p]) => `${c} ${p.toFixed(3)}`)
          .join(", ");
        console.log(`${pr.file}: ${pr.class} (${detail})`);
      }
    }
  } finally {
    model.dispose();
  }
}

if (import.meta.main) await main("predict", () => predictCommand(Deno.args));
