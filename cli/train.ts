/**
 * `deno task finetune` and `deno task scratch`: the chapter's two runs, with checkpoints,
 * resume, Ctrl-C handling, and the files a run leaves in `--out` (written by core's `RunDir`).
 *
 * @module
 */
import {
  type AdapterReport,
  type BackendName,
  type Checkpoint,
  defaultRunConfig,
  describeAdapter,
  encodeModelFiles,
  encodeWeights,
  type EpochMetrics,
  type KernelChoice,
  paramEntries,
  pinRunKernels,
  type PreparedRun,
  prepareRun,
  readRunKernels,
  type RunConfig,
  RunDir,
  type RunKernels,
  type RunState,
  type RunTakeover,
  runTraining,
  savedEpoch,
  type Task,
  trainingCurvesSvg,
} from "@webtune/core";
import { describeSkipped } from "@webtune/data";
import { denoFs } from "@webtune/data/deno_fs";
import { describeClassifier } from "@webtune/models";
import {
  BACKEND_FLAG,
  DATA_FLAG,
  KERNELS_FLAG,
  setupCommandBackend,
  sourceWeights,
  WEIGHTS_FLAG,
} from "./flags.ts";
import { jsonRenderer, textRenderer } from "./progress.ts";
import {
  type Command,
  defineCommand,
  EXIT_INTERRUPTED,
  type Flags,
  runConfigFromFlags,
  runParamFlags,
  UsageError,
} from "./shell.ts";
import { openData, openWeights } from "./sources.ts";

/** The flags of `finetune` and `scratch`: the run-config table's, then where things are. */
export function trainFlags(task: Task): Flags {
  return {
    data: DATA_FLAG,
    ...(task === "finetune" ? { weights: WEIGHTS_FLAG } : {}),
    ...runParamFlags(task),
    out: {
      kind: "string",
      placeholder: "DIR",
      help: "run directory (default runs/<timestamp>-<task>)",
    },
    resume: {
      kind: "path",
      what: "directory",
      help: "continue the interrupted run in DIR from its last complete epoch",
    },
    backend: BACKEND_FLAG,
    kernels: KERNELS_FLAG,
    json: {
      kind: "boolean",
      help: "print one JSON object per event instead of a progress bar",
    },
  };
}

/** Everything a training command needs besides the config. */
export interface TrainIo {
  task: Task;
  config: RunConfig;
  data: string;
  weights?: string;
  out: string;
  backend: BackendName;
  kernels?: KernelChoice;
  json: boolean;
  resume?: RunState;
  /** The resumed run's `kernels.json`, if it has one. */
  resumeKernels?: RunKernels;
  /** Let a new run replace the run files of a directory that holds something else. */
  overwrite?: boolean;
}

/** A run directory name from the clock: `20261129-105000`. */
export function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
}

/** Flags `--resume` honours besides itself: the run's record decides everything else. */
const RESUME_FLAGS = new Set(["resume", "epochs", "backend", "kernels", "json"]);

/**
 * The run config a `--resume` continues with: the recorded one, with `--epochs N` extending (or
 * shortening) the run. Any other flag whose value differs from the record is refused, naming
 * each, rather than silently ignored: a resumed run is the run it continues.
 */
export function resumeConfig(
  state: RunState,
  dir: string,
  values: Record<string, unknown>,
  given: ReadonlySet<string>,
): RunConfig {
  const recorded: Record<string, unknown> = {
    data: state.data,
    weights: state.weights,
    out: dir,
    overwrite: false,
  };
  for (const p of paramEntries(state.task)) if (p.used) recorded[p.flag] = state.config[p.name];
  const changed = [...given].filter((flag) =>
    !RESUME_FLAGS.has(flag) && JSON.stringify(values[flag]) !== JSON.stringify(recorded[flag])
  ).map((flag) => `--${flag} (recorded: ${JSON.stringify(recorded[flag]) ?? "none"})`);
  if (changed.length > 0) {
    throw new UsageError(
      `--resume ${dir} continues the run as recorded in its state.json and cannot change ` +
        `${
          changed.join(", ")
        }; only --epochs (to extend it), --backend, --kernels and --json may be given`,
    );
  }
  if (!given.has("epochs")) return state.config;
  const epochs = values.epochs as number;
  if (epochs < state.completed_epochs) {
    throw new UsageError(
      `--epochs ${epochs} is fewer than the ${state.completed_epochs} epochs ${dir} has completed`,
    );
  }
  return { ...state.config, epochs };
}

