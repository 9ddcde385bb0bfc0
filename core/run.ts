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
  type Arch,
  fromSourceModel,
  loadStateDict,
  pretrainedConfig,
  ResNet,
  type ResNet18,
  resolveArch,
  type StateDict,
  testResizeFor,
} from "@webtune/models";
import { type AdapterReport, placeOnDevice } from "./backend.ts";
import type { HostBatch } from "./batches.ts";
import { createOptimizer } from "./create_optimizer.ts";
import { assertSlicesNormalise, chooseMicroBatch } from "./memory_check.ts";
import type { EpochMetrics, TrainListener } from "./events.ts";
import { initHeadFromSourceClass } from "./head_init.ts";
import { type InitialWeights, initialWeights } from "./initial_weights.ts";
import { firstUseUntilTuned } from "./kernels/mod.ts";
import type { Optimizer } from "./optimizer.ts";
import { buildParamGroups } from "./param_groups.ts";
import { precompile, type PrecompileReport } from "./precompile.ts";
import { TrainingRecipe } from "./recipe.ts";
import { ParamError, type RunConfig } from "./run_config.ts";
import type { Checkpoint } from "./run_dir.ts";
import { train, type TrainResult } from "./train.ts";

/** A run ready to train. */
export interface PreparedRun {
  /** The config as given, with `arch` resolved (from the weights when it was omitted). */
  config: RunConfig & { arch: Arch };
  classes: readonly string[];
  model: ResNet18;
  optimizer: Optimizer;
  /** Which parameters learn each epoch, and each batch's learning rate. */
  recipe: TrainingRecipe;
  /** Examples per forward/backward pass (`batchSize` unless it does not fit the device). */
  microBatch: number;
  train: { size: number; batchesPerEpoch: number; report: PrepareReport };
  test: { size: number; report: PrepareReport };
  /** The pipelines compiled ahead of the first step (see {@linkcode PrepareRunOptions.precompile}). */
  precompiled?: PrecompileReport;
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
  /** The source weights' file name, for messages (e.g. an architecture mismatch). */
  sourceName?: string;
  /**
   * Resume: the run's own weights and optimizer buffers after its last complete epoch. The model
   * is rebuilt from them as they are (never treated as a source: no new head, no head init).
   */
  checkpoint?: Checkpoint;
  /**
   * Compile the run's GPU pipelines (train step and eval pass, the run's shapes) in tfjs-webgpu's
   * compile-only mode before the images decode (see `precompile.ts`). Default true; the training
   * numerics are the same either way.
   */
  precompile?: boolean;
  /** Called while images are decoded. */
  onDecodeProgress?: (split: "train" | "test", done: number, total: number) => void;
  /**
   * A scratch run draws its initial weights on a Worker while this thread decodes (and
   * precompiles); the weights are the same either way. Default: where a Worker can start
   * (`canInitInWorker`: Deno, not the bundled page).
   */
  initInWorker?: boolean;
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
  const microBatch = chooseMicroBatch(options.adapter, config);
  const classes = data.classes;
  // Separate streams so that changing e.g. --limit-train leaves the head init unchanged.
  const initRng = createRng(config.seed);
  const subsetRng = createRng(config.seed + 1);
  // Drives shuffling and augmentation; its state is reset from (seed, epoch) at every epoch.
  const rng = createRng(config.seed);
  const trainSet = limitImageSet(data.train, config.limitTrain, () => subsetRng.float());
  const testSet = limitImageSet(data.test, config.limitTest, () => subsetRng.float());

