/**
 * `torch.nn.BatchNorm2d` (eps 1e-5, momentum 0.1, affine, tracking running stats) on NHWC
 * tensors.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * How a forward pass treats BatchNorm:
 * - `train`: normalise with the batch statistics and update the running statistics
 *   (`model.train()` in PyTorch);
 * - `eval`: normalise with the running statistics (`model.eval()`);
 * - `frozen`: training for everything else, but BatchNorm normalises with the running statistics
 *   and leaves them alone (fine-tuning with frozen BN). ResNet-18 has no dropout, so `eval` and
 *   `frozen` compute the same numbers; the distinction is for callers and future models.
 */
export type ForwardMode = "train" | "eval" | "frozen";

/** PyTorch's `BatchNorm2d` defaults. */
export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

/** The four float tensors of one BatchNorm layer, 1-D of length C. */
export interface BatchNormVariables {
  weight: tf.Variable;
  bias: tf.Variable;
  runningMean: tf.Variable;
  runningVar: tf.Variable;
}

/** What {@linkcode batchNorm} applies after normalising (ResNet's BN → (+ shortcut) → ReLU). */
export interface BatchNormEpilogue {
  /** Added to the normalised output before the ReLU (a residual block's shortcut). */
  residual?: tf.Tensor4D;
  /** Apply ReLU last. */
  relu?: boolean;
}

/**
 * Normalises `x` [N,H,W,C] per channel, then adds `residual` and applies ReLU if asked. In
 * `train` mode it also moves the running statistics toward the batch's by `Variable.assign`
 * (allowed inside `tf.variableGrads`: the assigned data lives on by reference count after the
 * surrounding tidy disposes the tensor object). The caller counts the batch in
 * `num_batches_tracked`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { batchNorm } from "./batch_norm.ts";
 * const c = 4;
 * const bn = {
 *   weight: tf.variable(tf.ones([c])), bias: tf.variable(tf.zeros([c])),
 *   runningMean: tf.variable(tf.zeros([c]), false), runningVar: tf.variable(tf.ones([c]), false),
 * };
 * const y = batchNorm(tf.randomNormal([2, 3, 3, c]), bn, "train", { relu: true }); // stats updated
 * ```
 */
export function batchNorm(
  x: tf.Tensor4D,
  bn: BatchNormVariables,
  mode: ForwardMode,
  epilogue: BatchNormEpilogue = {},
): tf.Tensor4D {
  if (mode !== "train") {
    // y = x * scale + shift with scale = gamma / sqrt(var + eps), shift = beta - mean * scale:
    // two full-size ops, and differentiable with the gradients models/gradients.ts registers
    // (tf.batchNorm's FusedBatchNorm kernel has no gradient registered in Deno).
    const scale = tf.mul(bn.weight, tf.rsqrt(tf.add(bn.runningVar, BN_EPS)));
    const shift = tf.sub(bn.bias, tf.mul(bn.runningMean, scale));
    if (mode === "eval" && hasKernel(BATCH_NORM_KERNELS.affine)) {
      // One pass; it has no gradient, and `eval` is never differentiated (`frozen` is).
      const inputs: tf.NamedTensorMap = { x, scale, shift };
      if (epilogue.residual) inputs.residual = epilogue.residual;
      const relu = Boolean(epilogue.relu);
      return tf.engine().runKernel(BATCH_NORM_KERNELS.affine, inputs, { relu }) as tf.Tensor4D;
    }
    let y: tf.Tensor4D = tf.add(tf.mul(x, scale), shift);
    if (epilogue.residual) y = tf.add(y, epilogue.residual);
    return epilogue.relu ? tf.relu(y) : y;
  }

  const [n, h, w, c] = x.shape;
  const count = n * h * w;
  if (count < 2) {
    // PyTorch refuses too: the unbiased variance of one value is undefined.
    throw new Error(
      `batch norm: expected more than 1 value per channel when training, got input shape ` +
        `[${n},${c},${h},${w}] (NCHW)`,
    );
  }
  const inputs: tf.Tensor[] = [x, bn.weight, bn.bias];
  if (epilogue.residual) inputs.push(epilogue.residual);
  const relu = Boolean(epilogue.relu);
  const trainOp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xIn, weight, bias, residual] = args as tf.Tensor[];
    const mean = tf.mean(xIn, [0, 1, 2]);
    const variance = centeredSquareMean(xIn, mean); // biased, as used to normalise
    const invStd = inverseStd(variance);
    const out = apply(xIn, mean, invStd, weight, bias, residual, relu);
    tf.tidy(() => {
      // running = (1 - momentum) * running + momentum * batch, with the unbiased variance.
      const m = BN_MOMENTUM;
      bn.runningMean.assign(runningAverage(bn.runningMean, 1 - m, mean, m));
      bn.runningVar.assign(
        runningAverage(bn.runningVar, 1 - m, variance, (m * count) / (count - 1)),
      );
    });
    save([xIn, mean, invStd, weight, out]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xS, meanS, invStdS, weightS, outS] = saved;
        const bundle = { dy, x: xS, mean: meanS, invStd: invStdS, out: relu ? outS : undefined };
        return trainBackward(bundle, weightS, count, residual !== undefined);
      },
    };
  });
  return trainOp(...inputs) as tf.Tensor4D;
}

