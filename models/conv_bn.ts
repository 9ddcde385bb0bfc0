/**
 * A convolution followed by `eval`-mode BatchNorm, folded into one conv with a bias: in `eval`
 * BatchNorm is an affine map per channel, y = conv(x, W)·scale + shift with
 * scale = γ / √(var + ε) and shift = β − mean·scale, so y = conv(x, W·scale) + shift. A backend
 * that registers {@linkcode CONV_BIAS_ACT_KERNEL} (webtune's core does, for webgpu) then adds the
 * shift, the residual and the ReLU in the conv's store, and the BatchNorm pass over the output is
 * gone. The folded filters are computed once and reused until a parameter or running statistic
 * changes ({@linkcode FoldedConvCache}).
 *
 * Numerics: the conv sums products with W·scale instead of scaling the sum, so results differ
 * from the unfolded ones by float32 rounding (a few ulps per output; models/conv_bn_test.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type BatchNormEpilogue, type BatchNormVariables, BN_EPS } from "./batch_norm.ts";

/**
 * Name of the kernel a backend may register to run a conv with a bias and an epilogue in one
 * pass: inputs {x [N,H,W,Cin], filter [kh,kw,Cin,Cout], bias [Cout], residual? (the output's
 * shape), prepared? (what {@linkcode CONV_PREPARE_FILTER_KERNEL} made of this filter)}, attrs
 * {strides, pad, dataFormat, dilations, relu} (the first four as tfjs's `Conv2D` takes them) →
 * act(conv2d(x, filter) + bias (+ residual)). Without it, the same arithmetic runs as tfjs ops.
 */
export const CONV_BIAS_ACT_KERNEL = "WebtuneConv2DBiasAct";

/**
 * Name of the kernel a backend may register to prepare a folded filter once for the life of the
 * fold, where it can use that in {@linkcode CONV_BIAS_ACT_KERNEL} (webtune's core: a 3×3
 * stride-1 filter's Winograd transform, otherwise made at every call): inputs {filter}, attrs
 * {strides, pad, dataFormat, dilations} of the conv → a tensor, or one of size 0 where there is
 * nothing to prepare.
 */
export const CONV_PREPARE_FILTER_KERNEL = "WebtuneConvPrepareFilter";

/** A conv's filter with the BatchNorm's scale folded in, and the BatchNorm's shift. */
export interface FoldedConv {
  /** [kh, kw, Cin, Cout]: W·scale per output channel. */
  filter: tf.Tensor4D;
  /** [Cout]: β − mean·scale. */
  bias: tf.Tensor1D;
  /** What the backend prepared from `filter` ({@linkcode CONV_PREPARE_FILTER_KERNEL}), if any. */
  prepared?: tf.Tensor;
}

/** The stride and symmetric padding of the conv a fold is for (what a preparation depends on). */
export interface ConvGeometry {
  stride: number;
  pad: number;
}

function convAttrs({ stride, pad }: ConvGeometry): tf.NamedAttrMap {
  // `strides` as tfjs's conv2d passes a number, so both calls of a shape share its kernel choice.
  return { strides: stride, pad, dataFormat: "NHWC", dilations: [1, 1] };
}

/**
 * {@linkcode CONV_PREPARE_FILTER_KERNEL} of `filter` where the backend has it and makes
 * something of it; owned by the caller.
 */
function prepareFilter(filter: tf.Tensor4D, conv: ConvGeometry): tf.Tensor | undefined {
  if (tf.getKernel(CONV_PREPARE_FILTER_KERNEL, tf.getBackend()) === undefined) return undefined;
  const prepared = tf.engine().runKernel(
    CONV_PREPARE_FILTER_KERNEL,
    { filter },
    convAttrs(conv),
  ) as tf.Tensor;
  if (prepared.size > 0) return prepared;
  prepared.dispose();
  return undefined;
}

/**
 * Folds `eval`-mode BatchNorm `bn` into the conv filter `weight` (HWIO): the scale and shift
 * are computed with the same ops as `batchNorm`'s `eval` path, so the bias is the shift it adds.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { foldBatchNorm } from "./conv_bn.ts";
 * const c = 4;
 * const bn = {
 *   weight: tf.variable(tf.ones([c])), bias: tf.variable(tf.zeros([c])),
 *   runningMean: tf.variable(tf.zeros([c]), false), runningVar: tf.variable(tf.ones([c]), false),
 * };
 * const { filter, bias } = foldBatchNorm(tf.ones([3, 3, 2, c]), bn); // [3,3,2,4], [4]
 * ```
 */
export function foldBatchNorm(weight: tf.Tensor4D, bn: BatchNormVariables): FoldedConv {
  return tf.tidy(() => {
    const scale = tf.mul(bn.weight, tf.rsqrt(tf.add(bn.runningVar, BN_EPS)));
    const bias = tf.sub(bn.bias, tf.mul(bn.runningMean, scale)) as tf.Tensor1D;
    return { filter: tf.mul(weight, scale) as tf.Tensor4D, bias };
  });
}

