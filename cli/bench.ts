/**
 * `deno task bench [--json]`: where webtune's speed is tracked (tests never time anything).
 * Prints the adapter, ResNet-18 training and inference images/s, time from launch to the first
 * finished training step, peak tensor memory, and the data pipeline's images/s.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  type BackendName,
  buildParamGroups,
  describeAdapter,
  disposeBatch,
  setupBackend,
  Sgd,
  toDevice,
  trainStep,
} from "@webtune/core";
import { unregisterFastKernels } from "@webtune/core/kernels";
import { createRng, resolveDataSource, syntheticImageSet } from "@webtune/data";
import { denoFs } from "@webtune/data/deno_fs";
import { createResNet18 } from "@webtune/models";
import { benchDataPipeline } from "./bench_data.ts";
import { defineCommand, type Flags, main, type Values } from "./shell.ts";
import { BACKEND_FLAG } from "./flags.ts";

const FLAGS = {
  sizes: {
    kind: "numbers",
    integer: true,
    min: 32,
    default: "64,224",
    help: "image sizes to train at (comma list)",
  },
  "batch-size": {
    kind: "number",
    integer: true,
    min: 1,
    default: 16,
    help: "batch size of the training steps",
  },
  steps: {
    kind: "number",
    integer: true,
    min: 1,
    default: 3,
    help: "timed steps per size, after one warm-up step",
  },
  data: {
    kind: "string",
    default: "../shared/datasets/hotdog-mini",
    help: "folder for the data-pipeline benchmark (synthetic if missing)",
  },
  "stock-kernels": { kind: "boolean", help: "use tfjs-webgpu's own kernels only" },
  backend: BACKEND_FLAG,
  json: { kind: "boolean", help: "print one JSON object" },
} as const satisfies Flags;

interface TrainingBench {
  size: number;
  batch: number;
  train_images_per_sec: number;
  infer_images_per_sec: number;
  peak_megabytes: number;
  /** performance.now() (ms since launch) when the warm-up step finished. */
  first_step_done_ms: number;
}

async function benchSize(size: number, batch: number, steps: number): Promise<TrainingBench> {
  const rng = createRng(0);
  const model = createResNet18({ numClasses: 2, random: () => rng.float() });
  const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 1e-5 }), { weightDecay: 1e-3 });
  const host = {
    x: Float32Array.from({ length: batch * size * size * 3 }, () => rng.float() * 2 - 1),
    shape: [batch, size, size, 3] as [number, number, number, number],
    labels: Int32Array.from({ length: batch }, (_, i) => i % 2),
  };
  const device = toDevice(host);
  try {
    // Warm-up: compiles the step's pipelines. tf.profile also records the step's peak bytes.
    const profile = await tf.profile(async () => ({ ...await trainStep(model, device, sgd) }));
    const firstStepDone = performance.now();
    let t0 = performance.now();
    for (let i = 0; i < steps; i++) await trainStep(model, device, sgd);
    const trainSec = (performance.now() - t0) / 1000;
    const infer = async () => {
      const logits = tf.tidy(() => model.forward(device.x, "eval").logits);
      await logits.data();
      logits.dispose();
    };
    await infer();
    t0 = performance.now();
    for (let i = 0; i < steps; i++) await infer();
    const inferSec = (performance.now() - t0) / 1000;
    return {
      size,
      batch,
      train_images_per_sec: (steps * batch) / trainSec,
      infer_images_per_sec: (steps * batch) / inferSec,
      peak_megabytes: profile.peakBytes / 2 ** 20,
      first_step_done_ms: firstStepDone,
    };
  } finally {
    disposeBatch(device);
    sgd.dispose();
    model.dispose();
  }
}

/** The `bench` command. */
export const benchCommand = defineCommand({
  name: "bench",
  synopsis: "[--json]",
  description: "Measure training, inference and data-pipeline speed.",
  flags: FLAGS,
  run: ({ values }) => bench(values),
});

async function bench(values: Values<typeof FLAGS>): Promise<void> {
  const say = values.json ? () => {} : (line: string) => console.log(line);
  const adapter = await setupBackend({ backend: String(values.backend) as BackendName });
  if (values["stock-kernels"]) unregisterFastKernels();
  say(
    `device: ${describeAdapter(adapter)}${values["stock-kernels"] ? " (stock tfjs kernels)" : ""}`,
  );
  const batch = values["batch-size"], steps = values.steps;
  const sizes = values.sizes;
  const training: TrainingBench[] = [];
  let firstStepSeconds: number | undefined;
  for (const size of sizes) {
    const r = await benchSize(size, batch, steps);
    // performance.now() counts from process start: launch → first finished training step.
    firstStepSeconds ??= r.first_step_done_ms / 1000;
    training.push(r);
    say(
      `train ${size}px batch ${batch}: ${r.train_images_per_sec.toFixed(2)} images/s; ` +
        `inference ${r.infer_images_per_sec.toFixed(2)} images/s; peak ${
          r.peak_megabytes.toFixed(0)
        } MiB`,
    );
  }
  if (firstStepSeconds !== undefined) {
    say(`launch to first finished training step: ${firstStepSeconds.toFixed(1)} s`);
  }
  const dataDir = String(values.data);
  const set = (await denoFs.stat(dataDir))?.isDirectory
    ? (await resolveDataSource(dataDir, { fs: denoFs })).train
    : syntheticImageSet("train", { seed: 0 });
  const pipeline = [];
  for (const size of [64, 224]) {
    const r = await benchDataPipeline(set, { size, epochs: 3 });
    pipeline.push({
      size,
      images: r.images,
      first_epoch_images_per_sec: r.firstEpoch.imagesPerSecond,
      later_epochs_images_per_sec: r.laterEpochs.imagesPerSecond,
    });
    say(
      `data pipeline ${size}px (${set.name}, ${r.images} images): first epoch ` +
        `${r.firstEpoch.imagesPerSecond.toFixed(0)} images/s, later epochs ` +
        `${r.laterEpochs.imagesPerSecond.toFixed(0)} images/s`,
    );
  }
  if (values.json) {
    console.log(JSON.stringify(
      {
        adapter,
        stock_kernels: Boolean(values["stock-kernels"]),
        training,
        launch_to_first_step_seconds: firstStepSeconds,
        data_pipeline: pipeline,
      },
      null,
      2,
    ));
  }
}

if (import.meta.main) await main(benchCommand);
