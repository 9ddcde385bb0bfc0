/**
 * `deno task finetune` and `deno task scratch`: the chapter's two runs, with checkpoints,
 * resume, Ctrl-C handling, and the files a run leaves in `--out`.
 *
 * @module
 */
import {
  type AdapterReport,
  type BackendName,
  defaultRunConfig,
  describeAdapter,
  type EpochMetrics,
  modelConfig,
  type PreparedRun,
  prepareRun,
  type RunConfig,
  runTraining,
  setupBackend,
  trainingCurvesSvg,
} from "@webtune/core";
import { describeSkipped } from "@webtune/data";
import {
  describeClassifier,
  loadStateDict,
  readSafetensors,
  stateDictOf,
  writeSafetensors,
} from "@webtune/models";
import { type FlagSpec, numberFlag, type Parsed, parseFlags, usage, UsageError } from "./args.ts";
import { atomicWrite } from "./atomic_write.ts";
import { EXIT_INTERRUPTED, ExitCode } from "./main.ts";
import { jsonRenderer, textRenderer } from "./progress.ts";
import { openData, openWeights } from "./sources.ts";
import { RESNET18_IMAGENET } from "@webtune/models";

type Task = "finetune" | "scratch";

/** The flags of `finetune` and `scratch` (scratch has no `--weights`/`--head-init`). */
export function trainFlags(task: Task): Record<string, FlagSpec> {
  const d = defaultRunConfig(task);
  const flags: Record<string, FlagSpec> = {
    data: {
      type: "string",
      default: "hotdog",
      help: "DIR | ZIP | URL | synthetic | hotdog (d2l's hotdog.zip, downloaded and cached)",
    },
    weights: {
      type: "string",
      default: RESNET18_IMAGENET.url,
      help: "source model: .pth or .safetensors file, or URL (downloaded into the cache)",
    },
    "image-size": {
      type: "string",
      default: String(d.imageSize),
      help: "train crop size (test: resize ×256/224, crop)",
    },
    "batch-size": { type: "string", default: String(d.batchSize), help: "images per batch" },
    epochs: { type: "string", default: String(d.epochs), help: "epochs" },
    lr: {
      type: "string",
      default: String(d.lr),
      help: "learning rate η (loss is summed over the batch, as in d2l)",
    },
    "head-lr-mult": {
      type: "string",
      default: String(d.headLrMult),
      help: "the new fc trains at η × this",
    },
    "param-group": {
      type: "string",
      default: String(d.paramGroup),
      help: "true: backbone η, head η×mult; false: all η",
    },
    "weight-decay": {
      type: "string",
      default: String(d.weightDecay),
      help: "L2 weight decay (torch SGD's)",
    },
    momentum: { type: "string", default: "0", help: "SGD momentum (off in the chapter)" },
    nesterov: { type: "boolean", default: false, help: "Nesterov momentum" },
    "freeze-backbone": {
      type: "boolean",
      default: false,
      help: "train the output layer only (exercise 3)",
    },
    "head-init": {
      type: "string",
      default: "xavier",
      help: "xavier | imagenet-hotdog (exercise 4)",
    },
    seed: { type: "string", default: "0", help: "seed for init, shuffling and augmentation" },
    "limit-train": { type: "string", help: "use a random subset of N training images" },
    "limit-test": { type: "string", help: "use a random subset of N test images" },
    out: { type: "string", help: "run directory (default runs/<timestamp>-<task>)" },
    resume: {
      type: "string",
      help: "continue the interrupted run in DIR from its last complete epoch",
    },
    backend: {
      type: "string",
      default: "webgpu",
      help: "webgpu | cpu (slow; never chosen silently)",
    },
    json: {
      type: "boolean",
      default: false,
      help: "print one JSON object per event instead of a progress bar",
    },
  };
  if (task === "scratch") {
    delete flags.weights;
    delete flags["head-init"];
  }
  return flags;
}

