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

/**
 * Normalises `x` [N,H,W,C] per channel. In `train` mode it also moves the running statistics
 * toward the batch's by `Variable.assign` (allowed inside `tf.variableGrads`: the assigned data
 * lives on by reference count after the surrounding tidy disposes the tensor object). The caller
 * counts the batch in `num_batches_tracked`.
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
 * const y = batchNorm(tf.randomNormal([2, 3, 3, c]), bn, "train"); // running stats updated
 * ```
 */
export function batchNorm(x: tf.Tensor4D, bn: BatchNormVariables, mode: ForwardMode): tf.Tensor4D {
  if (mode !== "train") {
    // y = x * scale + shift with scale = gamma / sqrt(var + eps), shift = beta - mean * scale:
    // two full-size ops, and differentiable with the gradients models/gradients.ts registers
    // (tf.batchNorm's FusedBatchNorm kernel has no gradient registered in Deno).
    const scale = tf.mul(bn.weight, tf.rsqrt(tf.add(bn.runningVar, BN_EPS)));
    const shift = tf.sub(bn.bias, tf.mul(bn.runningMean, scale));
    return tf.add(tf.mul(x, scale), shift);
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
  // The statistics are ordinary ops on x, so autodiff differentiates through them exactly as
  // PyTorch does. This is tf.moments spelled out, reusing x - mean for the output.
  const mean = tf.mean(x, [0, 1, 2]);
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), [0, 1, 2]); // biased, as used to normalise
  const scale = tf.mul(bn.weight, tf.rsqrt(tf.add(variance, BN_EPS)));
  const y = tf.add(tf.mul(centered, scale), bn.bias) as tf.Tensor4D;

  tf.tidy(() => {
    // running = (1 - momentum) * running + momentum * batch, with the unbiased variance.
    const m = BN_MOMENTUM;
    bn.runningMean.assign(tf.add(tf.mul(bn.runningMean, 1 - m), tf.mul(mean, m)));
    bn.runningVar.assign(
      tf.add(tf.mul(bn.runningVar, 1 - m), tf.mul(variance, (m * count) / (count - 1))),
    );
  });
  return y;
}
