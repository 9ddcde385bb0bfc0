import * as tf from "@tensorflow/tfjs-core";
import { crossEntropyPerExample } from "./loss.ts";
import type { TrainableModel } from "./model.ts";
import type { Optimizer } from "./optimizer.ts";

/**
 * How BatchNorm behaves in a training step:
 * - `train` (PyTorch's `model.train()`, the chapter's PyTorch tab): normalise with the batch's
 *   statistics and fold them into the running statistics;
 * - `frozen` (the chapter's JAX tab): normalise with the running (e.g. ImageNet) statistics and
 *   leave them and `num_batches_tracked` unchanged; BN weight and bias are still trained.
 *   PyTorch's equivalent is the train step with every BatchNorm module in `eval()`.
 */
export type BnMode = "train" | "frozen";

/** Every {@linkcode BnMode}, for flag parsing and config validation. */
export const BN_MODES: readonly BnMode[] = ["train", "frozen"];

/** A batch on the device: NHWC normalised images and int32 labels. */
export interface DeviceBatch {
  x: tf.Tensor4D;
  labels: tf.Tensor1D;
}

/** Gradients of the summed loss, plus what the forward pass saw. Dispose with {@linkcode disposeGradients}. */
export interface Gradients {
  /** By state_dict name, in the parameters' layout (tfjs: conv HWIO, linear [in, out]). */
  grads: Map<string, tf.Tensor>;
  /** `CrossEntropyLoss(reduction="none")` of each example. */
  lossPerExample: tf.Tensor1D;
  /** argmax of the logits. */
  predictions: tf.Tensor1D;
}

/**
 * Forward in `mode` (`train`: BatchNorm uses and updates batch statistics; `frozen`: it uses the
 * running statistics and updates nothing), loss summed over the batch as d2l's
 * `train_batch_ch13` does (with `labelSmoothing` ε, PyTorch's
 * `CrossEntropyLoss(label_smoothing=ε)`), backward to `params`. Updates nothing but BN buffers
 * (in `train`).
 *
 * @example
 * ```ts
 * const g = computeGradients(model, batch, model.parameters());
 * console.log(await g.lossPerExample.data());
 * disposeGradients(g);
 * ```
 */
export function computeGradients(
  model: TrainableModel,
  batch: DeviceBatch,
  params: [string, tf.Variable][],
  mode: BnMode = "train",
  labelSmoothing = 0,
): Gradients {
  let lossPerExample: tf.Tensor1D | undefined;
  let predictions: tf.Tensor1D | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const { logits } = model.forward(batch.x, mode);
    // Kept out of variableGrads' tidy so the caller can read them after backward.
    lossPerExample = tf.keep(crossEntropyPerExample(logits, batch.labels, labelSmoothing));
    predictions = tf.keep(tf.argMax(logits, 1) as tf.Tensor1D);
    return tf.sum(lossPerExample) as tf.Scalar;
  }, params.map(([, v]) => v));
  value.dispose();
  const byName = new Map<string, tf.Tensor>();
  for (const [name, variable] of params) byName.set(name, grads[variable.name]);
  return { grads: byName, lossPerExample: lossPerExample!, predictions: predictions! };
}

/** Frees everything {@linkcode computeGradients} returned. */
export function disposeGradients(g: Gradients): void {
  for (const t of g.grads.values()) t.dispose();
  g.lossPerExample.dispose();
  g.predictions.dispose();
}

/** Summed loss and number of correct predictions of one training batch. */
export interface StepResult {
  lossSum: number;
  correct: number;
  examples: number;
}

/**
 * One optimizer step on a batch (SGD or AdamW): gradients of the summed loss, then
 * `optimizer.step`. Reads back only the loss and accuracy (a few bytes), as d2l's loop does each
 * batch.
 */
export async function trainStep(
  model: TrainableModel,
  batch: DeviceBatch,
  optimizer: Optimizer,
  mode: BnMode = "train",
  labelSmoothing = 0,
): Promise<StepResult> {
  const g = computeGradients(model, batch, optimizer.trainable(), mode, labelSmoothing);
  return applyGradients(g, optimizer, await batch.labels.data());
}

/**
 * Applies `g` with `optimizer.step`, reads back the summed loss and the number of correct
 * predictions against `labels`, and frees `g`.
 */
export async function applyGradients(
  g: Gradients,
  optimizer: Optimizer,
  labels: ArrayLike<number>,
): Promise<StepResult> {
  try {
    optimizer.step(g.grads);
    const [losses, predicted] = await Promise.all([g.lossPerExample.data(), g.predictions.data()]);
    let lossSum = 0;
    for (const v of losses) lossSum += v;
    return { lossSum, correct: countEqual(predicted, labels), examples: labels.length };
  } finally {
    disposeGradients(g);
  }
}

/** How many positions of `a` and `b` hold the same value. */
export function countEqual(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) n++;
  return n;
}
