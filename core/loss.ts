import * as tf from "@tensorflow/tfjs-core";

/**
 * Per-example cross-entropy, PyTorch's
 * `CrossEntropyLoss(reduction="none", label_smoothing=labelSmoothing)`: with ε = 0,
 * `logsumexp(logits) - logits[label]`; with ε > 0 the target is `(1 − ε)·onehot + ε/K`, so the
 * loss is `(1 − ε)·(−log p[label]) + ε/K·Σ_k (−log p[k])`, computed as
 * `logsumexp(logits) − (1 − ε)·logits[label] − ε·mean(logits)`.
 *
 * d2l's `train_batch_ch13` sums these over the batch before `backward()` (not the mean), which
 * scales every gradient by the batch size; that is why the chapter's learning rates (5e-5) look
 * so small. webtune keeps that convention (with or without smoothing) so its hyper-parameters
 * mean what the chapter's mean.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { crossEntropyPerExample } from "@webtune/core";
 * const losses = crossEntropyPerExample(tf.tensor2d([[2, 0], [0, 2]]), tf.tensor1d([0, 1], "int32"));
 * // both ≈ 0.127; with labelSmoothing 0.1 both ≈ 0.227
 * ```
 */
export function crossEntropyPerExample(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  labelSmoothing = 0,
): tf.Tensor1D {
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new Error(`label smoothing must be in [0, 1] (as PyTorch's), got ${labelSmoothing}`);
  }
  return tf.tidy(() => {
    const oneHot = tf.cast(tf.oneHot(labels, logits.shape[1]), "float32");
    const picked = tf.sum(tf.mul(logits, oneHot), 1);
    const lse = tf.logSumExp(logits, 1);
    if (labelSmoothing === 0) return tf.sub(lse, picked) as tf.Tensor1D;
    const smoothed = tf.add(
      tf.mul(picked, 1 - labelSmoothing),
      tf.mul(tf.mean(logits, 1), labelSmoothing),
    );
    return tf.sub(lse, smoothed) as tf.Tensor1D;
  });
}
