/**
 * Micro-batches: one optimizer step on a batch that is processed in slices.
 *
 * d2l sums the cross-entropy over the batch before the backward pass, so the gradient of a batch
 * is exactly the sum of its slices' gradients. Running a batch of 128 as 4 × 32 and summing the
 * gradients before one optimizer step is therefore the chapter's step, with one difference that
 * d2l itself has: BatchNorm in train mode sees each slice's statistics, as `nn.DataParallel`
 * does when `train_ch13` splits a batch over several GPUs. With frozen BatchNorm the result is
 * the full-batch step up to float rounding.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { disposeBatch, type HostBatch, toDevice } from "./batches.ts";
import type { TrainableModel } from "./model.ts";
import type { Optimizer } from "./optimizer.ts";
import { applyGradients, computeGradients, type Gradients, type StepResult } from "./train_step.ts";

/** How a training step runs: micro-batch size, BatchNorm mode, label smoothing ε. */
export interface StepOptions {
  /** Examples per forward/backward pass (default: the whole batch). */
  microBatch?: number;
  mode?: "train" | "frozen";
  /** `CrossEntropyLoss(label_smoothing=ε)`; default 0. */
  labelSmoothing?: number;
}

/**
 * Slices a host batch into consecutive micro-batches of at most `size` examples. The slices are
 * views of `batch.x` and `batch.labels` (no copy); only the last slice carries `release`.
 *
 * @example
 * ```ts
 * const parts = splitHostBatch(batch, 32); // 128 examples → 4 slices of 32
 * ```
 */
export function splitHostBatch(batch: HostBatch, size: number): HostBatch[] {
  if (!Number.isInteger(size) || size < 1) {
    throw new Error(`micro-batch size must be a positive integer, got ${size}`);
  }
  const [n, h, w, c] = batch.shape;
  if (size >= n) return [batch];
  const perExample = h * w * c;
  const parts: HostBatch[] = [];
  for (let start = 0; start < n; start += size) {
    const end = Math.min(n, start + size);
    parts.push({
      x: batch.x.subarray(start * perExample, end * perExample),
      shape: [end - start, h, w, c],
      labels: batch.labels.subarray(start, end),
    });
  }
  parts[parts.length - 1].release = batch.release;
  return parts;
}

/**
 * Gradients of the loss summed over a whole host batch, computed `microBatch` examples at a time
 * and summed; the per-example losses and predictions are concatenated in batch order. Each slice
 * is uploaded, differentiated and freed before the next, so device memory holds one slice's
 * activations at a time. Dispose the result with `disposeGradients`.
 *
 * @example
 * ```ts ignore
 * const g = accumulateGradients(model, host, optimizer.trainable(), { microBatch: 32 });
 * optimizer.step(g.grads);
 * disposeGradients(g);
 * ```
 */
export function accumulateGradients(
  model: TrainableModel,
  host: HostBatch,
  params: [string, tf.Variable][],
  options: StepOptions = {},
): Gradients {
  const parts = splitHostBatch(host, options.microBatch ?? host.shape[0]);
  let total: Gradients | undefined;
  for (const part of parts) {
    const batch = toDevice(part);
    let g: Gradients;
    try {
      g = computeGradients(model, batch, params, options.mode, options.labelSmoothing);
    } finally {
      disposeBatch(batch);
    }
    total = total ? mergeInto(total, g) : g;
  }
  return total!;
}

/**
 * One optimizer step on a host batch, run as micro-batches of `microBatch` examples whose
 * gradients are summed first (the whole batch at once by default). Reads back only the losses
 * and predictions, as d2l's loop does each batch.
 */
export function trainOnHostBatch(
  model: TrainableModel,
  host: HostBatch,
  sgd: Optimizer,
  options: StepOptions = {},
): Promise<StepResult> {
  const g = accumulateGradients(model, host, sgd.trainable(), options);
  return applyGradients(g, sgd, host.labels);
}

/** Adds `next` into `total` (gradients summed, losses and predictions appended); frees `next`. */
function mergeInto(total: Gradients, next: Gradients): Gradients {
  const grads = new Map<string, tf.Tensor>();
  for (const [name, sum] of total.grads) {
    grads.set(name, tf.add(sum, next.grads.get(name)!));
    sum.dispose();
    next.grads.get(name)!.dispose();
  }
  const merged: Gradients = {
    grads,
    lossPerExample: tf.concat([total.lossPerExample, next.lossPerExample]),
    predictions: tf.concat([total.predictions, next.predictions]),
  };
  for (
    const t of [total.lossPerExample, next.lossPerExample, total.predictions, next.predictions]
  ) {
    t.dispose();
  }
  return merged;
}

/**
 * The largest micro-batch (≤ `batchSize`) whose largest tensor fits in `limitBytes`, given the
 * bytes that tensor takes per example; `batchSize` itself when it fits or when there is no limit.
 * Returns 0 when not even one example fits.
 *
 * @example
 * ```ts
 * microBatchThatFits(128, 3_211_264, 128 * 2 ** 20); // 41 on llvmpipe at 224 px
 * ```
 */
export function microBatchThatFits(
  batchSize: number,
  bytesPerExample: number,
  limitBytes: number | undefined,
): number {
  if (!limitBytes) return batchSize;
  return Math.min(batchSize, Math.floor(limitBytes / bytesPerExample));
}

/**
 * Splits `batchSize` into equal-as-possible micro-batches of at most `limit` examples: 128 with a
 * limit of 41 runs as 4 × 32, not 41 + 41 + 41 + 5 (BatchNorm statistics of a 5-example slice
 * are poor, and equal slices reuse one set of compiled shapes).
 *
 * @example
 * ```ts
 * balancedMicroBatch(128, 41); // 32
 * ```
 */
export function balancedMicroBatch(batchSize: number, limit: number): number {
  if (limit >= batchSize) return batchSize;
  if (limit < 1) throw new Error(`not even one example fits (limit ${limit})`);
  const slices = Math.ceil(batchSize / limit);
  return Math.ceil(batchSize / slices);
}
