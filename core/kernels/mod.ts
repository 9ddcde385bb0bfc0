/**
 * Faster kernels for tfjs-backend-webgpu, registered over the stock ones.
 *
 * tfjs looks kernels up by (name, backend) on every call, so registering ours replaces the stock
 * kernel everywhere, including inside the gradients of `conv2d`. Each of ours falls back to the
 * stock kernel for inputs it does not handle (NCHW, dilation, odd channel counts, non-float32).
 *
 * The conv families (`Conv2D`, `Conv2DBackpropInput`, `Conv2DBackpropFilter`) have several
 * variants, declared in `variants.ts`: under `--kernels fast` the default one runs, under `auto`
 * the one measured fastest for the call's shape on this adapter (`autotune.ts`; stock tfjs is a
 * candidate, so a measured shape never runs slower than stock). {@linkcode tunePendingKernels}
 * does the measuring: the training loop calls it once, after its first step.
 *
 * One tfjs-webgpu flag is set, for compile time (see `SMALL_MATMUL_TILES`). Not set: on
 * llvmpipe `WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE=false` (tfjs's tiled dX) measured slower than the
 * default naive dX on most ResNet-18 shapes (0.01 GFLOP/s on the stem, 0.3 on layer4), and `WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE` (5, 15, 50, 100) changed a
 * ResNet-18 step by less than the run-to-run noise.
 *
 * @example
 * ```ts
 * import { setupBackend } from "../backend.ts";
 * import { registerFastKernels, unregisterFastKernels } from "./mod.ts";
 * await setupBackend({ backend: "webgpu" }); // registers them already (fastKernels: true)
 * registerFastKernels(); // idempotent
 * unregisterFastKernels(); // stock tfjs kernels again, e.g. to compare
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { channelReduce, channelReduceSupports, type ReduceAttrs } from "./channel_reduce.ts";
import {
  BATCH_NORM_KERNELS,
  CONV_BIAS_ACT_KERNEL,
  CONV_PREPARE_FILTER_KERNEL,
} from "@webtune/models";
import { batchNormKernels } from "./batch_norm.ts";
import { maxPool, type MaxPoolAttrs, maxPoolGrad } from "./max_pool.ts";
import { isSameShapeOp, sameShapeBinary } from "./elementwise.ts";
import { type BatchMatMulAttrs, smallMatMul } from "./small_matmul.ts";
import {
  SMALL_BINARY_OPS,
  SMALL_UNARY_OPS,
  smallBinary,
  type SmallBinaryOp,
  smallOneHot,
  smallUnary,
} from "./small_ops.ts";
import { smallReduce } from "./small_reduce.ts";
import { padV2, slice, unpack } from "./strided_copy.ts";
import {
  SGD_UPDATE_KERNEL,
  sgdUpdate,
  type SgdUpdateAttrs,
  sgdUpdateSupports,
} from "./sgd_update.ts";
import { disposeAll, runKernel } from "./kernel_util.ts";
import { winograd4FilterTransform, winograd4FilterWanted, XI4 } from "./conv2d_winograd4.ts";
import {
  DEFAULT_TUNE_BUDGET_MS,
  type KernelChoiceReport,
  type KernelChoiceStore,
  KernelTuner,
  type RunKernelChoices,
  type RunKernelStore,
  type ShapeBench,
  type ShapeRequest,
  type TuneReport,
} from "./autotune.ts";
import { setOperandCopyReuse } from "./texture_operands.ts";
import {
  atBatch,
  type CallSpec,
  callSpec,
  KERNEL_FAMILIES,
  KERNEL_SET_VERSION,
  type KernelArgs,
  type KernelFamily,
  type KernelVariant,
  shapeKey,
  shapeLabel,
  timingBatch,
  TRANSFORMED_FILTER_INPUT,
  type TunedKernel,
} from "./variants.ts";

export { conv2DBackpropFilterGemm } from "./conv2d_backprop_filter.ts";
export { conv2DGemm } from "./conv2d.ts";
export { channelReduce } from "./channel_reduce.ts";
export {
  cacheDispatches,
  type DispatchCacheStats,
  dispatchCacheStats,
  setDispatchCaching,
  uniformBytes,
} from "./dispatch_cache.ts";
export { SGD_UPDATE_KERNEL, sgdUpdateSupports } from "./sgd_update.ts";
export { conv2DBackpropInputGemm } from "./conv2d_backprop_input.ts";
export {
  conv2DBackpropFilterTexture,
  derFilterTextureSupports,
  derFilterTextureTile,
  derFilterTile,
} from "./conv2d_backprop_filter.ts";
export {
  conv2DWinograd4,
  conv2DWinograd4Preferred,
  winograd4FilterTransform,
  XI4,
} from "./conv2d_winograd4.ts";
export { conv2DTexture, conv2DTextureSupports, conv2DTextureTile, conv2DTile } from "./conv2d.ts";
export {
  conv2DBackpropInputTexture,
  derInputTextureSupports,
  derInputTile,
} from "./conv2d_backprop_input.ts";
export {
  conv2DBackpropInputWinograd,
  conv2DWinograd,
  conv2DWinogradFits,
  conv2DWinogradSupports,
  conv2DWinogradTransformed,
  winogradFilterTransform,
  winogradTile,
} from "./conv2d_winograd.ts";
export {
  conv2DBackpropFilterWinograd,
  type DerFilterWinogradTile,
  derFilterWinogradTile,
} from "./conv2d_backprop_filter_winograd.ts";
export {
  conv2DBackpropInputFma,
  derInputFmaSupports,
  derInputFmaTile,
} from "./conv2d_backprop_input_fma.ts";
export {
  DEFAULT_TUNE_BUDGET_MS,
  type KernelChoiceReport,
  type KernelChoiceStore,
  memoryKernelStore,
  type RunKernelChoices,
  type RunKernelStore,
  type TuneReport,
} from "./autotune.ts";
export { KERNEL_FAMILIES, KERNEL_SET_VERSION } from "./variants.ts";
export {
  keptTextureHits,
  operandCopyCount,
  operandTextureBytes,
  setMaxKeptTextureBytes,
  setOperandCopyReuse,
  textureDispatchCount,
} from "./texture_operands.ts";

type Fast = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[] | null;

/** Our kernels: each returns null when the stock kernel should run instead. */
const FAST: Record<string, Fast> = {
  Conv2DBackpropFilter: tunedKernel(KERNEL_FAMILIES.Conv2DBackpropFilter),
  Conv2DBackpropInput: tunedKernel(KERNEL_FAMILIES.Conv2DBackpropInput),
  Conv2D: tunedKernel(KERNEL_FAMILIES.Conv2D),
  [CONV_BIAS_ACT_KERNEL]: convBiasAct,
  [CONV_PREPARE_FILTER_KERNEL]: prepareFilter,
  [SGD_UPDATE_KERNEL]: ({ inputs, attrs, backend }) => {
    const { param, grad } = inputs as { param: tf.TensorInfo; grad: tf.TensorInfo };
    if (!sgdUpdateSupports(param, grad)) return null; // callers check first: no stock kernel
    return sgdUpdate(param, grad, attrs as unknown as SgdUpdateAttrs, backend as WebGPUBackend);
  },
  [BATCH_NORM_KERNELS.variance]: ({ inputs, backend }) =>
    batchNormKernels.variance(inputs, backend as WebGPUBackend),
  [BATCH_NORM_KERNELS.apply]: ({ inputs, attrs, backend }) =>
    batchNormKernels.apply(inputs, Boolean(attrs?.relu), backend as WebGPUBackend),
  [BATCH_NORM_KERNELS.gradSums]: ({ inputs, attrs, backend }) =>
    batchNormKernels.gradSums(inputs, Boolean(attrs?.relu), backend as WebGPUBackend),
  [BATCH_NORM_KERNELS.affine]: ({ inputs, attrs, backend }) =>
    batchNormKernels.affine(inputs, Boolean(attrs?.relu), backend as WebGPUBackend),
  [BATCH_NORM_KERNELS.reluGrad]: ({ inputs, backend }) =>
    batchNormKernels.reluGrad(inputs, backend as WebGPUBackend),
  [BATCH_NORM_KERNELS.gradInput]: ({ inputs, attrs, backend }) =>
    batchNormKernels.gradInput(
      inputs,
      Boolean(attrs?.relu),
      Number(attrs?.count),
      backend as WebGPUBackend,
    ),
  [BATCH_NORM_KERNELS.invStd]: ({ inputs, attrs, backend }) =>
    batchNormKernels.invStd(inputs, Number(attrs?.eps), backend as WebGPUBackend),
  [BATCH_NORM_KERNELS.runningAverage]: ({ inputs, attrs, backend }) =>
    batchNormKernels.runningAverage(
      inputs,
      Number(attrs?.keep),
      Number(attrs?.take),
      backend as WebGPUBackend,
    ),
  MaxPool: ({ inputs, attrs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    return maxPool(x, attrs as unknown as MaxPoolAttrs, backend as WebGPUBackend);
  },
  MaxPoolGrad: ({ inputs, attrs, backend }) => {
    const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    return maxPoolGrad(dy, input, attrs as unknown as MaxPoolAttrs, backend as WebGPUBackend);
  },
  BatchMatMul: ({ inputs, attrs, backend }) => {
    const be = backend as WebGPUBackend;
    const flag = tf.env().getNumber(MATMUL_THRESHOLD_FLAG);
    const threshold = flag > 0
      ? flag
      : (be as unknown as { thresholdToIncreaseWorkgroups: number }).thresholdToIncreaseWorkgroups;
    return smallMatMul(inputs, attrs as unknown as BatchMatMulAttrs, threshold, be);
  },
  Sum: ({ inputs, attrs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const a = attrs as unknown as ReduceAttrs;
    if (!channelReduceSupports(x, a)) {
      return smallReduce("Sum", inputs, attrs ?? {}, backend as WebGPUBackend);
    }
    return channelReduce(x, a, false, backend as WebGPUBackend);
  },
  Slice: ({ inputs, attrs, backend }) => slice(inputs, attrs ?? {}, backend as WebGPUBackend),
  Unpack: ({ inputs, attrs, backend }) => unpack(inputs, attrs ?? {}, backend as WebGPUBackend),
  PadV2: ({ inputs, attrs, backend }) => padV2(inputs, attrs ?? {}, backend as WebGPUBackend),
  Max: ({ inputs, attrs, backend }) =>
    smallReduce("Max", inputs, attrs ?? {}, backend as WebGPUBackend),
  ArgMax: ({ inputs, attrs, backend }) =>
    smallReduce("ArgMax", inputs, attrs ?? {}, backend as WebGPUBackend),
  Mean: ({ inputs, attrs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const a = attrs as unknown as ReduceAttrs;
    if (!channelReduceSupports(x, a)) return null;
    return channelReduce(x, a, true, backend as WebGPUBackend);
  },
};

/**
 * Element-wise binary kernels whose stock webgpu version broadcasts a short vector (rank 1, under
 * 128 elements, e.g. BatchNorm's per-channel statistics at 64 channels) through workgroup memory
 * and a barrier (tfjs-webgpu's `BinaryOpProgram` "shared" variant). SwiftShader runs such
 * workgroups as coroutines, one switch per barrier: `[8,32,32,64] * [64]` took 4.8 s there, the
 * same op at 128 channels (no barrier) 13 ms. Viewing the vector as `[1,…,1,C]` makes tfjs pick
 * its plain (vec4) broadcast instead; the values are the same.
 */
const BROADCAST_KERNELS = ["Add", "Sub", "Multiply", "RealDiv", "SquaredDifference", "Maximum"];

/** The stock kernel `name`, given a rank-1 operand as `[1,…,1,C]` (see BROADCAST_KERNELS). */
function broadcastWithoutBarrier(name: string): Fast {
  return ({ inputs, attrs, backend }) => {
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const short = (v: tf.TensorInfo, other: tf.TensorInfo) =>
      v.shape.length === 1 && other.shape.length > 1 && v.shape[0] < 128;
    const fallback = stock.get(name);
    if (!fallback || (!short(a, b) && !short(b, a))) return null;
    const [v, other] = short(a, b) ? [a, b] : [b, a];
    const shape = [...new Array(other.shape.length - 1).fill(1), v.shape[0]];
    const view = runKernel("Reshape", { x: v }, { shape }, backend as WebGPUBackend);
    const args = { a: v === a ? view : a, b: v === b ? view : b };
    const out = fallback.kernelFunc({ inputs: args, attrs, backend } as never) as tf.TensorInfo;
    disposeAll(backend as WebGPUBackend, [view]);
    return out;
  };
}
for (const name of BROADCAST_KERNELS) {
  const broadcast = broadcastWithoutBarrier(name);
  const small: Fast = (SMALL_BINARY_OPS as string[]).includes(name)
    ? (args) =>
      smallBinary(name as SmallBinaryOp, args.inputs, args.backend as WebGPUBackend) ??
        broadcast(args)
    : broadcast;
  FAST[name] = isSameShapeOp(name)
    ? (args) => sameShapeBinary(name, args.inputs, args.backend as WebGPUBackend) ?? small(args)
    : small;
}
// Equal has no barrier-free broadcast to fall back to (tfjs's kernel runs otherwise).
FAST.Equal = ({ inputs, backend }) => smallBinary("Equal", inputs, backend as WebGPUBackend);
FAST.OneHot = ({ inputs, attrs, backend }) =>
  smallOneHot(inputs, attrs ?? {}, backend as WebGPUBackend);
for (const name of SMALL_UNARY_OPS) {
  FAST[name] = ({ inputs, backend }) => smallUnary(name, inputs, backend as WebGPUBackend);
}

/** The kernels webtune registers for webgpu (the "kernel choices" `deno task bench` prints). */
export const FAST_KERNEL_NAMES: readonly string[] = Object.keys(FAST);

/**
 * tfjs-webgpu's flag: a matmul whose output has at most this many 32×32 tiles runs a program
 * for small outputs instead of its shared-memory tiled one (`MatMulPackedProgram`).
 */
const MATMUL_THRESHOLD_FLAG = "WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL";
/**
 * Our value of {@linkcode MATMUL_THRESHOLD_FLAG} (tfjs: 8 off Intel GPUs), so that the
 * classifier's backward matmuls ([16, 512] outputs: 16 tiles) take the small-output program.
 * Why: llvmpipe compiles a pipeline at its first dispatch, and the tiled program took 1.2–1.4 s
 * each to compile with a cold shader cache (2.5–3 s on a loaded machine), the small-output one
 * 0.2–0.3 s, both running these shapes in the same ~15 ms (a ResNet-18 step's calls at 64 px
 * replayed with `MESA_SHADER_CACHE_DISABLE=true`). Our convs do not use tfjs's matmul; a stock
 * conv that tfjs runs as im2col + matmul may take the small-output program too, and is timed
 * so when the tuner measures it. `unregisterFastKernels` restores tfjs's value.
 */
export const SMALL_MATMUL_TILES = 64;
/** The flag's value before {@linkcode registerFastKernels} set it, to restore. */
let stockMatMulThreshold: number | undefined;

/** The stock configs we replaced, by kernel name. */
const stock = new Map<string, tf.KernelConfig>();
/** Our registered kernel functions, to recognise them (idempotence). */
const ours = new Map<string, tf.KernelFunc>();

/**
 * Replaces webgpu's `Conv2DBackpropFilter` (20–45× faster on llvmpipe), `Conv2D` (2–19×) and
 * `Conv2DBackpropInput` (2.5–7×; its FMA form 1.3–1.45× more at 64 px) with implicit-GEMM kernels
 * (operands read from textures, another 1.3–7× on llvmpipe, see texture_operands.ts; the 3×3
 * stride-1 ones of ≥ 128 channels by Winograd F(2×2, 3×3), forward and dX, 1.3–2.4× more at
 * 224 px, see conv2d_winograd.ts, and dW by F(3×3, 2×2), conv2d_backprop_filter_winograd.ts;
 * an `eval` forward's folded 3×3 stride-1 convs by F(4×4, 3×3), conv2d_winograd4.ts),
 * `Sum`/`Mean` over all axes but the last (BatchNorm's statistics) or over H and W (global
 * average pool) with a reduction that needs no transpose, `MaxPool`/`MaxPoolGrad` with unrolled
 * windows (PyTorch's tie rule), large same-shape `Add`/`Sub`/`Multiply` with texture operands,
 * small `Add`/`Sub`/`Multiply`/`RealDiv`/`Equal`/`Exp`/`Log`/`Neg`/`Rsqrt`/`OneHot` with one
 * pipeline, small `Sum`/`Max`/`ArgMax` with one more and `Slice`/`Unpack`/
 * `PadV2` with one more (fewer pipelines to compile in a cold first step; small_ops.ts,
 * small_reduce.ts, strided_copy.ts),
 * and has the broadcasting binary kernels avoid a workgroup barrier (see `BROADCAST_KERNELS`); adds
 * {@linkcode SGD_UPDATE_KERNEL} and the training-mode BatchNorm kernels of `BATCH_NORM_KERNELS`.
 * Idempotent; does nothing unless the active backend is webgpu.
 */
export function registerFastKernels(): void {
  if (tf.getBackend() !== "webgpu") return;
  if (stockMatMulThreshold === undefined) {
    stockMatMulThreshold = tf.env().getNumber(MATMUL_THRESHOLD_FLAG);
    tf.env().set(MATMUL_THRESHOLD_FLAG, SMALL_MATMUL_TILES);
  }
  for (const name of Object.keys(FAST)) {
    const current = tf.getKernel(name, "webgpu");
    const kernelFunc = wrapped(name);
    if (current?.kernelFunc === kernelFunc) continue;
    if (current) {
      stock.set(name, current);
      tf.unregisterKernel(name, "webgpu");
    }
    tf.registerKernel({ kernelName: name, backendName: "webgpu", kernelFunc });
  }
}

/** Our kernel for `name`, falling back to the stock one; one function per name. */
function wrapped(name: string): tf.KernelFunc {
  let kernelFunc = ours.get(name);
  if (!kernelFunc) {
    const fast = FAST[name];
    kernelFunc = ((args: KernelArgs) => {
      const out = fast(args);
      if (out) return out;
      const fallback = stock.get(name);
      if (!fallback) throw new Error(`no stock webgpu ${name} kernel to fall back to`);
      return fallback.kernelFunc(args as never);
    }) as tf.KernelFunc;
    ours.set(name, kernelFunc);
  }
  return kernelFunc;
}

/** Puts the stock kernels back and removes webtune's own (for benchmarks and tests). */
export function unregisterFastKernels(): void {
  if (stockMatMulThreshold !== undefined) {
    tf.env().set(MATMUL_THRESHOLD_FLAG, stockMatMulThreshold);
    stockMatMulThreshold = undefined;
  }
  for (const [name, kernelFunc] of ours) {
    const current = tf.getKernel(name, "webgpu");
    if (!current || current.kernelFunc !== kernelFunc) continue;
    tf.unregisterKernel(name, "webgpu");
    const config = stock.get(name);
    if (config) tf.registerKernel(config);
  }
}

/**
 * How the tuned families (see `variants.ts`) pick a variant: `fast` always runs the family's
 * default variant, `auto` the one measured fastest for the call's shape (see `autotune.ts`).
 */
export type KernelMode = "auto" | "fast";

let mode: KernelMode = "fast";

/** Chooses and remembers the tuned families' variants (one per process, like the registry). */
const kernelTuner = new KernelTuner({ bench: benchCall, overhead: readbackWait });

/** What every timed run waits besides its work: the readback of a 4-float GPU buffer. */
async function readbackWait(): Promise<void> {
  const backend = tf.backend() as WebGPUBackend;
  const probe = backend.makeTensorInfo([4], "float32");
  (backend as unknown as { uploadToGPU(dataId: unknown): void }).uploadToGPU(probe.dataId);
  try {
    await backend.read(probe.dataId);
  } finally {
    backend.disposeData(probe.dataId);
  }
}

/** The kernel of a tuned family: the chosen variant, or null to run the stock kernel. */
function tunedKernel(family: KernelFamily): Fast {
  return (args) => {
    const variant = chosenVariant(family, args);
    return variant?.run ? variant.run(args) : null;
  };
}

/**
 * The variant of `family` that runs this call (see {@linkcode KernelMode}), or null when only
 * stock handles it.
 */
function chosenVariant(family: KernelFamily, args: KernelArgs): KernelVariant | null {
  const candidates = family.variants.filter((v) => v.supports(args));
  if (candidates.length <= 1) return null; // only stock handles it: nothing to choose
  let name = candidates.some((v) => v.name === family.defaultVariant)
    ? family.defaultVariant
    : candidates.find((v) => v.name !== "stock")!.name;
  if (mode === "auto") {
    const spec = callSpec(family, args);
    name = kernelTuner.choose({
      family: family.name,
      key: shapeKey(family, spec),
      label: shapeLabel(family, spec),
      candidates: candidates.map((v) => v.name),
      defaultVariant: candidates.some((v) => v.name === family.firstUseVariant)
        ? family.firstUseVariant
        : name,
      spec,
    });
  }
  return candidates.find((v) => v.name === name)!;
}

/**
 * {@linkcode CONV_BIAS_ACT_KERNEL} (the `eval` forward's conv with its BatchNorm folded in):
 * act(conv + bias (+ residual)). The conv runs as the `Conv2D` family's chosen variant for its
 * x and filter with the epilogue in its store; where that variant has none (stock tfjs), the
 * epilogue runs after it as tfjs kernels.
 */
function convBiasAct({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const { x, filter, bias, residual, prepared } = inputs as Record<string, tf.TensorInfo>;
  const be = backend as WebGPUBackend;
  const relu = Boolean(attrs?.relu);
  const [, , cin, cout] = filter.shape;
  // What prepareFilter made: the Winograd transform, for the Conv2D variants to use (its shape
  // is also part of the call's key, so such calls are tuned with it, apart from training's).
  const transformed = prepared && prepared.shape.join() === [XI4, cin, cout].join()
    ? { [TRANSFORMED_FILTER_INPUT]: prepared }
    : {};
  const convArgs: KernelArgs = { inputs: { x, filter, ...transformed }, attrs, backend };
  const variant = chosenVariant(KERNEL_FAMILIES.Conv2D, convArgs);
  if (variant?.runWithEpilogue) return variant.runWithEpilogue(convArgs, { bias, residual, relu });
  // The stock conv itself (what was chosen), not the registered Conv2D: that would choose again,
  // for a training call's key.
  const stockConv = stock.get("Conv2D");
  const temps = [
    stockConv
      ? stockConv.kernelFunc({
        inputs: { x, filter },
        attrs: attrs ?? {},
        backend: be,
      }) as tf.TensorInfo
      : runKernel("Conv2D", { x, filter }, attrs ?? {}, be),
  ];
  temps.push(runKernel("Add", { a: temps[0], b: bias }, {}, be));
  if (residual) temps.push(runKernel("Add", { a: temps[temps.length - 1], b: residual }, {}, be));
  if (relu) temps.push(runKernel("Relu", { x: temps[temps.length - 1] }, {}, be));
  const out = temps.pop()!;
  disposeAll(be, temps);
  return out;
}

/**
 * `CONV_PREPARE_FILTER_KERNEL` (models/conv_bn.ts: run once per fold of an `eval` forward's conv
 * and BatchNorm): the Winograd F(4×4, 3×3) transform of a folded 3×3 stride-1 filter, which the
 * `winograd` Conv2D variant runs with (conv2d_winograd4.ts; only there, so only `eval` forwards
 * run F(4×4)), else a tensor of size 0. Whether the conv then runs by Winograd also depends on
 * its input (tile count, map size) and, under `auto`, on the tuner; the transform of a filter
 * that ends up unused costs 4× its floats (36/9) for the fold's life (ResNet-18: 150 MB).
 */
function prepareFilter({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const { filter } = inputs as { filter: tf.TensorInfo };
  const be = backend as WebGPUBackend;
  return winograd4FilterWanted(filter, attrs as never, be)
    ? winograd4FilterTransform(filter, be)
    : be.makeTensorInfo([0], "float32");
}

/** Deterministic inputs in [-1, 1) (the values do not change a kernel's speed). */
function patternData(size: number): Float32Array {
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = ((i * 7919) % 2003) / 1001.5 - 1;
  return data;
}

/**
 * The tuner's bench for a pending call: inputs of its shapes at {@linkcode timingBatch} (and at
 * the call's own batch for a variant with `timeAtCallBatch`), and a run that waits for the result
 * by reading it back and tells the tuner how to scale its time to the call's batch (the tuner
 * keeps {@linkcode readbackWait} out of the scaling).
 */
function benchCall(request: ShapeRequest): ShapeBench {
  const family = KERNEL_FAMILIES[request.family as TunedKernel];
  const full = request.spec as CallSpec;
  const callBatch = family.conv(full).x[0];
  const backend = tf.backend() as WebGPUBackend;
  // Inputs per batch timed at: the reduced one, and the call's own for the variants that ask.
  const inputsAt = new Map<number, Record<string, tf.TensorInfo>>();
  const argsAt = (n: number): KernelArgs => {
    const spec = atBatch(full, n);
    let inputs = inputsAt.get(n);
    if (!inputs) {
      inputs = {};
      for (const [name, shape] of Object.entries(spec.inputs)) {
        const size = shape.reduce((a, b) => a * b, 1);
        inputs[name] = backend.makeTensorInfo(shape, "float32", patternData(size));
      }
      inputsAt.set(n, inputs);
    }
    return { inputs, attrs: spec.attrs, backend };
  };
  const reduced = timingBatch(family, full);
  return {
    run: async (name) => {
      const variant = family.variants.find((v) => v.name === name);
      if (!variant) throw new Error(`no ${family.name} variant ${name}`);
      const stockKernel = stock.get(family.name);
      if (!variant.run && !stockKernel) throw new Error(`no stock webgpu ${family.name} kernel`);
      const n = variant.timeAtCallBatch ? callBatch : reduced;
      const args = argsAt(n);
      const out = variant.run ? variant.run(args) : stockKernel!.kernelFunc(args as never);
      try {
        await backend.read((out as tf.TensorInfo).dataId);
      } finally {
        disposeAll(backend, [out as tf.TensorInfo]);
      }
      return callBatch / n;
    },
    dispose: () => {
      for (const inputs of inputsAt.values()) disposeAll(backend, Object.values(inputs));
    },
  };
}

/** Options of {@linkcode configureKernelChoice}. */
export interface KernelChoiceOptions {
  mode: KernelMode;
  /** Names the adapter the choices are measured on (its vendor, architecture, description). */
  adapter: string;
  /**
   * Where choices persist (`auto`); absent: the store given to an earlier call, if any (a
   * fresh device on the same adapter keeps its cache), else choices last for the process.
   */
  store?: KernelChoiceStore;
  /** Measure this adapter's shapes again instead of using stored choices (`bench`). */
  fresh?: boolean;
}

let lastStore: KernelChoiceStore | undefined;

/**
 * Sets how the tuned families choose (see {@linkcode KernelMode}) and, for `auto`, loads the
 * choices stored for `adapter` and this {@linkcode KERNEL_SET_VERSION}. A corrupt store is
 * ignored with a one-line warning.
 *
 * @example
 * ```ts ignore
 * await configureKernelChoice({ mode: "auto", adapter: "llvmpipe", store: memoryKernelStore() });
 * ```
 */
export async function configureKernelChoice(options: KernelChoiceOptions): Promise<void> {
  mode = options.mode;
  if (options.store) lastStore = options.store;
  if (mode !== "auto") return;
  await kernelTuner.useStore(lastStore, `${KERNEL_SET_VERSION} ${options.adapter}`, {
    fresh: options.fresh,
  });
}

/** Switches between `auto` and `fast` without touching the stored choices (`bench`). */
export function setKernelMode(next: KernelMode): void {
  mode = next;
}

/**
 * Times the candidates of every shape met since the last call that has no recorded choice,
 * within `budgetMs` (default {@linkcode DEFAULT_TUNE_BUDGET_MS}), and saves the winners. Does
 * nothing unless webtune's kernels run in `auto` mode on webgpu. The training loop calls it
 * once, after its first step; later steps then use the winners.
 *
 * @example
 * ```ts ignore
 * const report = await tunePendingKernels({ budgetMs: 5000 });
 * console.log(`${report.decided.length} shapes tuned in ${report.ms.toFixed(0)} ms`);
 * ```
 */
export async function tunePendingKernels(
  options: { budgetMs?: number } = {},
): Promise<TuneReport> {
  kernelTuner.endFirstUse();
  const active = mode === "auto" && tf.getBackend() === "webgpu" &&
    tf.getKernel("Conv2D", "webgpu")?.kernelFunc === ours.get("Conv2D");
  if (!active || (kernelTuner.pendingCount === 0 && !kernelTuner.awaitingPin)) {
    return { ms: 0, decided: [], pending: active ? kernelTuner.pendingCount : 0 };
  }
  // Timed on fixed inputs, every call copies its operands, as before kept filter textures.
  const reuse = setOperandCopyReuse(false);
  try {
    return await kernelTuner.tune({ budgetMs: options.budgetMs ?? DEFAULT_TUNE_BUDGET_MS });
  } finally {
    setOperandCopyReuse(reuse);
  }
}

/**
 * Under `auto`, runs every conv shape's first-use variant (one generic pipeline per family, see
 * `variants.ts`), stored winners included, until the next {@linkcode tunePendingKernels} call:
 * `prepareRun` calls it, so a training run's first step compiles the same few pipelines whatever
 * the store holds, and the winners run from the step after the tuning pass. See
 * `KernelTuner.firstUseUntilTune`.
 *
 * @example
 * ```ts ignore
 * firstUseUntilTuned();
 * await trainStep(model, batch, optimizer, "train"); // first-use variants
 * await tunePendingKernels(); // later steps: the winners
 * ```
 */
export function firstUseUntilTuned(): void {
  kernelTuner.firstUseUntilTune();
}

/**
 * Under `auto`, makes this process compute with a run's recorded kernel choices and record new
 * ones: `recorded` is the run's record (undefined for a new run), `epoch` the first epoch this
 * process trains, `store` where each change goes (the run directory). The choices are pinned at
 * the first {@linkcode tunePendingKernels} call (after the first step), so a resumed run
 * computes exactly as the uninterrupted one would; see `KernelTuner.pinRun` for the rules.
 * Does nothing under `fast` (its variants are fixed anyway). Call it after
 * {@linkcode configureKernelChoice}, which ends the previous run's pins.
 *
 * @example
 * ```ts ignore
 * pinRunKernelChoices(undefined, { epoch: 1, store: { save: (c) => writeRecord(c) } });
 * ```
 */
export function pinRunKernelChoices(
  recorded: RunKernelChoices | undefined,
  options: { epoch: number; store: RunKernelStore },
): void {
  if (mode === "auto") kernelTuner.pinRun(recorded, options);
}

/** The pinned run's choices now (undefined outside one): what its record must hold. */
export function runKernelChoices(): RunKernelChoices | undefined {
  return mode === "auto" ? kernelTuner.runChoices() : undefined;
}

/** Writes the pinned run's record if shapes were met since the last write (call per epoch). */
export async function saveRunKernelChoices(): Promise<void> {
  if (mode === "auto") await kernelTuner.saveRun();
}

/** Every decided shape of this adapter (measured in this process or loaded from the store). */
export function kernelChoices(): KernelChoiceReport[] {
  return kernelTuner.choices();
}

/**
 * The chosen variant with its tile, e.g. `texture 32x2`, `buffer 8x2` or `stock`.
 *
 * @example
 * ```ts ignore
 * kernelChoices().map(describeVariant); // ["fast 32x2", "stock", …]
 * ```
 */
export function describeVariant(choice: KernelChoiceReport): string {
  const family = KERNEL_FAMILIES[choice.family as TunedKernel];
  const variant = family?.variants.find((v) => v.name === choice.variant);
  const spec = choice.spec as CallSpec | undefined;
  if (!variant?.tile || !spec) return choice.variant;
  const inputs: tf.NamedTensorInfoMap = {};
  for (const [name, shape] of Object.entries(spec.inputs)) {
    inputs[name] = { dataId: {}, shape, dtype: "float32" };
  }
  return `${choice.variant} ${variant.tile({ inputs, attrs: spec.attrs, backend: undefined })}`;
}