function parseBool(command: string, values: Parsed["values"], name: string): boolean {
  const raw = String(values[name]);
  if (raw === "true") return true;
  if (raw === "false") return false;
  throw new UsageError(`webtune ${command}: --${name} expects true or false, got ${raw}`);
}

/** Turns parsed flags into a {@linkcode RunConfig}. */
export function configFromFlags(task: Task, values: Parsed["values"], lr?: number): RunConfig {
  const n = (name: string, integer = false, min = -Infinity) =>
    numberFlag(task, values, name, { integer, min });
  const headInit = String(values["head-init"] ?? "xavier");
  if (headInit !== "xavier" && headInit !== "imagenet-hotdog") {
    throw new UsageError(
      `webtune ${task}: --head-init expects xavier or imagenet-hotdog, got ${headInit}`,
    );
  }
  const config: RunConfig = {
    ...defaultRunConfig(task),
    imageSize: n("image-size", true, 32),
    batchSize: n("batch-size", true, 1),
    epochs: n("epochs", true, 1),
    lr: lr ?? n("lr", false, 0),
    headLrMult: n("head-lr-mult", false, 0),
    paramGroup: parseBool(task, values, "param-group"),
    weightDecay: n("weight-decay", false, 0),
    momentum: n("momentum", false, 0),
    nesterov: Boolean(values.nesterov),
    freezeBackbone: Boolean(values["freeze-backbone"]),
    headInit,
    seed: n("seed", true),
  };
  if (values["limit-train"] !== undefined) config.limitTrain = n("limit-train", true, 1);
  if (values["limit-test"] !== undefined) config.limitTest = n("limit-test", true, 1);
  return config;
}

/** What `state.json` in a run directory records after each epoch. */
interface RunState {
  task: Task;
  config: RunConfig;
  data: string;
  weights?: string;
  completed_epochs: number;
  history: EpochMetrics[];
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

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
}

/** Parses argv for `finetune`/`scratch` and runs it. */
export async function trainCommand(task: Task, args: string[]): Promise<void> {
  const spec = trainFlags(task);
  const { values } = parseFlags(task, args, spec);
  if (values.help) {
    console.log(usage(
      task,
      "[options]",
      task === "finetune"
        ? "Fine-tune a pretrained ResNet-18 (d2l §14.2): copy every layer but fc, new fc (Xavier), head at 10× lr."
        : "Train the same ResNet-18 from random initialisation (the chapter's scratch_net).",
      spec,
    ));
    return;
  }
  const backend = String(values.backend);
  if (!["webgpu", "cpu"].includes(backend)) {
    throw new UsageError(`webtune ${task}: --backend expects webgpu or cpu, got ${backend}`);
  }
  let io: TrainIo;
  if (values.resume !== undefined) {
    const dir = String(values.resume);
    const state = await readState(dir);
    if (state.task !== task) {
      throw new Error(
        `${dir}/state.json: this is a ${state.task} run; resume it with deno task ${state.task}`,
      );
    }
    io = {
      task,
      config: state.config,
      data: state.data,
      weights: state.weights,
      out: dir,
      backend: backend as BackendName,
      json: Boolean(values.json),
      resume: state,
    };
  } else {
    io = {
      task,
      config: configFromFlags(task, values),
      data: String(values.data),
      weights: task === "finetune" ? String(values.weights) : undefined,
      out: String(values.out ?? `runs/${timestamp()}-${task}`),
      backend: backend as BackendName,
      json: Boolean(values.json),
    };
  }
  const result = await runTrain(io);
  if (result.stopped) throw new ExitCode(EXIT_INTERRUPTED);
}

