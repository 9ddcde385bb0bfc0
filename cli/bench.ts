/**
 * `deno task bench [--json] [--compare-stock]`: where webtune's speed is tracked (tests never
 * time anything). Prints the adapter, ResNet training and inference images/s per image size
 * (webtune's kernels as `--kernels` asks and, with `--compare-stock`, webtune's `fast` ones and
 * tfjs-webgpu's own in the same process), the `auto` kernel choices per conv shape with the time
 * their measurement took (measured afresh: the stored choices are replaced), peak
 * tensor memory, GPU dispatches per training step, the time from launch to the first finished
 * training step with a cold and a warm shader cache (fresh processes), and the data pipeline's
 * images/s.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  buildParamGroups,
  describeAdapter,
  disposeBatch,
  type KernelChoice,
  Sgd,
  toDevice,
  trainStep,
} from "@webtune/core";
import {
  describeVariant,
  FAST_KERNEL_NAMES,
  kernelChoices,
  registerFastKernels,
  setKernelMode,
  tunePendingKernels,
  unregisterFastKernels,
} from "@webtune/core/kernels";
import { createRng, resolveDataSource, syntheticImageSet } from "@webtune/data";
import { denoFs } from "@webtune/data/deno_fs";
import { type Arch, ARCHS, createResNet } from "@webtune/models";
import { benchDataPipeline } from "./bench_data.ts";
import { BACKEND_FLAG, KERNELS_FLAG, setupCommandBackend } from "./flags.ts";
import { defineCommand, type Flags, main, type Values } from "./shell.ts";

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
  arch: { kind: "enum", choices: ARCHS, default: "resnet18", help: "the network to time" },
  data: {
    kind: "string",
    default: "../shared/datasets/hotdog-mini",
    help: "folder for the data-pipeline benchmark (synthetic if missing)",
  },
  kernels: KERNELS_FLAG,
  "compare-stock": {
    kind: "boolean",
    help: "also time tfjs-webgpu's stock kernels, in the same process",
  },
  "tune-budget": {
    kind: "number",
    min: 0,
    default: 120,
    help: "seconds per image size for --kernels auto to time the conv variants",
  },
  "skip-first-step": {
    kind: "boolean",
    help: "skip timing launch → first finished step (fresh processes, cold and warm cache)",
  },
  "skip-data": { kind: "boolean", help: "skip the data pipeline" },
  "first-step-only": {
    kind: "boolean",
    help: "(internal) train one step at the first size, print its finish time as JSON, exit",
  },
  backend: BACKEND_FLAG,
  json: { kind: "boolean", help: "print one JSON object" },
} as const satisfies Flags;

/** The kernel sets `bench` times: `auto` (measured choices), `fast` (webtune's), `stock`. */
type BenchKernels = "auto" | "fast" | "stock";

/** What choosing the `auto` kernels cost at one image size. */
interface TuningBench {
  size: number;
  seconds: number;
  /** Shapes measured. */
  decided: number;
  /** Shapes the budget left unmeasured (they run the default variant). */
  pending: number;
}

interface TrainingBench {
  kernels: BenchKernels;
  size: number;
  batch: number;
  train_images_per_sec: number;
  infer_images_per_sec: number;
  peak_megabytes: number;
  /** GPU programs run by one training step (forward, backward, update). */
  dispatches_per_step: number;
}

/** A model, optimizer and one random batch on the device. */
function setupStep(arch: Arch, size: number, batch: number) {
  const rng = createRng(0);
  const model = createResNet(arch, { numClasses: 2, random: () => rng.float() });
  const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 1e-5 }), { weightDecay: 1e-3 });
  const device = toDevice({
    x: Float32Array.from({ length: batch * size * size * 3 }, () => rng.float() * 2 - 1),
    shape: [batch, size, size, 3] as [number, number, number, number],
    labels: Int32Array.from({ length: batch }, (_, i) => i % 2),
  });
  const dispose = () => {
    disposeBatch(device);
    sgd.dispose();
    model.dispose();
  };
  return { model, sgd, device, dispose };
}