/**
 * Names of the kernels a backend may register to run training-mode BatchNorm in fewer passes
 * (webtune's core registers them for webgpu). Without them, the same arithmetic runs as tfjs ops.
 * Every [C] input is per channel (the last axis); every full-size input has x's shape.
 *
 * - `variance`: inputs {x, mean} → [C], mean over N·H·W of (x − mean)².
 * - `apply`: inputs {x, mean, invStd, weight, bias, residual?}, attrs {relu} →
 *   act(((x − mean)·invStd)·weight + bias (+ residual)).
 * - `gradSums`: inputs {dy, x, mean, invStd, y?}, attrs {relu} → [2, C]: Σg and Σg·x̂, with
 *   g = dy, masked by y > 0 (the forward's output) when relu, and x̂ = (x − mean)·invStd.
 * - `gradInput`: inputs {dy, x, mean, invStd, weight, sums, y?}, attrs {relu, count} →
 *   (g − Σg/count − x̂·(Σg·x̂/count))·(weight·invStd).
 * - `reluGrad`: inputs {dy, y} → g (dy where y > 0, else 0): the residual's gradient after a
 *   ReLU, one pass instead of tf.relu's `dy · step(y)`.
 * - `affine`: inputs {x, scale, shift, residual?}, attrs {relu} → act(x·scale + shift
 *   (+ residual)): the `eval` forward in one pass (no gradient).
 * - `invStd`: inputs {variance} ([C]), attrs {eps} → rsqrt(variance + eps), as
 *   `tf.rsqrt(tf.add(variance, eps))` rounds it (no gradient: batch statistics are not
 *   differentiated through; the backward is in closed form).
 * - `runningAverage`: inputs {running, batch} ([C]), attrs {keep, take} →
 *   running·keep + batch·take, each product and the sum rounded to float32 as the three ops
 *   `tf.add(tf.mul(running, keep), tf.mul(batch, take))` round them (no gradient).
 *
 * The last two replace per-channel ops (8 dispatches, 4 scalar uploads per layer and step) by 3
 * dispatches.
 */
export const BATCH_NORM_KERNELS = {
  variance: "WebtuneBatchNormVariance",
  apply: "WebtuneBatchNormApply",
  gradSums: "WebtuneBatchNormGradSums",
  gradInput: "WebtuneBatchNormGradInput",
  reluGrad: "WebtuneBatchNormReluGrad",
  affine: "WebtuneBatchNormAffine",
  invStd: "WebtuneBatchNormInvStd",
  runningAverage: "WebtuneBatchNormRunningAverage",
} as const;

/** Whether the active backend registered `name` (else we use tfjs ops). */
function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/** rsqrt(variance + {@linkcode BN_EPS}) (see `invStd` at {@linkcode BATCH_NORM_KERNELS}). */
function inverseStd(variance: tf.Tensor): tf.Tensor {
  if (hasKernel(BATCH_NORM_KERNELS.invStd)) {
    return tf.engine().runKernel(BATCH_NORM_KERNELS.invStd, { variance }, {
      eps: BN_EPS,
    }) as tf.Tensor;
  }
  return tf.rsqrt(tf.add(variance, BN_EPS));
}

