/**
 * `deno task bench [--json] [--compare-stock]`: where webtune's speed is tracked (tests never
 * time anything). Prints the adapter, ResNet training and inference images/s per image size
 * (webtune's kernels as `--kernels` asks and, with `--compare-stock`, webtune's `fast` ones and
 * tfjs-webgpu's own in the same process), the `auto` kernel choices per conv shape with the time
 * their measurement took (measured afresh: the stored choices are replaced), peak
 * tensor memory, GPU dispatches per training step, the time from launch to the first finished
 * training step with a cold and a warm shader cache (fresh processes running the real training
 * path on `--data`, with and without the pipelines compiled ahead, per phase and with the
 * compile calls counted; see bench_first_step.ts), and the data pipeline's images/s. With
 * `--profile`, also a training step's and an inference step's time by kernel family (see
 * bench_profile.ts).
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { describeAdapter, type KernelChoice, trainStep } from "@webtune/core";
import {
  describeVariant,
  FAST_KERNEL_NAMES,
  kernelChoices,
  operandTextureBytes,
  registerFastKernels,
  setKernelMode,
  textureDispatchCount,
  tunePendingKernels,
  unregisterFastKernels,
} from "@webtune/core/kernels";
import { resolveDataSource, syntheticImageSet } from "@webtune/data";
import { denoFs } from "@webtune/data/deno_fs";
import { type Arch, ARCHS } from "@webtune/models";
import { benchDataPipeline } from "./bench_data.ts";
import { setupStep } from "./bench_setup.ts";
import {
  callLabel,
  formatCalls,
  formatProfile,
  profileStep,
  type StepProfile,
} from "./bench_profile.ts";
import {
  countCompiles,
  type FirstStep,
  firstStep,
  firstStepInFreshProcess,
  processCpuSeconds,
} from "./bench_first_step.ts";
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
  profile: {
    kind: "boolean",
    help: "also print where a training and an inference step's time goes, by kernel family " +
      "(bench_profile.ts)",
  },
  "skip-precompile": {
    kind: "boolean",
    help: "time launch → first step only without the pipelines compiled ahead (default: both)",
  },
  "first-step-only": {
    kind: "boolean",
    help: "(internal) train one step at the first size, print its finish time as JSON, exit",
  },
  "without-precompile": {
    kind: "boolean",
    help: "(internal, with --first-step-only) do not compile the pipelines ahead",
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
  /** Peak tensor memory of a training step (`tf.profile`'s peak bytes). */
  peak_megabytes: number;
  /** Operand textures webtune's kernels hold besides the tensors (tf.memory() misses them). */
  texture_megabytes: number;
  /** GPU programs run by one training step (forward, backward, update). */
  dispatches_per_step: number;
  /** With `--profile`: milliseconds per training step by kernel family, and their sum. */
  profile?: ProfileSummary;
  /** With `--profile`: the same for an inference step (`eval` forward). */
  infer_profile?: ProfileSummary;
}

/** A step's milliseconds by kernel family, their sum, and its top-level kernel calls. */
interface ProfileSummary {
  families: Record<string, number>;
  total_ms: number;
  calls: number;
  /** Each distinct call, largest count × ms first (bench_profile.ts `callLabel`). */
  per_call: { call: string; count: number; ms: number }[];
}

function summary(p: StepProfile): ProfileSummary {
  return {
    families: Object.fromEntries(p.families),
    total_ms: p.totalMs,
    calls: p.calls.reduce((sum, c) => sum + c.count, 0),
    per_call: [...p.calls].sort((a, b) => b.count * b.ms - a.count * a.ms)
      .map((c) => ({ call: callLabel(c), count: c.count, ms: c.ms })),
  };
}

/** Counts the GPU programs `f` runs (webgpu only; 0 elsewhere). */
async function countDispatches(f: () => Promise<unknown>): Promise<number> {
  if (tf.getBackend() !== "webgpu") {
    await f();
    return 0;
  }
  const backend = tf.backend() as WebGPUBackend;
  const original = backend.runWebGPUProgram;
  // webtune's texture-operand kernels dispatch without runWebGPUProgram; they count themselves.
  let count = -textureDispatchCount();
  backend.runWebGPUProgram = function (this: WebGPUBackend, ...args) {
    count++;
    return original.apply(this, args);
  };
  try {
    await f();
  } finally {
    backend.runWebGPUProgram = original;
  }
  return count + textureDispatchCount();
}