/** Counts the GPU programs `f` runs (webgpu only; 0 elsewhere). */
async function countDispatches(f: () => Promise<unknown>): Promise<number> {
  if (tf.getBackend() !== "webgpu") {
    await f();
    return 0;
  }
  const backend = tf.backend() as WebGPUBackend;
  const original = backend.runWebGPUProgram;
  let count = 0;
  backend.runWebGPUProgram = function (this: WebGPUBackend, ...args) {
    count++;
    return original.apply(this, args);
  };
  try {
    await f();
  } finally {
    backend.runWebGPUProgram = original;
  }
  return count;
}

async function benchSize(
  arch: Arch,
  kernels: BenchKernels,
  size: number,
  batch: number,
  steps: number,
  tuneBudgetMs: number,
): Promise<TrainingBench & { tuning?: TuningBench }> {
  const { model, sgd, device, dispose } = setupStep(arch, size, batch);
  try {
    // Warm-up: compiles the step's pipelines. tf.profile also records the step's peak bytes.
    const profile = await tf.profile(async () => ({ ...await trainStep(model, device, sgd) }));
    let tuning: TuningBench | undefined;
    if (kernels === "auto") {
      // As in training: the first step met the shapes; time their variants, then the inference
      // shapes (eval mode runs the same convs forward only).
      const infer = tf.tidy(() => model.forward(device.x, "eval").logits);
      await infer.data();
      infer.dispose();
      const t = await tunePendingKernels({ budgetMs: tuneBudgetMs });
      tuning = { size, seconds: t.ms / 1000, decided: t.decided.length, pending: t.pending };
    }
    // Also the warm-up of the chosen variants at the real batch.
    const dispatches = await countDispatches(() => trainStep(model, device, sgd));
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
      kernels,
      size,
      batch,
      train_images_per_sec: (steps * batch) / trainSec,
      infer_images_per_sec: (steps * batch) / inferSec,
      peak_megabytes: profile.peakBytes / 2 ** 20,
      dispatches_per_step: dispatches,
      ...(tuning ? { tuning } : {}),
    };
  } finally {
    dispose();
  }
}

/** The child process of {@linkcode firstStepSeconds}: one step, then its finish time. */
async function firstStepOnly(arch: Arch, size: number, batch: number): Promise<void> {
  const { model, sgd, device } = setupStep(arch, size, batch);
  await trainStep(model, device, sgd);
  // performance.now() counts from process start: launch → first finished training step.
  console.log(JSON.stringify({ first_step_seconds: performance.now() / 1000 }));
}

/**
 * Launch → first finished training step of a fresh `bench --first-step-only` process. `cold`
 * disables Mesa's on-disk shader cache (MESA_SHADER_CACHE_DISABLE), as on a first run.
 */
