/**
 * Faster kernels for tfjs-backend-webgpu, registered over the stock ones.
 *
 * tfjs looks kernels up by (name, backend) on every call, so registering ours replaces the stock
 * kernel everywhere, including inside the gradients of `conv2d`. Each of ours falls back to the
 * stock kernel for inputs it does not handle (NCHW, dilation, odd channel counts, non-float32).
 *
 * No tfjs-webgpu flag is set: on llvmpipe `WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE=false` (tfjs's tiled
 * dX) measured slower than the default naive dX on most ResNet-18 shapes (0.01 GFLOP/s on the
 * stem, 0.3 on layer4), and `WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE` (5, 15, 50, 100) changed a
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
import {
  type Conv2DBackpropFilterAttrs,
  conv2DBackpropFilterTexture,
  derFilterSupports,
} from "./conv2d_backprop_filter.ts";
import { type Conv2DAttrs, conv2DGemmSupports, conv2DTexture } from "./conv2d.ts";
import { channelReduce, channelReduceSupports, type ReduceAttrs } from "./channel_reduce.ts";
import { BATCH_NORM_KERNELS } from "@webtune/models";
import { batchNormKernels } from "./batch_norm.ts";
import {
  SGD_UPDATE_KERNEL,
  sgdUpdate,
  type SgdUpdateAttrs,
  sgdUpdateSupports,
} from "./sgd_update.ts";
import {
  type Conv2DBackpropInputAttrs,
  conv2DBackpropInputTexture,
  derInputSupports,
} from "./conv2d_backprop_input.ts";
import { disposeAll, runKernel } from "./kernel_util.ts";

export { conv2DBackpropFilterGemm } from "./conv2d_backprop_filter.ts";
export { conv2DGemm } from "./conv2d.ts";
export { channelReduce } from "./channel_reduce.ts";
export { SGD_UPDATE_KERNEL, sgdUpdateSupports } from "./sgd_update.ts";
export { conv2DBackpropInputGemm } from "./conv2d_backprop_input.ts";
export {
  conv2DBackpropFilterTexture,
  derFilterTextureSupports,
  derFilterTile,
} from "./conv2d_backprop_filter.ts";
export { conv2DTexture, conv2DTextureSupports, conv2DTile } from "./conv2d.ts";
export {
  conv2DBackpropInputTexture,
  derInputTextureSupports,
  derInputTile,
} from "./conv2d_backprop_input.ts";

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type Fast = (args: KernelArgs) => tf.TensorInfo | null;

/** Our kernels: each returns null when the stock kernel should run instead. */
const FAST: Record<string, Fast> = {
  Conv2DBackpropFilter: ({ inputs, attrs, backend }) => {
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const a = attrs as unknown as Conv2DBackpropFilterAttrs;
    if (!derFilterSupports(x, dy, a)) return null;
    return conv2DBackpropFilterTexture(x, dy, a, backend as WebGPUBackend);
  },
  Conv2DBackpropInput: ({ inputs, attrs, backend }) => {
    const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const a = attrs as unknown as Conv2DBackpropInputAttrs;
    if (!derInputSupports(dy, filter, a)) return null;
    return conv2DBackpropInputTexture(dy, filter, a, backend as WebGPUBackend);
  },
  Conv2D: ({ inputs, attrs, backend }) => {
    const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const a = attrs as unknown as Conv2DAttrs;
    if (!conv2DGemmSupports(x, filter, a)) return null;
    return conv2DTexture(x, filter, a, backend as WebGPUBackend);
  },
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
  [BATCH_NORM_KERNELS.gradInput]: ({ inputs, attrs, backend }) =>
    batchNormKernels.gradInput(
      inputs,
      Boolean(attrs?.relu),
      Number(attrs?.count),
      backend as WebGPUBackend,
    ),
  Sum: ({ inputs, attrs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const a = attrs as unknown as ReduceAttrs;
    if (!channelReduceSupports(x, a)) return null;
    return channelReduce(x, a, false, backend as WebGPUBackend);
  },
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
for (const name of BROADCAST_KERNELS) FAST[name] = broadcastWithoutBarrier(name);

/** The kernels webtune registers for webgpu (the "kernel choices" `deno task bench` prints). */
export const FAST_KERNEL_NAMES: readonly string[] = Object.keys(FAST);

/** The stock configs we replaced, by kernel name. */
const stock = new Map<string, tf.KernelConfig>();
/** Our registered kernel functions, to recognise them (idempotence). */
const ours = new Map<string, tf.KernelFunc>();

/**
 * Replaces webgpu's `Conv2DBackpropFilter` (20–45× faster on llvmpipe), `Conv2D` (2–19×) and
 * `Conv2DBackpropInput` (2.5–7×) with implicit-GEMM kernels (operands read from textures, another
 * 1.3–7× on llvmpipe, see texture_operands.ts), `Sum`/`Mean` over all axes but
 * the last (BatchNorm's statistics) with a reduction that needs no transpose, and has the
 * broadcasting binary kernels avoid a workgroup barrier (see `BROADCAST_KERNELS`); adds
 * {@linkcode SGD_UPDATE_KERNEL} and the training-mode BatchNorm kernels of `BATCH_NORM_KERNELS`.
 * Idempotent; does nothing unless the active backend is webgpu.
 */
export function registerFastKernels(): void {
  if (tf.getBackend() !== "webgpu") return;
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
  for (const [name, kernelFunc] of ours) {
    const current = tf.getKernel(name, "webgpu");
    if (!current || current.kernelFunc !== kernelFunc) continue;
    tf.unregisterKernel(name, "webgpu");
    const config = stock.get(name);
    if (config) tf.registerKernel(config);
  }
}
