/**
 * `@webtune/core`: the WebGPU backend, the optimizer, and the d2l train/eval loop, shared by the
 * CLI and the web page. It prints nothing; progress comes out as typed events.
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
export * from "./adamw.ts";
export * from "./backend.ts";
export * from "./batches.ts";
export * from "./best_epoch.ts";
export * from "./confusion.ts";
export * from "./create_optimizer.ts";
export * from "./curves_svg.ts";
export * from "./evaluate.ts";
export * from "./events.ts";
export * from "./head_init.ts";
export * from "./loss.ts";
export * from "./lr_find.ts";
export * from "./lr_find_run.ts";
export * from "./lr_find_svg.ts";
export * from "./model.ts";
export * from "./optimizer.ts";
export * from "./param_groups.ts";
export * from "./recipe.ts";
export * from "./run.ts";
export * from "./schedule.ts";
export * from "./sgd.ts";
export * from "./subset.ts";
export * from "./train.ts";
export * from "./train_step.ts";
export * from "./predict.ts";
export * from "./memory_check.ts";