/**
 * The folded filters of a model's conv + BatchNorm pairs, kept between forward passes and
 * recomputed for a pair when one of its five tensors changed. A tfjs variable gets new data
 * (a new `dataId`) on every `assign`, which is how optimizers and weight loading change it, so
 * comparing the `dataId`s tells whether the parameters changed since the fold.
 *
 * Nothing is kept while tfjs-webgpu only compiles pipelines (`WEBGPU_ENGINE_COMPILE_ONLY`, the
 * precompile pass): its kernels then return tensors whose data were never computed.
 *
 * @example
 * ```ts ignore
 * const cache = new FoldedConvCache();
 * const { filter, bias } = cache.get("layer1.0.conv1", weight, bn, { stride: 1, pad: 1 }); // folds
 * cache.get("layer1.0.conv1", weight, bn); // the same tensors, until an assign
 * cache.dispose();
 * ```
 */
export class FoldedConvCache {
  readonly #entries = new Map<string, { ids: unknown[]; folded: FoldedConv }>();

  /**
   * The fold of `weight` and `bn`, from the cache when none of them changed; owned by it. With
   * `conv` (the stride and padding it is used with), also what the backend prepares of the
   * folded filter for that conv ({@linkcode CONV_PREPARE_FILTER_KERNEL}), kept with the fold.
   */
  get(name: string, weight: tf.Variable, bn: BatchNormVariables, conv?: ConvGeometry): FoldedConv {
    const ids = [weight, bn.weight, bn.bias, bn.runningMean, bn.runningVar].map((v) => v.dataId);
    const entry = this.#entries.get(name);
    if (entry && entry.ids.every((id, i) => id === ids[i])) return entry.folded;
    if (entry) disposeFold(entry.folded);
    const folded = foldBatchNorm(weight as tf.Tensor4D, bn);
    const prepared = conv && prepareFilter(folded.filter, conv);
    if (prepared) folded.prepared = prepared;
    if (tf.env().getFlags()[COMPILE_ONLY_FLAG] === true) {
      if (entry) this.#entries.delete(name);
      return folded; // disposed by the caller's tidy
    }
    for (const t of foldTensors(folded)) tf.keep(t);
    this.#entries.set(name, { ids, folded });
    return folded;
  }

  /** Frees every folded tensor. */
  dispose(): void {
    for (const { folded } of this.#entries.values()) disposeFold(folded);
    this.#entries.clear();
  }
}

function foldTensors(folded: FoldedConv): tf.Tensor[] {
  return [folded.filter, folded.bias, ...(folded.prepared ? [folded.prepared] : [])];
}

function disposeFold(folded: FoldedConv): void {
  tf.dispose(foldTensors(folded));
}

/** tfjs-webgpu's flag: record pipelines to compile, run nothing (core's precompile sets it). */
const COMPILE_ONLY_FLAG = "WEBGPU_ENGINE_COMPILE_ONLY";

/** Whether the active backend runs {@linkcode CONV_BIAS_ACT_KERNEL}. */
export function hasConvBiasAct(): boolean {
  return tf.getKernel(CONV_BIAS_ACT_KERNEL, tf.getBackend()) !== undefined;
}

/**
 * act(conv2d(x, folded.filter) + folded.bias (+ residual)) with PyTorch's symmetric zero
 * padding `pad`: one {@linkcode CONV_BIAS_ACT_KERNEL} call where the backend has it, else tfjs
 * ops in the same order. No gradient: for `eval` forwards only.
 *
 * @example
 * ```ts ignore
 * const y = convBiasAct(x, cache.get("conv1", w, bn, { stride: 2, pad: 3 }), 2, 3, { relu: true });
 * ```
 */
export function convBiasAct(
  x: tf.Tensor4D,
  folded: FoldedConv,
  stride: number,
  pad: number,
  epilogue: BatchNormEpilogue = {},
): tf.Tensor4D {
  const relu = Boolean(epilogue.relu);
  if (hasConvBiasAct()) {
    const inputs: tf.NamedTensorMap = { x, filter: folded.filter, bias: folded.bias };
    if (epilogue.residual) inputs.residual = epilogue.residual;
    if (folded.prepared) inputs.prepared = folded.prepared;
    const attrs = { ...convAttrs({ stride, pad }), relu };
    return tf.engine().runKernel(CONV_BIAS_ACT_KERNEL, inputs, attrs) as tf.Tensor4D;
  }
  let y: tf.Tensor4D = tf.add(tf.conv2d(x, folded.filter, stride, pad), folded.bias);
  if (epilogue.residual) y = tf.add(y, epilogue.residual);
  return relu ? tf.relu(y) : y;
}
