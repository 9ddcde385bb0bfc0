import type { HostBatch } from "./batches.ts";
import { evaluate } from "./evaluate.ts";
import type { EpochMetrics, TrainListener } from "./events.ts";
import type { TrainableModel } from "./model.ts";
import type { Optimizer } from "./optimizer.ts";
import type { TrainingRecipe } from "./recipe.ts";
import { trainOnHostBatch } from "./micro_batch.ts";
import type { BnMode } from "./train_step.ts";
import { tunePendingKernels } from "./kernels/mod.ts";
import { throwIfBackendDeviceError } from "./device_errors.ts";

/**
 * Training produced a non-finite loss. The model's weights are no longer trustworthy: callers
 * keep the last good checkpoint and write no model.
 */
export class DivergedError extends Error {
  constructor(readonly epoch: number, readonly batch: number, readonly lr: number) {
    super(
      `training diverged: the loss is not finite at epoch ${epoch}, batch ${batch} ` +
        `(learning rate ${lr})`,
    );
    this.name = "DivergedError";
  }
}

/** What {@linkcode train} needs. */
export interface TrainOptions {
  model: TrainableModel;
  optimizer: Optimizer;
  /**
   * Which parameters learn each epoch (`--freeze-epochs`) and each batch's learning rate
   * (`--schedule`, `--warmup-epochs`); without one, the optimizer's rates stay as they are.
   */
  recipe?: TrainingRecipe;
  /** `CrossEntropyLoss(label_smoothing=ε)`; 0 (default) is the chapter's loss. */
  labelSmoothing?: number;
  /** Total epochs of the run (including those already done when resuming). */
  epochs: number;
  /** Epochs already completed (resume); training starts at `completedEpochs + 1`. Default 0. */
  completedEpochs?: number;
  /** Metrics of the completed epochs (resume), carried into the result. */
  history?: EpochMetrics[];
  /**
   * The training batches of a 1-based epoch. A resumable run derives its shuffling and
   * augmentation from (seed, epoch), so epoch 3 of a resumed run sees what epoch 3 of an
   * uninterrupted run saw.
   */
  trainBatches: (epoch: number) => AsyncIterable<HostBatch>;
  /** The test batches (test transform, no shuffling). */
  testBatches: () => AsyncIterable<HostBatch>;
  /** Batches per training epoch, for progress. */
  batchesPerEpoch: number;
  trainExamples: number;
  testExamples: number;
  /** BatchNorm in train mode (`train`, default) or with frozen running statistics. */
  mode?: BnMode;
  /**
   * Examples per forward/backward pass; a larger batch runs as micro-batches whose gradients are
   * summed before one optimizer step (see `micro_batch.ts`). Default: the whole batch.
   */
  microBatch?: number;
  onEvent?: TrainListener;
  /** Called after each completed epoch (the CLI writes a checkpoint there). */
  afterEpoch?: (metrics: EpochMetrics, history: EpochMetrics[]) => Promise<void>;
  /** Aborting finishes the current batch and stops; the partial epoch is not recorded. */
  signal?: AbortSignal;
  /** Clock in milliseconds; `performance.now` by default. */
  now?: () => number;
}

/** How a run ended. */
export interface TrainResult {
  epochs: EpochMetrics[];
  /** True when `signal` stopped the run before its last epoch finished. */
  stopped: boolean;
  /** Training examples per second over all completed epochs of this call. */
  examplesPerSec: number;
}

/**
 * The d2l `train_ch13` loop: per epoch, train in train mode over every batch (loss summed per
 * batch, SGD step), then test accuracy in eval mode; reports mean loss per example, train and
 * test accuracy, and examples/sec over the training batches.
 *
 * @example
 * ```ts
 * const result = await train({ model, optimizer, epochs: 5, trainBatches, testBatches,
 *   batchesPerEpoch, trainExamples, testExamples, onEvent: console.log });
 * ```
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { model, optimizer, recipe, epochs, onEvent = () => {}, signal } = options;
  const stepOptions = {
    mode: options.mode ?? "train",
    microBatch: options.microBatch,
    labelSmoothing: options.labelSmoothing ?? 0,
  };
  const now = options.now ?? (() => performance.now());
  const history = [...(options.history ?? [])];
  const startEpoch = (options.completedEpochs ?? 0) + 1;
  let trainMs = 0;
  let trainedExamples = 0;
  onEvent({
    type: "run-start",
    epochs,
    startEpoch,
    trainExamples: options.trainExamples,
    testExamples: options.testExamples,
  });
  for (let epoch = startEpoch; epoch <= epochs; epoch++) {
    const epochStart = now();
    const freeze = recipe?.startEpoch(epoch, startEpoch);
    if (freeze) onEvent(freeze);
    onEvent({ type: "epoch-start", epoch, epochs, batches: options.batchesPerEpoch });
    let lossSum = 0, correct = 0, examples = 0, epochTrainMs = 0, batchIndex = 0;
    const lrs: number[] = [];
    for await (const host of options.trainBatches(epoch)) {
      const t0 = now();
      const lr = recipe?.beforeBatch(epoch, batchIndex) ?? optimizer.groups[0].lr;
      lrs.push(lr);
      const step = await trainOnHostBatch(model, host, optimizer, stepOptions);
      host.release?.();
      // A WebGPU validation error drops its work without throwing (see device_errors.ts).
      throwIfBackendDeviceError();
      if (!Number.isFinite(step.lossSum)) {
        throw new DivergedError(epoch, batchIndex + 1, lr);
      }
      epochTrainMs += now() - t0;
      lossSum += step.lossSum;
      correct += step.correct;
      examples += step.examples;
      batchIndex++;
      onEvent({
        type: "batch-end",
        epoch,
        batch: batchIndex,
        batches: options.batchesPerEpoch,
        loss: step.lossSum / step.examples,
        acc: step.correct / step.examples,
        examples: step.examples,
        lr,
      });
      // `--kernels auto`: the first step met every shape; time their kernel variants now (a
      // small budget, outside the timed step), so the following steps run the winners.
      if (epoch === startEpoch && batchIndex === 1) await tunePendingKernels();
      if (signal?.aborted) {
        onEvent({ type: "stopped", epoch, batch: batchIndex });
        return { epochs: history, stopped: true, examplesPerSec: rate(trainedExamples, trainMs) };
      }
    }
    if (examples === 0) throw new Error("an epoch produced no training batches");
    const { accuracy } = await evaluate(model, options.testBatches(), {
      microBatch: options.microBatch,
    });
    throwIfBackendDeviceError();
    trainMs += epochTrainMs;
    trainedExamples += examples;
    const metrics: EpochMetrics = {
      epoch,
      loss: lossSum / examples,
      train_acc: correct / examples,
      test_acc: accuracy,
      examples_per_sec: rate(examples, epochTrainMs),
      seconds: (now() - epochStart) / 1000,
      ...(recipe ? { lrs } : {}),
    };
    history.push(metrics);
    onEvent({ type: "epoch-end", metrics });
    await options.afterEpoch?.(metrics, history);
    if (signal?.aborted && epoch < epochs) {
      onEvent({ type: "stopped", epoch, batch: batchIndex });
      return { epochs: history, stopped: true, examplesPerSec: rate(trainedExamples, trainMs) };
    }
  }
  const examplesPerSec = rate(trainedExamples, trainMs);
  onEvent({ type: "run-end", epochs: history, examplesPerSec });
  return { epochs: history, stopped: false, examplesPerSec };
}

function rate(examples: number, ms: number): number {
  return ms > 0 ? examples / (ms / 1000) : 0;
}