async function benchSize(
  arch: Arch,
  kernels: BenchKernels,
  size: number,
  batch: number,
  steps: number,
  tuneBudgetMs: number,
  withProfile: boolean,
): Promise<TrainingBench & { tuning?: TuningBench; profileText?: string }> {
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
    const stepProfile = withProfile
      ? await profileStep(() => trainStep(model, device, sgd))
      : undefined;
    // The first eval forward after a training step folds BatchNorm into the convs again
    // (models/conv_bn.ts); the timed inference steps above do not, nor does the profiled one.
    if (withProfile) await infer();
    const inferProfile = withProfile ? await profileStep(infer) : undefined;
    return {
      kernels,
      size,
      batch,
      train_images_per_sec: (steps * batch) / trainSec,
      infer_images_per_sec: (steps * batch) / inferSec,
      peak_megabytes: profile.peakBytes / 2 ** 20,
      texture_megabytes: tf.getBackend() === "webgpu"
        ? operandTextureBytes(tf.backend() as WebGPUBackend) / 2 ** 20
        : 0,
      dispatches_per_step: dispatches,
      ...(tuning ? { tuning } : {}),
      ...(stepProfile && inferProfile
        ? {
          profile: summary(stepProfile),
          infer_profile: summary(inferProfile),
          profileText: `training step:\n${formatProfile(stepProfile)}\n${
            formatCalls(stepProfile)
          }\ninference step:\n${formatProfile(inferProfile)}\n${formatCalls(inferProfile)}`,
        }
        : {}),
    };
  } finally {
    dispose();
  }
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
  const backendStart: [number, number] = [performance.now(), processCpuSeconds()];
  // The child counts every compile, so the wrapping comes before the device exists.
  const compiles = values["first-step-only"] ? countCompiles() : undefined;
  // The first-step child processes use the stored choices, as a second run would.
  const adapter = await setupCommandBackend(values.backend, kernels, {
    retuneKernels: !values["first-step-only"],
  });
  if (compiles) {
    const result = await firstStep({
      arch,
      size: sizes[0] ?? 64,
      batch,
      data: String(values.data),
      precompile: !values["without-precompile"],
      backendStart,
      backendEnd: [performance.now(), processCpuSeconds()],
      compiles,
    });
    console.log(JSON.stringify(result));
    // What training does next (`auto`'s tuning pass) is not part of the first step.
    Deno.exit(0);
  }

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
      const { tuning: t, profileText, ...r } = await benchSize(
        arch,
        variant,
        size,
        batch,
        steps,
        values["tune-budget"] * 1000,
        values.profile,
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
          } MiB tensors + ${r.texture_megabytes.toFixed(0)} MiB operand textures; ` +
          `${r.dispatches_per_step} dispatches per step`,
      );
      if (profileText) say(`${variant} kernels, ${size}px by kernel family, ${profileText}`);
    }
  }
  useKernels(mainChoice);

  const firstSteps: (FirstStep & {
    size: number;
    cache: string;
    precompile: boolean;
    /** No stored kernel choices (a first run on this machine): `auto` runs first-use variants. */
    first_run: boolean;
  })[] = [];
  if (!values["skip-first-step"] && sizes.length > 0) {
    const size = Math.min(...sizes);
    const args = [
      ...["--sizes", String(size), "--batch-size", String(batch), "--kernels", kernels],
      ...["--arch", arch, "--data", String(values.data)],
    ];
    const bench = new URL(import.meta.url).pathname;
    // Filling Mesa's shader cache first makes the later warm runs warm.
    await firstStepInFreshProcess(bench, args, { cold: false, firstRun: false });
    // A first run on a machine: no shader cache and no stored kernel choices. Then a later run
    // whose shader cache was dropped (cold, the stored choices), and one with both (warm).
    const scenarios = [
      { precompile: false, cold: true, firstRun: true },
      ...(values["skip-precompile"] ? [false] : [false, true]).flatMap((precompile) =>
        [true, false].map((cold) => ({ precompile, cold, firstRun: false }))
      ),
    ];
    for (const { precompile, cold, firstRun } of scenarios) {
      const r = await firstStepInFreshProcess(
        bench,
        precompile ? args : [...args, "--without-precompile"],
        { cold, firstRun },
      );
      firstSteps.push({
        ...r,
        size,
        cache: cold ? "cold" : "warm",
        precompile,
        first_run: firstRun,
      });
      const c = r.compiles;
      say(
        `launch to first finished training step (${size}px, fresh process, ` +
          `${cold ? "cold" : "warm"} shader cache, ${precompile ? "" : "no "}precompile` +
          `${firstRun ? ", no stored kernel choices: a first run" : ""}): ` +
          `${r.first_step_seconds.toFixed(1)} s = ${
            Object.entries(r.phases).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(" + ")
          } (process CPU ${Object.values(r.cpu_phases).reduce((a, b) => a + b, 0).toFixed(1)} s = ${
            Object.values(r.cpu_phases).map((v) => v.toFixed(1)).join(" + ")
          }); ${c.shader_modules} shader modules ${(c.shader_module_ms / 1000).toFixed(1)} s, ` +
          `${c.pipelines} pipelines ${(c.pipeline_ms / 1000).toFixed(1)} s on the main thread; ` +
          `step ${r.step_seconds.length} finished at ${r.step_seconds.at(-1)?.toFixed(1)} s`,
      );
    }
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
        first_step: firstSteps,
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
