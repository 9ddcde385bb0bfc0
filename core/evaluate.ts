import * as tf from "@tensorflow/tfjs-core";
import { disposeBatch, type HostBatch, toDevice } from "./batches.ts";
import { splitHostBatch } from "./micro_batch.ts";
import type { TrainableModel } from "./model.ts";

/** Predictions of a model over a stream of batches. */
export interface Evaluation {
  /** Fraction of examples whose argmax equals the label. */
  accuracy: number;
  labels: Int32Array;
  predictions: Int32Array;
  /** Softmax probabilities, row-major `[examples, classes]`. */
  probabilities: Float32Array;
}

/**
 * Runs the model in eval mode (BatchNorm running statistics) over every batch, as d2l's
 * `evaluate_accuracy_gpu` does.
 *
 * @example
 * ```ts
 * const { accuracy } = await evaluate(model, testBatches());
 * ```
 */
export async function evaluate(
  model: TrainableModel,
  batches: AsyncIterable<HostBatch>,
  options: { microBatch?: number } = {},
): Promise<Evaluation> {
  const labels: number[] = [];
  const predictions: number[] = [];
  const probabilities: number[] = [];
  try {
    for await (const whole of batches) {
      for (const host of splitHostBatch(whole, options.microBatch ?? whole.shape[0])) {
        await evaluateSlice(host);
      }
    }
  } finally {
    // Folded filters are kept across the batches, not between evaluations (the weights change).
    model.releaseEvalCache?.();
  }
  async function evaluateSlice(host: HostBatch): Promise<void> {
    const batch = toDevice(host);
    const [probs, predicted] = tf.tidy(() => {
      const { logits } = model.forward(batch.x, "eval");
      return [tf.softmax(logits), tf.argMax(logits, 1)];
    });
    disposeBatch(batch);
    const [p, k] = await Promise.all([probs.data(), predicted.data()]);
    probs.dispose();
    predicted.dispose();
    labels.push(...host.labels);
    predictions.push(...k);
    probabilities.push(...p);
    host.release?.();
  }
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === predictions[i]) correct++;
  return {
    accuracy: labels.length ? correct / labels.length : 0,
    labels: Int32Array.from(labels),
    predictions: Int32Array.from(predictions),
    probabilities: Float32Array.from(probabilities),
  };
}
