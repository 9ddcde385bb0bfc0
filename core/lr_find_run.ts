import type { HostBatch } from "./batches.ts";
import { lrFind, type LrFindOptions, type LrFindResult } from "./lr_find.ts";
import { trainOnHostBatch } from "./micro_batch.ts";
import { tunePendingKernels } from "./kernels/mod.ts";
import type { TrainableModel } from "./model.ts";
import type { Optimizer } from "./optimizer.ts";

/** What {@linkcode lrFindOnModel} trains. */
export interface LrFindModelOptions extends LrFindOptions {
  /** A throw-away model: the sweep trains it to divergence (fastai reloads its weights after). */
  model: TrainableModel;
  optimizer: Optimizer;
  /**
   * The lr the optimizer's groups were built with (`--lr`): each batch sets
   * `lrFactor = sweep lr / baseLr`, so the sweep's lr is the backbone's and the head keeps its
   * × head-lr-mult, and the suggestion is a `--lr` as it stands.
   */
  baseLr: number;
  /** The run's training batches of a 1-based epoch; the sweep moves to the next epoch as needed. */
  trainBatches: (epoch: number) => AsyncIterable<HostBatch>;
  /** BatchNorm mode, as in training. Default `train`. */
  mode?: "train" | "frozen";
  /** Examples per forward/backward pass, as in training (default: the whole batch). */
  microBatch?: number;
  /** The training loss's label smoothing ε (fastai sweeps with the learner's own loss). */
  labelSmoothing?: number;
}

/**
 * fastai's `learn.lr_find()` on a model: {@linkcode lrFind} with each step one training batch
 * (summed loss, optimizer step at the sweep's lr; micro-batches and label smoothing as in
 * training), reporting the batch's mean per-example loss.
 * Epochs follow one another as in training (fastai fits `num_it // batches + 1` epochs).
 *
 * @example
 * ```ts ignore
 * const run = await prepareRun(config, data, { source });
 * const result = await lrFindOnModel({
 *   model: run.model, optimizer: run.optimizer, baseLr: config.lr,
 *   mode: run.config.bn, microBatch: run.microBatch, labelSmoothing: config.labelSmoothing,
 *   trainBatches: (epoch) => run.trainBatches(epoch),
 * });
 * run.dispose(); // the swept weights are useless now
 * ```
 */
export async function lrFindOnModel(options: LrFindModelOptions): Promise<LrFindResult> {
  const { model, optimizer, baseLr } = options;
  const stepOptions = {
    mode: options.mode ?? "train",
    microBatch: options.microBatch,
    labelSmoothing: options.labelSmoothing ?? 0,
  };
  if (!(baseLr > 0)) throw new Error(`lr-find: the base lr must be > 0, got ${baseLr}`);
  let epoch = 1;
  let batches = options.trainBatches(epoch)[Symbol.asyncIterator]();
  const nextBatch = async (): Promise<HostBatch> => {
    let next = await batches.next();
    if (next.done) {
      batches = options.trainBatches(++epoch)[Symbol.asyncIterator]();
      next = await batches.next();
      if (next.done) throw new Error(`lr-find: epoch ${epoch} has no training batches`);
    }
    return next.value;
  };
  let firstStep = true;
  try {
    return await lrFind(async (lr) => {
      const host = await nextBatch();
      optimizer.lrFactor = lr / baseLr;
      const step = await trainOnHostBatch(model, host, optimizer, stepOptions);
      host.release?.();
      // `--kernels auto`: after the first step, time the kernel variants of the shapes it met.
      if (firstStep) await tunePendingKernels();
      firstStep = false;
      return step.lossSum / step.examples;
    }, options);
  } finally {
    await batches.return?.();
  }
}

/**
 * What {@linkcode lrFindOnModel} takes from a prepared run, so that the sweep trains exactly as
 * the run would (model, optimizer, `--lr`, BatchNorm mode, micro-batches, label smoothing,
 * batches): the CLI's `lr-find` and the page's button both sweep through this.
 *
 * @example
 * ```ts ignore
 * const result = await lrFindOnModel({ ...lrFindInputs(run), startLr: 1e-7, endLr: 10, numIt: 100 });
 * ```
 */
export function lrFindInputs(run: {
  model: TrainableModel;
  optimizer: Optimizer;
  microBatch: number;
  config: { lr: number; bn: "train" | "frozen"; labelSmoothing: number };
  trainBatches(epoch: number): AsyncIterable<HostBatch>;
}): Omit<LrFindModelOptions, keyof LrFindOptions> {
  return {
    model: run.model,
    optimizer: run.optimizer,
    baseLr: run.config.lr,
    mode: run.config.bn,
    microBatch: run.microBatch,
    labelSmoothing: run.config.labelSmoothing,
    trainBatches: (epoch) => run.trainBatches(epoch),
  };
}
