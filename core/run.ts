/**
 * One fine-tuning (or scratch) run, assembled the same way for the CLI and the web page: the
 * chapter's `train_fine_tuning(net, learning_rate, batch_size=128, num_epochs=5, param_group=True)`.
 *
 * @module
 */
import {
  createBatchLoader,
  createRng,
  type DataSource,
  limitImageSet,
  type PrepareReport,
} from "@webtune/data";
import {
  createResNet18,
  fromSourceModel,
  loadStateDict,
  type ResNet18,
  RESNET18_IMAGENET,
  type StateDict,
  testResizeFor,
} from "@webtune/models";
import type { AdapterReport } from "./backend.ts";
import type { HostBatch } from "./batches.ts";
import { assertBatchFits } from "./memory_check.ts";
import type { EpochMetrics, TrainListener } from "./events.ts";
import { initHeadFromSourceClass } from "./head_init.ts";
import { buildParamGroups } from "./param_groups.ts";
import { ParamError, type RunConfig } from "./run_config.ts";
import type { Checkpoint } from "./run_dir.ts";
import { Sgd } from "./sgd.ts";
import { train, type TrainResult } from "./train.ts";

/** A run ready to train. */
export interface PreparedRun {
  config: RunConfig;
  classes: readonly string[];
  model: ResNet18;
  sgd: Sgd;
  train: { size: number; batchesPerEpoch: number; report: PrepareReport };
  test: { size: number; report: PrepareReport };
  trainBatches(epoch: number): AsyncIterable<HostBatch>;
  testBatches(): AsyncIterable<HostBatch>;
  /** Frees the model's and optimizer's tensors. */
  dispose(): void;
}

/** Options for {@linkcode prepareRun}. */
export interface PrepareRunOptions {
  /** The device the run trains on: batches too big for its buffers are refused up front. */
  adapter?: AdapterReport;
  /** Source weights (PyTorch layout); required for a new `finetune` run. */
  source?: StateDict;
  /**
   * Resume: the run's own weights and optimizer buffers after its last complete epoch. The model
   * is rebuilt from them as they are (never treated as a source: no new head, no head init).
   */
  checkpoint?: Checkpoint;
  /** Called while images are decoded. */
  onDecodeProgress?: (split: "train" | "test", done: number, total: number) => void;
}

/**
 * Builds the model (source weights with a new head, or random), the optimizer's param groups and
 * the two batch loaders, and decodes every image once.
 *
 * @example
 * ```ts ignore
 * const run = await prepareRun(defaultRunConfig("finetune"), data, { source });
 * await runTraining(run, { onEvent: console.log });
 * ```
 */
export async function prepareRun(
  config: RunConfig,
  data: DataSource,
  options: PrepareRunOptions = {},
): Promise<PreparedRun> {
  if (options.adapter) assertBatchFits(options.adapter, config.batchSize, config.imageSize);
  const classes = data.classes;
  // Separate streams so that changing e.g. --limit-train leaves the head init unchanged.
  const initRng = createRng(config.seed);
  const subsetRng = createRng(config.seed + 1);
  // Drives shuffling and augmentation; its state is reset from (seed, epoch) at every epoch.
  const rng = createRng(config.seed);
  const trainSet = limitImageSet(data.train, config.limitTrain, () => subsetRng.float());
  const testSet = limitImageSet(data.test, config.limitTest, () => subsetRng.float());

  let model: ResNet18;
  if (options.checkpoint) {
    model = createResNet18({ numClasses: classes.length, random: () => initRng.float() });
    try {
      loadStateDict(model, options.checkpoint.weights);
    } catch (e) {
      model.dispose();
      throw new Error(`checkpoint: ${(e as Error).message}`);
    }
  } else if (config.task === "finetune") {
    if (!options.source) throw new Error("fine-tuning needs source weights");
    model = fromSourceModel(options.source, {
      numClasses: classes.length,
      random: () => initRng.float(),
    });
    if (config.headInit === "imagenet-hotdog") {
      const target = classes.findIndex((c) => /^hot[-_ ]?dogs?$/i.test(c));
      if (target < 0) {
        model.dispose();
        throw new ParamError(
          "headInit",
          `imagenet-hotdog needs a class named "hotdog"; the classes are ${classes.join(", ")}`,
        );
      }
      initHeadFromSourceClass(model, options.source, RESNET18_IMAGENET.hotdogIndex, target);
    }
  } else {
    model = createResNet18({ numClasses: classes.length, random: () => initRng.float() });
  }

  const groups = buildParamGroups(model.parameters(), {
    lr: config.lr,
    headLrMult: config.headLrMult,
    paramGroup: config.paramGroup,
    freezeBackbone: config.freezeBackbone,
    classifier: RESNET18_IMAGENET.classifier,
  });
  const sgd = new Sgd(groups, {
    weightDecay: config.weightDecay,
    momentum: config.momentum,
    nesterov: config.nesterov,
  });
  if (options.checkpoint?.optimizer) sgd.loadMomentumState(options.checkpoint.optimizer);
  const pretrained = RESNET18_IMAGENET;
  const normalize = { mean: pretrained.mean, std: pretrained.std };

  const trainLoader = createBatchLoader(trainSet, {
    transform: { kind: "train", size: config.imageSize },
    normalize,
    batchSize: config.batchSize,
    rng,
    onProgress: (done, total) => options.onDecodeProgress?.("train", done, total),
  });
  const testLoader = createBatchLoader(testSet, {
    transform: {
      kind: "test",
      size: config.imageSize,
      resize: testResizeFor(pretrained, config.imageSize),
    },
    normalize,
    batchSize: config.batchSize,
    onProgress: (done, total) => options.onDecodeProgress?.("test", done, total),
  });
  const trainReport = await trainLoader.prepare();
  const testReport = await testLoader.prepare();

  return {
    config,
    classes,
    model,
    sgd,
    train: {
      size: trainLoader.size,
      batchesPerEpoch: trainLoader.batchesPerEpoch,
      report: trainReport,
    },
    test: { size: testLoader.size, report: testReport },
    trainBatches(epoch) {
      // Each epoch's shuffle and augmentation depend only on (seed, epoch), so a resumed run
      // sees exactly the batches an uninterrupted one would.
      rng.setState(createRng(config.seed * 1_000_003 + epoch).getState());
      return trainLoader.epoch();
    },
    testBatches: () => testLoader.epoch(),
    dispose() {
      sgd.dispose();
      model.dispose();
    },
  };
}

/** Options for {@linkcode runTraining}. */
export interface RunTrainingOptions {
  onEvent?: TrainListener;
  signal?: AbortSignal;
  afterEpoch?: (metrics: EpochMetrics, history: EpochMetrics[]) => Promise<void>;
  /** Resume: epochs already completed and their metrics. */
  completedEpochs?: number;
  history?: EpochMetrics[];
  /** Epochs to reach (default: the config's). The web page raises it to continue training. */
  epochs?: number;
}

/** Trains a prepared run with the d2l loop. */
export function runTraining(
  run: PreparedRun,
  options: RunTrainingOptions = {},
): Promise<TrainResult> {
  return train({
    model: run.model,
    sgd: run.sgd,
    epochs: options.epochs ?? run.config.epochs,
    completedEpochs: options.completedEpochs,
    history: options.history,
    trainBatches: (epoch) => run.trainBatches(epoch),
    testBatches: () => run.testBatches(),
    batchesPerEpoch: run.train.batchesPerEpoch,
    trainExamples: run.train.size,
    testExamples: run.test.size,
    onEvent: options.onEvent,
    afterEpoch: options.afterEpoch,
    signal: options.signal,
  });
}