/** The `finetune` or `scratch` command. */
export function trainCommand(task: Task): Command<Flags> {
  return defineCommand({
    name: task,
    synopsis: "[options]",
    description: task === "finetune"
      ? "Fine-tune a pretrained ResNet-18 (d2l §14.2): copy every layer but fc, new fc (Xavier), head at 10× lr."
      : "Train the same ResNet-18 from random initialisation (the chapter's scratch_net).",
    flags: <Flags> {
      ...trainFlags(task),
      overwrite: {
        kind: "boolean",
        help:
          "let --out name a non-empty directory that is not a run of this task (its run files are replaced)",
      },
    },
    async run({ values, given, out: print }) {
      const backend = values.backend as BackendName;
      let kernels = values.kernels as KernelChoice;
      const json = Boolean(values.json);
      let io: TrainIo;
      if (values.resume !== undefined) {
        const dir = String(values.resume);
        const runDir = new RunDir(denoFs, dir);
        const state = await runDir.readState();
        if (state.task !== task) {
          throw new Error(
            `${dir}/state.json: this is a ${state.task} run; resume it with deno task ${state.task}`,
          );
        }
        const config = resumeConfig(state, dir, values, given);
        const done = state.completed_epochs;
        if (done >= config.epochs && await runDir.fs.stat(runDir.path("model"))) {
          print(
            `${dir}: the run is finished (${done} of ${config.epochs} epochs); nothing changed ` +
              `(extend it with --resume ${dir} --epochs N)`,
          );
          return 0;
        }
        // Without --kernels a resumed run computes with the kernels it recorded.
        const resumeKernels = await readRunKernels(runDir);
        if (!given.has("kernels") && resumeKernels) kernels = resumeKernels.kernels;
        io = { ...state, config, out: dir, backend, kernels, json, resume: state, resumeKernels };
      } else {
        const config = runConfigFromFlags(task, defaultRunConfig(task), values);
        io = {
          task,
          config,
          data: String(values.data),
          weights: task === "finetune" ? sourceWeights(values.weights, config.arch) : undefined,
          out: String(values.out ?? `runs/${timestamp()}-${task}`),
          backend,
          kernels,
          json,
          overwrite: Boolean(values.overwrite),
        };
      }
      const result = await runTrain(io);
      return result.stopped ? EXIT_INTERRUPTED : 0;
    },
  });
}

/** The result of {@linkcode runTrain}. */
export interface TrainOutcome {
  stopped: boolean;
  epochs: EpochMetrics[];
  adapter: AdapterReport;
  out: string;
}

/**
 * Runs one training task end to end and writes its run directory (see core's `RunDir`) as a
 * transaction:
 *
 * - a new run starts only in a missing or empty directory, one holding a run of the same task,
 *   or with `overwrite`; nothing is written until the data, weights and model are ready;
 * - before the first step the epoch-0 checkpoint and `state.json` are written, and after each
 *   epoch the next ones, all or nothing (a full disk keeps the previous checkpoint);
 * - `model.safetensors`, `config.json`, `metrics.json` and `curves.svg` are written only when
 *   the run finishes; Ctrl-C leaves the last complete epoch's checkpoint to resume, no model;
 * - a failure (divergence, a full disk) keeps the new run's last good checkpoint in a directory
 *   that held no run before, and otherwise puts the previous run's files back as they were.
 */