  const random = () => initRng.float();
  let model: ResNet18;
  /** A scratch model's weights, still being drawn (the model holds zeros until then). */
  let drawing: Promise<InitialWeights> | undefined;
  if (options.checkpoint) {
    const arch = resolveArch(options.checkpoint.weights, config.arch, "checkpoint");
    // Zeros, not a random init: the checkpoint replaces every tensor.
    model = new ResNet(arch, classes.length);
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
      random,
      arch: config.arch,
      sourceName: options.sourceName,
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
      const { hotdogIndex } = pretrainedConfig(model.arch);
      initHeadFromSourceClass(model, options.source, hotdogIndex, target);
    }
  } else {
    // The same weights as createResNet draws; on a Worker, they arrive after the decoding.
    model = new ResNet(config.arch ?? "resnet18", classes.length);
    drawing = initialWeights(model.arch, classes.length, initRng, {
      worker: options.initInWorker,
    });
    drawing.catch(() => {}); // awaited below; a throw before that must not go unhandled
  }
  // On the GPU from the start, whether made from a checkpoint, a source or random values: a
  // resumed run's tiny ops then run where an uninterrupted run's did (see placeOnDevice).
  placeOnDevice(model.variables.values());
  const resolved = { ...config, arch: model.arch };
  const pretrained = pretrainedConfig(model.arch);

  let optimizer: Optimizer | undefined;
  try {
    const groups = buildParamGroups(model.parameters(), {
      lr: config.lr,
      headLrMult: config.headLrMult,
      paramGroup: config.paramGroup,
      freezeBackbone: config.freezeBackbone,
      classifier: pretrained.classifier,
    });
    optimizer = createOptimizer(groups, config);
    if (options.checkpoint?.optimizer) {
      optimizer.importState(options.checkpoint.optimizer, "the checkpoint's optimizer state");
    }
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
    // Awaited before anything else reaches the backend (a Worker's weights are uploaded after
    // it): tfjs-webgpu throws ("Please call checkCompileCompletionAsync") when a dispatch meets
    // a pipeline that is still compiling. Decoding itself is CPU-only (data/ does not use tfjs).
    // A browser still compiles all of the run's pipelines in parallel in its GPU process
    // instead of one by one at their first dispatch.
    // Only the run's shapes: its micro-batch, or the whole set when that is smaller.
    // Under `auto` the first step runs the first-use variants (a few generic pipelines), stored
    // winners from the step after the tuning pass on; the pass compiles what that step runs.
    firstUseUntilTuned();
    const precompiled = options.precompile === false ? undefined : await precompile(model, {
      size: config.imageSize,
      trainBatch: Math.min(microBatch, trainSet.labels.length),
      evalBatch: Math.min(microBatch, config.batchSize, testSet.labels.length),
      mode: config.bn,
      labelSmoothing: config.labelSmoothing,
    });
    const trainReport = await trainLoader.prepare();
    // After decoding: files that failed to decode are not in the count.
    if (config.bn === "train") assertSlicesNormalise(trainLoader.size, config, microBatch);
    const testReport = await testLoader.prepare();
    if (drawing) {
      const { stateDict, layout } = await drawing;
      loadStateDict(model, stateDict, { dataInTfjsLayout: layout === "tfjs" });
      placeOnDevice(model.variables.values());
    }
    const recipe = new TrainingRecipe(optimizer, {
      lr: config.lr,
      epochs: config.epochs,
      batchesPerEpoch: trainLoader.batchesPerEpoch,
      schedule: config.schedule,
      warmupEpochs: config.warmupEpochs,
      freezeEpochs: config.freezeEpochs,
      classifier: pretrained.classifier,
    });

    return {
      config: resolved,
      classes,
      model,
      optimizer,
      recipe,
      microBatch,
      train: {
        size: trainLoader.size,
        batchesPerEpoch: trainLoader.batchesPerEpoch,
        report: trainReport,
      },
      test: { size: testLoader.size, report: testReport },
      precompiled,
      trainBatches(epoch) {
        // Each epoch's shuffle and augmentation depend only on (seed, epoch), so a resumed run
        // sees exactly the batches an uninterrupted one would.
        rng.setState(createRng(config.seed * 1_000_003 + epoch).getState());
        return trainLoader.epoch();
      },
      testBatches: () => testLoader.epoch(),
      dispose() {
        optimizer!.dispose();
        model.dispose();
      },
    };
  } catch (e) {
    optimizer?.dispose();
    model.dispose();
    throw e;
  }
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
    optimizer: run.optimizer,
    recipe: run.recipe,
    mode: run.config.bn,
    microBatch: run.microBatch,
    labelSmoothing: run.config.labelSmoothing,
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