async function readState(dir: string): Promise<RunState> {
  const path = `${dir}/state.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw new Error(`${path}: no checkpoint to resume from (is ${dir} a webtune run directory?)`);
  }
  try {
    return JSON.parse(text) as RunState;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** The result of {@linkcode runTrain}. */
export interface TrainOutcome {
  stopped: boolean;
  epochs: EpochMetrics[];
  adapter: AdapterReport;
  out: string;
}

/**
 * Runs one training task end to end and writes its run directory: `metrics.json`, `curves.svg`,
 * `model.safetensors`, `config.json`, and after each epoch `checkpoint.safetensors` +
 * `state.json` (each written atomically, the state last, so a crash never leaves a state that
 * points at a missing checkpoint).
 */
export async function runTrain(io: TrainIo): Promise<TrainOutcome> {
  const { task, config, out } = io;
  // Human-readable lines go to stderr under --json so stdout stays machine-readable.
  const log = io.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
  const adapter = await setupBackend({ backend: io.backend });
  log(`device: ${describeAdapter(adapter)}`);

  const data = await openData(io.data, config.seed, log);
  log(`data: ${data.description}; classes: ${data.classes.join(", ")}`);
  const resumeState = io.resume;
  let source = undefined;
  if (resumeState) {
    const path = `${out}/checkpoint.safetensors`;
    source = readSafetensors(await Deno.readFile(path), path).tensors;
    log(`resuming ${out} after epoch ${resumeState.completed_epochs}`);
  } else if (task === "finetune") {
    source = await openWeights(io.weights!, log);
    // The chapter prints the source model's output layer before replacing it.
    log(`source model ${describeClassifier(source)}`);
  }

  const run = await prepareRun(config, data, { source, adapter });
  try {
    if (resumeState && source) {
      loadStateDict(run.model, source);
      const optimizerPath = `${out}/optimizer.safetensors`;
      const optimizer = await Deno.readFile(optimizerPath).catch(() => undefined);
      if (optimizer) run.sgd.loadMomentumState(readSafetensors(optimizer, optimizerPath).tensors);
    }
    for (
      const [split, report] of [["train", run.train.report], ["test", run.test.report]] as const
    ) {
      const skipped = describeSkipped(report.skipped);
      if (skipped) log(`${split}: ${skipped}`);
    }
    await Deno.mkdir(out, { recursive: true });
    const files = runFiles(io, run, adapter);
    await atomicWrite(
      `${out}/config.json`,
      JSON.stringify(modelConfig(config, run.classes), null, 2),
    );

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
          await files.checkpoint(history);
          renderer.onEvent({ type: "checkpoint", epoch: history.length, where: out });
        },
      });
    } finally {
      Deno.removeSignalListener("SIGINT", onSigint);
    }
    await files.final(result.epochs);
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

function runFiles(io: TrainIo, run: PreparedRun, adapter: AdapterReport) {
  const { out, task, config } = io;
  const metrics = (epochs: EpochMetrics[]) =>
    JSON.stringify({ task, config, data: io.data, weights: io.weights, adapter, epochs }, null, 2);
  const weights = async (epoch: number) =>
    writeSafetensors(await stateDictOf(run.model), {
      format: "pt",
      task,
      epoch: String(epoch),
      classes: JSON.stringify(run.classes),
    });
  return {
    async checkpoint(history: EpochMetrics[]) {
      await atomicWrite(`${out}/checkpoint.safetensors`, await weights(history.length));
      const momentum = await run.sgd.momentumState();
      if (momentum.size > 0) {
        await atomicWrite(`${out}/optimizer.safetensors`, writeSafetensors(momentum));
      }
      const state: RunState = {
        task,
        config,
        data: io.data,
        weights: io.weights,
        completed_epochs: history.length,
        history,
      };
      await atomicWrite(`${out}/metrics.json`, metrics(history));
      await atomicWrite(`${out}/state.json`, JSON.stringify(state, null, 2));
    },
    async final(history: EpochMetrics[]) {
      await atomicWrite(`${out}/model.safetensors`, await weights(history.length));
      await atomicWrite(`${out}/metrics.json`, metrics(history));
      await atomicWrite(
        `${out}/curves.svg`,
        trainingCurvesSvg(history, `${task} (${describeAdapter(adapter)})`),
      );
    },
  };
}
