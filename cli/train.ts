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
  encodeModelConfig,
  encodeModelFiles,
  encodeWeights,
  type EpochMetrics,
  type PreparedRun,
  prepareRun,
  type RunConfig,
  RunDir,
  type RunState,
  runTraining,
  setupBackend,
  type Task,
  trainingCurvesSvg,
} from "@webtune/core";
import { describeSkipped } from "@webtune/data";
import { denoFs } from "@webtune/data/deno_fs";
import { describeClassifier } from "@webtune/models";
import { BACKEND_FLAG, DATA_FLAG, WEIGHTS_FLAG } from "./flags.ts";
import { jsonRenderer, textRenderer } from "./progress.ts";
import {
  type Command,
  defineCommand,
  EXIT_INTERRUPTED,
  type Flags,
  runConfigFromFlags,
  runParamFlags,
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
  json: boolean;
  resume?: RunState;
}

/** A run directory name from the clock: `20261129-105000`. */
export function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
}

/** The `finetune` or `scratch` command. */
export function trainCommand(task: Task): Command<Flags> {
  return defineCommand({
    name: task,
    synopsis: "[options]",
    description: task === "finetune"
      ? "Fine-tune a pretrained ResNet-18 (d2l §14.2): copy every layer but fc, new fc (Xavier), head at 10× lr."
      : "Train the same ResNet-18 from random initialisation (the chapter's scratch_net).",
    flags: trainFlags(task),
    async run({ values }) {
      const backend = values.backend as BackendName;
      const json = Boolean(values.json);
      let io: TrainIo;
      if (values.resume !== undefined) {
        const dir = String(values.resume);
        const state = await new RunDir(denoFs, dir).readState();
        if (state.task !== task) {
          throw new Error(
            `${dir}/state.json: this is a ${state.task} run; resume it with deno task ${state.task}`,
          );
        }
        io = { ...state, out: dir, backend, json, resume: state };
      } else {
        io = {
          task,
          config: runConfigFromFlags(task, defaultRunConfig(task), values),
          data: String(values.data),
          weights: task === "finetune" ? String(values.weights) : undefined,
          out: String(values.out ?? `runs/${timestamp()}-${task}`),
          backend,
          json,
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
 * Runs one training task end to end and writes its run directory (see core's `RunDir`):
 * `config.json`, after each epoch the checkpoint and `state.json`, at the end
 * `model.safetensors`, `metrics.json` and `curves.svg`.
 */
export async function runTrain(io: TrainIo): Promise<TrainOutcome> {
  const { task, config, out } = io;
  // Human-readable lines go to stderr under --json so stdout stays machine-readable.
  const log = io.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
  const adapter = await setupBackend({ backend: io.backend });
  log(`device: ${describeAdapter(adapter)}`);

  const data = await openData(io.data, config.seed, log);
  log(`data: ${data.description}; classes: ${data.classes.join(", ")}`);
  const dir = new RunDir(denoFs, out);
  const resumeState = io.resume;
  let source = undefined, checkpoint: Checkpoint | undefined;
  if (resumeState) {
    checkpoint = await dir.readCheckpoint();
    log(`resuming ${out} after epoch ${resumeState.completed_epochs}`);
  } else if (task === "finetune") {
    source = await openWeights(io.weights!, log);
    // The chapter prints the source model's output layer before replacing it.
    log(`source model ${describeClassifier(source)}`);
  }

  const run = await prepareRun(config, data, { source, checkpoint, adapter });
  try {
    for (
      const [split, report] of [["train", run.train.report], ["test", run.test.report]] as const
    ) {
      const skipped = describeSkipped(report.skipped);
      if (skipped) log(`${split}: ${skipped}`);
    }
    const record = runRecorder(io, run, adapter, dir);
    // config.json first: it says what the run is even before its first epoch ends.
    await dir.write("config", encodeModelConfig(config, run.classes));
    const controller = new AbortController();
    let interrupts = 0;
    const onSigint = () => {
      if (++interrupts > 1) Deno.exit(EXIT_INTERRUPTED);
      log("\ninterrupt: finishing the current batch (Ctrl-C again to quit at once)");
      controller.abort();
    };
    Deno.addSignalListener("SIGINT", onSigint);
    const renderer = io.json ? jsonRenderer() : textRenderer(describeAdapter(adapter));
    let result;
    try {
      result = await runTraining(run, {
        onEvent: renderer.onEvent,
        signal: controller.signal,
        completedEpochs: resumeState?.completed_epochs,
        history: resumeState?.history,
        afterEpoch: async (_metrics, history) => {
          await record.checkpoint(history);
          renderer.onEvent({ type: "checkpoint", epoch: history.length, where: out });
        },
      });
    } finally {
      Deno.removeSignalListener("SIGINT", onSigint);
    }
    await record.final(result.epochs);
    if (result.stopped) {
      const rerun = `deno task ${task} --resume ${out}`;
      log(
        `interrupted: the last complete epoch is checkpointed in ${out}; continue with: ${rerun}`,
      );
    } else {
      log(`wrote ${out}/model.safetensors, config.json, metrics.json, curves.svg`);
    }
    return { stopped: result.stopped, epochs: result.epochs, adapter, out };
  } finally {
    run.dispose();
  }
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
        await run.sgd.momentumState(),
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
    async final(history: EpochMetrics[]) {
      await dir.writeModel(await encodeModelFiles(run.model, config, run.classes, history.length));
      await dir.writeMetrics(
        metrics(history),
        trainingCurvesSvg(history, `${task} (${describeAdapter(adapter)})`),
      );
    },
  };
}
