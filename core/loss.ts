import * as tf from "@tensorflow/tfjs-core";

/**
 * Per-example cross-entropy, PyTorch's `CrossEntropyLoss(reduction="none")`:
 * `logsumexp(logits) - logits[label]`.
 *
 * d2l's `train_batch_ch13` sums these over the batch before `backward()` (not the mean), which
 * scales every gradient by the batch size; that is why the chapter's learning rates (5e-5) look
 * so small. webtune keeps that convention so its hyper-parameters mean what the chapter's mean.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { crossEntropyPerExample } from "@webtune/core";
 * const losses = crossEntropyPerExample(tf.tensor2d([[2, 0], [0, 2]]), tf.tensor1d([0, 1], "int32"));
 * // both ≈ 0.127
 * ```
 */
export function crossEntropyPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const oneHot = tf.cast(tf.oneHot(labels, logits.shape[1]), "float32");
    const picked = tf.sum(tf.mul(logits, oneHot), 1);
    return tf.sub(tf.logSumExp(logits, 1), picked) as tf.Tensor1D;
  });
}