/** running·keep + batch·take (see `runningAverage` at {@linkcode BATCH_NORM_KERNELS}). */
function runningAverage(
  running: tf.Tensor,
  keep: number,
  batch: tf.Tensor,
  take: number,
): tf.Tensor {
  if (hasKernel(BATCH_NORM_KERNELS.runningAverage)) {
    return tf.engine().runKernel(
      BATCH_NORM_KERNELS.runningAverage,
      { running, batch },
      { keep, take },
    ) as tf.Tensor;
  }
  return tf.add(tf.mul(running, keep), tf.mul(batch, take));
}

function centeredSquareMean(x: tf.Tensor, mean: tf.Tensor): tf.Tensor {
  if (hasKernel(BATCH_NORM_KERNELS.variance)) {
    return tf.engine().runKernel(BATCH_NORM_KERNELS.variance, { x, mean }, {}) as tf.Tensor;
  }
  return tf.mean(tf.square(tf.sub(x, mean)), [0, 1, 2]);
}

function apply(
  x: tf.Tensor,
  mean: tf.Tensor,
  invStd: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor,
  residual: tf.Tensor | undefined,
  relu: boolean,
): tf.Tensor {
  if (hasKernel(BATCH_NORM_KERNELS.apply)) {
    const inputs: tf.NamedTensorMap = { x, mean, invStd, weight, bias };
    if (residual) inputs.residual = residual;
    return tf.engine().runKernel(BATCH_NORM_KERNELS.apply, inputs, { relu }) as tf.Tensor;
  }
  let y = tf.add(tf.mul(tf.mul(tf.sub(x, mean), invStd), weight), bias);
  if (residual) y = tf.add(y, residual);
  return relu ? tf.relu(y) : y;
}

/** What the backward pass of one BatchNorm needs; `out` only after a ReLU (its mask). */
interface BackwardInputs {
  dy: tf.Tensor;
  x: tf.Tensor;
  mean: tf.Tensor;
  invStd: tf.Tensor;
  out?: tf.Tensor;
}

/**
 * The gradient of batch-statistics BatchNorm (+ residual, + ReLU) in closed form, as PyTorch's
 * `batch_norm_backward` computes it. Autodiff through the statistics gave the same numbers with
 * three times the full-size ops and a full-size host array uploaded per Mean gradient.
 *
 * With g = dy (masked by out > 0 after a ReLU): dβ = Σg, dγ = Σg·x̂, and
 * dx = γ/σ · (g − Σg/M − x̂·Σ(g·x̂)/M); the residual's gradient is g.
 */
function trainBackward(
  b: BackwardInputs,
  weight: tf.Tensor,
  count: number,
  residual: boolean,
): tf.Tensor[] {
  const relu = b.out !== undefined;
  // tf.relu's own gradient is dy · step(x); out > 0 exactly where its input is.
  const masked = () => {
    if (!relu) return b.dy;
    if (hasKernel(BATCH_NORM_KERNELS.reluGrad)) {
      return tf.engine().runKernel(
        BATCH_NORM_KERNELS.reluGrad,
        { dy: b.dy, y: b.out! },
        {},
      ) as tf.Tensor;
    }
    return tf.mul(b.dy, tf.step(b.out!));
  };
  if (hasKernel(BATCH_NORM_KERNELS.gradSums) && hasKernel(BATCH_NORM_KERNELS.gradInput)) {
    const inputs: tf.NamedTensorMap = { dy: b.dy, x: b.x, mean: b.mean, invStd: b.invStd };
    if (b.out) inputs.y = b.out;
    const sums = tf.engine().runKernel(BATCH_NORM_KERNELS.gradSums, inputs, { relu }) as tf.Tensor;
    const dx = tf.engine().runKernel(
      BATCH_NORM_KERNELS.gradInput,
      { ...inputs, weight, sums },
      { relu, count },
    ) as tf.Tensor;
    const [sumG, sumGXHat] = tf.unstack(sums);
    return residual ? [dx, sumGXHat, sumG, masked()] : [dx, sumGXHat, sumG];
  }
  const g = masked();
  const xHat = tf.mul(tf.sub(b.x, b.mean), b.invStd);
  const sumG = tf.sum(g, [0, 1, 2]);
  const sumGXHat = tf.sum(tf.mul(g, xHat), [0, 1, 2]);
  const k = tf.mul(weight, b.invStd);
  const dx = tf.mul(
    tf.sub(tf.sub(g, tf.div(sumG, count)), tf.mul(xHat, tf.div(sumGXHat, count))),
    k,
  );
  return residual ? [dx, sumGXHat, sumG, g] : [dx, sumGXHat, sumG];
}
