/**
 * `@webtune/core`: what a training run is, shared by the CLI and the web page — the backend
 * setup, the run-config table (every hyper-parameter once), SGD with param groups, the d2l
 * train/eval loop, the run directory's files, and prediction. It prints nothing (progress comes
 * out as typed events) and runs unchanged in Deno and browsers (files go through an adapter).
 *
 * @example
 * ```ts ignore
 * import { defaultRunConfig, prepareRun, runTraining, setupBackend } from "@webtune/core";
 * await setupBackend();
 * const run = await prepareRun(defaultRunConfig("scratch"), data);
 * const { epochs } = await runTraining(run, { onEvent: (e) => console.log(e.type) });
 * ```
 *
 * @module
 */
export {
  type AdapterReport,
  type BackendName,
  describeAdapter,
  KERNEL_CHOICES,
  type KernelChoice,
  NoWebGPUError,
  setupBackend,
} from "./backend.ts";
export {
  kernelChoices,
  type KernelChoiceStore,
  tunePendingKernels,
  type TuneReport,
} from "./kernels/mod.ts";
export { disposeBatch, type HostBatch, toDevice } from "./batches.ts";
export { type ClassReport, classReport } from "./confusion.ts";
export { CHART_COLORS, curvesSvg, type Series, trainingCurvesSvg } from "./curves_svg.ts";
export { formatDuration, RunEta } from "./eta.ts";
export { evaluate } from "./evaluate.ts";
export type { EpochMetrics, TrainEvent, TrainListener } from "./events.ts";
export { crossEntropyPerExample } from "./loss.ts";
export {
  LR_FIND_PARAMS,
  lrFind,
  type LrFindOptions,
  type LrFindResult,
  type LrFindStop,
  type LrSuggestion,
  suggestLrs,
} from "./lr_find.ts";
export { lrFindInputs, type LrFindModelOptions, lrFindOnModel } from "./lr_find_run.ts";
export { lrFindSvg } from "./lr_find_svg.ts";
export { buildParamGroups } from "./param_groups.ts";
export { predictProbabilities } from "./predict.ts";
export {
  type PreparedRun,
  prepareRun,
  type PrepareRunOptions,
  runTraining,
  type RunTrainingOptions,
} from "./run.ts";
export {
  defaultRunConfig,
  flagName,
  paramEntries,
  type ParamEntry,
  ParamError,
  type ParamName,
  paramNames,
  type ParamSpec,
  paramSpec,
  paramUsedBy,
  parseValue,
  RUN_PARAMS,
  type RunConfig,
  type Task,
  TASKS,
  validateRunConfig,
} from "./run_config.ts";
export {
  atomicWrite,
  atomicWriteAll,
  type Checkpoint,
  encodeModelConfig,
  encodeModelFiles,
  encodeWeights,
  loadTrainedModel,
  type ModelConfig,
  modelConfig,
  type ModelFiles,
  parseRunState,
  RUN_FILES,
  RunDir,
  type RunDirFs,
  type RunState,
  type RunTakeover,
  type TrainedModel,
} from "./run_dir.ts";
export {
  parseRunKernels,
  pinRunKernels,
  type PinRunKernelsOptions,
  readRunKernels,
  type RunKernelRecord,
  type RunKernels,
} from "./run_kernels.ts";
export { Sgd } from "./sgd.ts";
export { savedEpoch } from "./best_epoch.ts";
export { type Optimizer } from "./optimizer.ts";
export { DivergedError, type TrainResult } from "./train.ts";
export { DeviceError } from "./device_errors.ts";
export { trainStep } from "./train_step.ts";