async function firstStepSeconds(
  arch: Arch,
  size: number,
  batch: number,
  kernels: KernelChoice,
  cold: boolean,
): Promise<number> {
  const args = [
    "run",
    "-A",
    new URL(import.meta.url).pathname,
    "--first-step-only",
    "--sizes",
    String(size),
    "--batch-size",
    String(batch),
    "--kernels",
    kernels,
    "--arch",
    arch,
  ];
  const env: Record<string, string> = cold ? { MESA_SHADER_CACHE_DISABLE: "true" } : {};
  const out = await new Deno.Command(Deno.execPath(), { args, env, stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (!out.success) {
    throw new Error(`first-step child failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return (JSON.parse(text) as { first_step_seconds: number }).first_step_seconds;
}

/** The `bench` command. */
export const benchCommand = defineCommand({
  name: "bench",
  synopsis: "[--json] [--compare-stock]",
  description: "Measure training, inference and data-pipeline speed.",
  flags: FLAGS,
  run: ({ values }) => bench(values),
});

async function bench(values: Values<typeof FLAGS>): Promise<void> {
  const kernels = values.kernels as KernelChoice;
  const batch = values["batch-size"], steps = values.steps;
  const sizes = values.sizes;
  const arch = values.arch as Arch;
  const firstStepOnlyRun = Boolean(values["first-step-only"]);
  // The child processes of the first-step timing use the stored choices, as a second run would.
  const adapter = await setupCommandBackend(values.backend, kernels, {
    retuneKernels: !firstStepOnlyRun,
  });
  if (firstStepOnlyRun) return await firstStepOnly(arch, sizes[0] ?? 64, batch);

  const say = values.json ? () => {} : (line: string) => console.log(line);
  say(`device: ${describeAdapter(adapter)}, ${arch}, kernels ${kernels}`);
  const mainChoice: BenchKernels = adapter.backend !== "webgpu" ? "stock" : kernels;
  const variants: BenchKernels[] = values["compare-stock"] && adapter.backend === "webgpu"
    ? [...new Set<BenchKernels>([mainChoice, "fast", "stock"])]
    : [mainChoice];
  const training: TrainingBench[] = [];
  const tuning: TuningBench[] = [];
  for (const variant of variants) {
    useKernels(variant);
    for (const size of sizes) {
      const { tuning: t, ...r } = await benchSize(
        arch,
        variant,
        size,
        batch,
        steps,
        values["tune-budget"] * 1000,
      );
      training.push(r);
      if (t) {
        tuning.push(t);
        say(
          `auto kernels, ${size}px: ${t.decided} conv shapes measured in ` +
            `${t.seconds.toFixed(1)} s` + (t.pending > 0 ? ` (${t.pending} left: budget)` : ""),
        );
      }
      say(
        `${variant} kernels, train ${size}px batch ${batch}: ` +
          `${r.train_images_per_sec.toFixed(2)} images/s; inference ` +
          `${r.infer_images_per_sec.toFixed(2)} images/s; peak ${
            r.peak_megabytes.toFixed(0)
          } MiB; ` +
          `${r.dispatches_per_step} dispatches per step`,
      );
    }
  }
  useKernels(mainChoice);

  let firstStep: { size: number; cold_seconds: number; warm_seconds: number } | undefined;
  if (!values["skip-first-step"] && sizes.length > 0) {
    const size = Math.min(...sizes);
    const cold = await firstStepSeconds(arch, size, batch, kernels, true);
    await firstStepSeconds(arch, size, batch, kernels, false); // fills the shader cache
    const warm = await firstStepSeconds(arch, size, batch, kernels, false);
    firstStep = { size, cold_seconds: cold, warm_seconds: warm };
    say(
      `launch to first finished training step (${size}px, fresh process): ` +
        `${cold.toFixed(1)} s cold shader cache, ${warm.toFixed(1)} s warm`,
    );
  }

  const pipeline = [];
  if (!values["skip-data"]) {
    const dataDir = String(values.data);
    const set = (await denoFs.stat(dataDir))?.isDirectory
      ? (await resolveDataSource(dataDir, { fs: denoFs })).train
      : syntheticImageSet("train", { seed: 0 });
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
  }
  const choices = kernelChoices().map((c) => ({
    shape: c.label,
    variant: describeVariant(c),
    speedup_over_stock: c.speedupOverStock,
    ms: c.ms,
  }));
  say(`kernels: ${mainChoice} (${adapter.fastKernels ? FAST_KERNEL_NAMES.join(", ") : ""})`);
  if (choices.length > 0) say("kernel choices (auto, per conv shape):");
  for (const c of choices) {
    const vs = c.speedup_over_stock === undefined
      ? "cached"
      : `${c.speedup_over_stock.toFixed(2)}× stock`;
    say(`  ${c.shape} → ${c.variant} (${vs})`);
  }
  if (values.json) {
    console.log(JSON.stringify(
      {
        adapter,
        kernel_choices: {
          asked: kernels,
          used: mainChoice,
          fast_kernels: FAST_KERNEL_NAMES,
          tuning,
          choices,
        },
        training,
        first_step: firstStep,
        data_pipeline: pipeline,
      },
      null,
      2,
    ));
  }
}

/** Registers the kernels of `variant` (webgpu). */
function useKernels(variant: BenchKernels): void {
  if (tf.getBackend() !== "webgpu") return;
  if (variant === "stock") return unregisterFastKernels();
  registerFastKernels();
  setKernelMode(variant);
}

if (import.meta.main) await main(benchCommand);
