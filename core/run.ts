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
  IMAGENET_MEAN,
  IMAGENET_STD,
  type PrepareReport,
  testResizeSize,
} from "@webtune/data";
import {
  createResNet18,
  fromSourceModel,
  type ResNet18,
  RESNET18_IMAGENET,
  type StateDict,
} from "@webtune/models";
import type { AdapterReport } from "./backend.ts";
import type { HostBatch } from "./batches.ts";
import { assertBatchFits } from "./memory_check.ts";
import type { EpochMetrics, TrainListener } from "./events.ts";
import { initHeadFromSourceClass } from "./head_init.ts";
import { buildParamGroups } from "./param_groups.ts";
import { Sgd } from "./sgd.ts";
import { limitImageSet } from "./subset.ts";
import { train, type TrainResult } from "./train.ts";

/** Everything that defines a run; written to `config.json` and `metrics.json`. */
export interface RunConfig {
  task: "finetune" | "scratch";
  /** Train crop size; the test transform resizes to `testResizeSize(imageSize)` then crops. */
  imageSize: number;
  batchSize: number;
  epochs: number;
  lr: number;
  /** The head's lr multiplier when `paramGroup` (the chapter's 10). */
  headLrMult: number;
  weightDecay: number;
  momentum: number;
  nesterov: boolean;
  /** Backbone at lr, head at lr × headLrMult (fine-tuning); false puts all at lr (scratch). */
  paramGroup: boolean;
  /** Exercise 3: only the head learns. */
  freezeBackbone: boolean;
  /** `xavier` (the chapter) or `imagenet-hotdog` (exercise 4). */
  headInit: "xavier" | "imagenet-hotdog";
  seed: number;
  limitTrain?: number;
  limitTest?: number;
}

/** The chapter's settings for each task. */
export function defaultRunConfig(task: "finetune" | "scratch"): RunConfig {
  return {
    task,
    imageSize: 224,
    batchSize: 128,
    epochs: 5,
    lr: task === "finetune" ? 5e-5 : 5e-4,
    headLrMult: 10,
    weightDecay: 0.001,
    momentum: 0,
    nesterov: false,
    paramGroup: task === "finetune",
    freezeBackbone: false,
    headInit: "xavier",
    seed: 0,
  };
}

/** What `predict`, `eval` and the web page need to use a trained model (`config.json`). */
export interface ModelConfig {
  architecture: "resnet18";
  num_classes: number;
  /** Class names in label order. */
  class_names: string[];
  image_size: number;
  test_resize: number;
  mean: number[];
  std: number[];
}

/** The `config.json` of a model trained with `config` on `classes`. */
export function modelConfig(config: RunConfig, classes: readonly string[]): ModelConfig {
  return {
    architecture: "resnet18",
    num_classes: classes.length,
    class_names: [...classes],
    image_size: config.imageSize,
    test_resize: testResizeSize(config.imageSize),
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
  };
}

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
  /** Source weights (PyTorch layout); required for `finetune`. */
  source?: StateDict;
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
  if (config.task === "finetune") {
    if (!options.source) throw new Error("fine-tuning needs source weights");
    model = fromSourceModel(options.source, {
      numClasses: classes.length,
      random: () => initRng.float(),
    });
    if (config.headInit === "imagenet-hotdog") {
      const target = classes.findIndex((c) => /^hot[-_ ]?dogs?$/i.test(c));
      if (target < 0) {
        model.dispose();
        throw new Error(
          `--head-init imagenet-hotdog needs a class named "hotdog"; the classes are ${
            classes.join(", ")
          }`,
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

  const trainLoader = createBatchLoader(trainSet, {
    transform: { kind: "train", size: config.imageSize },
    batchSize: config.batchSize,
    rng,
    onProgress: (done, total) => options.onDecodeProgress?.("train", done, total),
  });
  const testLoader = createBatchLoader(testSet, {
    transform: { kind: "test", size: config.imageSize },
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
