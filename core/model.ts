import type * as tf from "@tensorflow/tfjs-core";

/**
 * What the core needs from a model: the surface of `ResNet18` in `@webtune/models`, kept as an
 * interface so the training loop can be tested with any classifier.
 */
export interface TrainableModel {
  readonly numClasses: number;
  /** Trainable `[state_dict name, variable]` pairs in state_dict order. */
  parameters(): [string, tf.Variable][];
  /** NHWC normalised images → logits; `train` uses batch statistics and updates BN buffers. */
  forward(x: tf.Tensor4D, mode: "train" | "eval" | "frozen"): { logits: tf.Tensor2D };
  /**
   * Frees what `eval` forwards keep between calls (ResNet: its BatchNorm-folded filters);
   * {@linkcode evaluate} calls it when done.
   */
  releaseEvalCache?(): void;
}