export async function runTrain(io: TrainIo): Promise<TrainOutcome> {
  const { task, config, out } = io;
  const dir = new RunDir(denoFs, out);
  if (!io.resume && !io.overwrite) {
    const refusal = await dir.refuseNewRun(task);
    if (refusal) throw new Error(refusal);
  }
  // Human-readable lines go to stderr under --json so stdout stays machine-readable.
  const log = io.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
  const adapter = await setupCommandBackend(io.backend, io.kernels);
  log(`device: ${describeAdapter(adapter)}`);

  const data = await openData(io.data, config.seed, log);
  log(`data: ${data.description}; classes: ${data.classes.join(", ")}`);
  const resumeState = io.resume;
  // Before prepareRun: its precompile pass meets the run's shapes, which must run as recorded.
  const kernelRecord = adapter.backend === "webgpu"
    ? pinRunKernels(dir, {
      kernels: adapter.kernels ?? "auto",
      adapter,
      epoch: (resumeState?.completed_epochs ?? 0) + 1,
      recorded: io.resumeKernels,
      warn: log,
    })
    : undefined;
  let source = undefined, checkpoint: Checkpoint | undefined;
  if (resumeState) {
    checkpoint = await dir.readCheckpoint(resumeState);
    log(`resuming ${out} after epoch ${resumeState.completed_epochs}`);
  } else if (task === "finetune") {
    source = await openWeights(io.weights!, log);
    // The chapter prints the source model's output layer before replacing it.
    log(`source model ${describeClassifier(source)}`);
  }

  const run = await prepareRun(config, data, {
    source,
    sourceName: io.weights,
    checkpoint,
    adapter,
  });
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    if (++interrupts > 1) Deno.exit(EXIT_INTERRUPTED);
    log("\ninterrupt: finishing the current batch (Ctrl-C again to quit at once)");
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSigint);
  let takeover: RunTakeover | undefined;
  let checkpointed = resumeState?.completed_epochs ?? 0;
  try {
    if (!config.arch) log(`architecture: ${run.config.arch} (from the weights)`);
    if (run.microBatch < config.batchSize) {
      const slices = Math.ceil(config.batchSize / run.microBatch);
      log(`batch ${config.batchSize} as ${slices} × ${run.microBatch} (micro-batches, summed)`);
    }
    for (
      const [split, report] of [["train", run.train.report], ["test", run.test.report]] as const
    ) {
      const skipped = describeSkipped(report.skipped);
      if (skipped) log(`${split}: ${skipped}`);
    }
    const record = runRecorder({ ...io, config: run.config }, run, adapter, dir);
    if (!resumeState) {
      takeover = await dir.takeOver();
      // Epoch 0: an interrupt at any later moment has a true checkpoint to resume from.
      await record.checkpoint([]);
    }
    await kernelRecord?.save();
    const renderer = io.json ? jsonRenderer() : textRenderer(describeAdapter(adapter));
    const result = await runTraining(run, {
      onEvent: renderer.onEvent,
      signal: controller.signal,
      completedEpochs: resumeState?.completed_epochs,
      history: resumeState?.history,
      epochs: run.config.epochs,
      afterEpoch: async (metrics, history) => {
        await kernelRecord?.saveChanges();
        await record.checkpoint(history);
        checkpointed = history.length;
        if (config.save === "best" && savedEpoch(history, "best") === metrics) {
          await record.best(history.length);
        }
        renderer.onEvent({ type: "checkpoint", epoch: history.length, where: out });
      },
    });
    if (result.stopped) {
      await takeover?.commit();
      log(
        `interrupted: epoch ${checkpointed} is checkpointed in ${out} (no model.safetensors until ` +
          `the run finishes); continue with: deno task ${task} --resume ${out}`,
      );
    } else {
      await record.final(result.epochs);
      await takeover?.commit();
      log(`wrote ${out}/model.safetensors, config.json, metrics.json, curves.svg`);
    }
    return { stopped: result.stopped, epochs: result.epochs, adapter, out };
  } catch (e) {
    throw new Error(`${oneLine(e)}; ${await afterFailure(dir, takeover, checkpointed)}`);
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    run.dispose();
  }
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/**
 * What a failed run leaves: a directory that held another run gets that run's files back; else
 * the last good checkpoint stays (and no model is written: its weights are not trustworthy).
 */
async function afterFailure(
  dir: RunDir,
  takeover: RunTakeover | undefined,
  checkpointed: number,
): Promise<string> {
  if (takeover && takeover.moved.length > 0) {
    await takeover.restore();
    return `${dir.dir} is as it was before this run`;
  }
  await takeover?.commit();
  if (!(await dir.fs.stat(dir.path("state")))) return `nothing written to ${dir.dir}`;
  return `no model written; the checkpoint of epoch ${checkpointed} is kept in ${dir.dir}`;
}

/** What a training command writes into its run directory, and when. */
function runRecorder(io: TrainIo, run: PreparedRun, adapter: AdapterReport, dir: RunDir) {
  const { task, config } = io;
  const metrics = (epochs: EpochMetrics[]) => ({
    task,
    config,
    data: io.data,
    weights: io.weights,
    adapter,
    epochs,
  });
  return {
    async checkpoint(history: EpochMetrics[]) {
      await dir.writeCheckpoint(
        await encodeWeights(run.model, { task, epoch: history.length, classes: run.classes }),
        await run.optimizer.exportState(),
        {
          task,
          config,
          data: io.data,
          weights: io.weights,
          completed_epochs: history.length,
          history,
        },
        metrics(history),
      );
    },
    async best(epoch: number) {
      await dir.write(
        "best",
        await encodeWeights(run.model, { task, epoch, classes: run.classes }),
      );
    },
    async final(history: EpochMetrics[]) {
      const files = await encodeModelFiles(run.model, config, run.classes, history.length);
      const saved = savedEpoch(history, config.save);
      if (saved && saved.epoch !== history.length) {
        files.weights = await dir.fs.readFile(dir.path("best"));
      }
      await dir.writeFinal(
        files,
        metrics(history),
        trainingCurvesSvg(history, `${task} (${describeAdapter(adapter)})`),
      );
    },
  };
}
