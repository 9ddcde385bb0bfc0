/**
 * The run directory: the one module that knows its files, their formats and versions, and how
 * they are written (atomically: a temporary name, then a rename, through a file-system adapter
 * so that this stays browser-neutral). The CLI writes and reads run directories with it; the page
 * builds the same `model.safetensors` + `config.json` with {@linkcode encodeModelFiles}.
 *
 * | file                     | what                                                          |
 * | ------------------------ | ------------------------------------------------------------- |
 * | `config.json`            | how to feed the model: classes, sizes, mean/std ({@linkcode ModelConfig}) |
 * | `model.safetensors`      | the final weights, PyTorch names and layouts                  |
 * | `metrics.json`           | per-epoch metrics, the run config, the adapter                |
 * | `curves.svg`             | the loss/accuracy chart                                       |
 * | `checkpoint.safetensors` | weights after the last complete epoch                         |
 * | `optimizer.safetensors`  | SGD momentum buffers after that epoch (when momentum > 0)      |
 * | `state.json`             | what `--resume` needs ({@linkcode RunState}); written last    |
 * | `lr_find.json`           | `deno task lr-find`'s sweep and suggestions (`LrFindResult`)  |
 * | `lr_find.svg`            | that sweep's chart                                            |
 *
 * @example
 * ```ts ignore
 * import { denoFs } from "@webtune/data/deno_fs";
 * const dir = new RunDir(denoFs, "runs/x");
 * const { model, config } = await dir.readModel();
 * ```
 *
 * @module
 */
import type { FileSystem } from "@webtune/data";
import {
  type Arch,
  ARCHS,
  createResNet,
  isArch,
  loadStateDict,
  pretrainedConfig,
  readSafetensors,
  type ResNet18,
  type StateDict,
  stateDictOf,
  testResizeFor,
  writeSafetensors,
} from "@webtune/models";
import type { EpochMetrics } from "./events.ts";
import { type RunConfig, validateRunConfig } from "./run_config.ts";

/** The files of a run directory. */
export const RUN_FILES = {
  config: "config.json",
  model: "model.safetensors",
  metrics: "metrics.json",
  curves: "curves.svg",
  checkpoint: "checkpoint.safetensors",
  /** With `--save best`: the weights of the best epoch so far, kept across resumes. */
  best: "best.safetensors",
  optimizer: "optimizer.safetensors",
  state: "state.json",
  /** `deno task lr-find`: the sweep (`LrFindResult`) and its chart. */
  lrFind: "lr_find.json",
  lrFindChart: "lr_find.svg",
} as const;

/** Format version of `state.json` and `metrics.json`; readers refuse newer ones. */
export const RUN_FORMAT_VERSION = 1;

/** The file-system calls a run directory needs (`denoFs` in Deno). */
export type RunDirFs = Pick<
  FileSystem,
  "stat" | "readFile" | "writeFile" | "mkdir" | "rename" | "remove"
>;

/**
 * Writes a file so that it is either the old or the new content, never half of one: the bytes go
 * to a temporary name in the same directory, then a rename replaces the target.
 *
 * @example
 * ```ts ignore
 * await atomicWrite(denoFs, "runs/x/metrics.json", "{}");
 * ```
 */
export async function atomicWrite(
  fs: RunDirFs,
  path: string,
  data: Uint8Array | string,
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const slash = path.lastIndexOf("/");
  if (slash > 0) await fs.mkdir(path.slice(0, slash));
  const temp = `${path}.partial-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await fs.writeFile(temp, bytes);
    await fs.rename(temp, path);
  } catch (e) {
    await fs.remove(temp).catch(() => {});
    throw e;
  }
}

/** What `predict`, `eval` and the web page need to use a trained model (`config.json`). */
export interface ModelConfig {
  architecture: Arch;
  num_classes: number;
  /** Class names in label order. */
  class_names: string[];
  image_size: number;
  /** Side of the test transform's `Resize([r, r])` before the center crop. */
  test_resize: number;
  /** The normalisation the model was trained with (the source model's). */
  mean: number[];
  std: number[];
}

/** The `config.json` of a model trained with `config` on `classes`. */
export function modelConfig(config: RunConfig, classes: readonly string[]): ModelConfig {
  const architecture = config.arch ?? "resnet18";
  const pretrained = pretrainedConfig(architecture);
  return {
    architecture,
    num_classes: classes.length,
    class_names: [...classes],
    image_size: config.imageSize,
    test_resize: testResizeFor(pretrained, config.imageSize),
    mean: [...pretrained.mean],
    std: [...pretrained.std],
  };
}

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${name}: not valid JSON (${(e as Error).message})`);
  }
}

/** Checks a parsed `config.json`; errors name the file and the field. */
export function parseModelConfig(json: string, name: string = RUN_FILES.config): ModelConfig {
  const c = parseJson(json, name) as Partial<ModelConfig> | null;
  const triple = (v: unknown) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number" && isFinite(x));
  const problem = c === null || typeof c !== "object"
    ? "not an object"
    : !isArch(String(c.architecture))
    ? `architecture must be one of ${ARCHS.join(", ")}`
    : !Array.isArray(c.class_names) || c.class_names.some((n) => typeof n !== "string")
    ? "class_names must be a list of names"
    : !Number.isInteger(c.image_size) || c.image_size! < 1
    ? "image_size must be a positive integer"
    : !Number.isInteger(c.test_resize) || c.test_resize! < c.image_size!
    ? "test_resize must be an integer ≥ image_size"
    : !triple(c.mean) || !triple(c.std) || c.std!.some((s) => s <= 0)
    ? "mean and std must be three numbers each (std > 0)"
    : undefined;
  if (problem) throw new Error(`${name}: not a webtune model config (${problem})`);
  return c as ModelConfig;
}

/** A trained model and the `config.json` that says how to feed it. */
export interface TrainedModel {
  model: ResNet18;
  config: ModelConfig;
}

/**
 * Rebuilds a model from a run's `model.safetensors` and `config.json` bytes (the files the CLI
 * writes and the web page downloads).
 *
 * @example
 * ```ts ignore
 * const trained = loadTrainedModel(await Deno.readTextFile("run/config.json"),
 *   await Deno.readFile("run/model.safetensors"), "run/model.safetensors");
 * ```
 */
export function loadTrainedModel(
  configJson: string,
  weights: Uint8Array,
  weightsName: string,
  configName: string = RUN_FILES.config,
): TrainedModel {
  const config = parseModelConfig(configJson, configName);
  const { tensors } = readSafetensors(weights, weightsName);
  // The initial values are overwritten by the checkpoint; the generator only fills the shapes.
  const model = createResNet(config.architecture, {
    numClasses: config.class_names.length,
    random: () => 0.5,
  });
  try {
    loadStateDict(model, tensors);
  } catch (e) {
    model.dispose();
    throw new Error(`${weightsName}: ${(e as Error).message}`);
  }
  return { model, config };
}

/** `model.safetensors` and `config.json` of a model: the same bytes from the CLI and the page. */
export interface ModelFiles {
  weights: Uint8Array;
  configJson: string;
}

/** The weights file of `model` after `epoch` epochs, with webtune's metadata. */
export async function encodeWeights(
  model: ResNet18,
  meta: { task: string; epoch: number; classes: readonly string[] },
): Promise<Uint8Array> {
  return writeSafetensors(await stateDictOf(model), {
    format: "pt",
    task: meta.task,
    epoch: String(meta.epoch),
    classes: JSON.stringify(meta.classes),
  });
}

/** `config.json`'s text for a model trained with `config` on `classes`. */
export function encodeModelConfig(config: RunConfig, classes: readonly string[]): string {
  return JSON.stringify(modelConfig(config, classes), null, 2);
}

/** {@linkcode ModelFiles} of a model trained with `config` for `epoch` epochs on `classes`. */
export async function encodeModelFiles(
  model: ResNet18,
  config: RunConfig,
  classes: readonly string[],
  epoch: number,
): Promise<ModelFiles> {
  return {
    weights: await encodeWeights(model, { task: config.task, epoch, classes }),
    configJson: encodeModelConfig(config, classes),
  };
}

/** What `state.json` records after each epoch: enough to resume. */
export interface RunState {
  version: number;
  task: RunConfig["task"];
  config: RunConfig;
  /** Where the data came from (`--data`). */
  data: string;
  /** Where the source weights came from (finetune). */
  weights?: string;
  completed_epochs: number;
  history: EpochMetrics[];
}

/** What a resumed run loads: weights and optimizer buffers after the last complete epoch. */
export interface Checkpoint {
  weights: StateDict;
  optimizer?: StateDict;
}

/** A run directory on a file system. */
export class RunDir {
  constructor(readonly fs: RunDirFs, readonly dir: string) {}

  /** The path of one of its files. */
  path(file: keyof typeof RUN_FILES): string {
    return `${this.dir}/${RUN_FILES[file]}`;
  }

  /** Writes one file atomically. */
  write(file: keyof typeof RUN_FILES, data: Uint8Array | string): Promise<void> {
    return atomicWrite(this.fs, this.path(file), data);
  }

  async #read(file: keyof typeof RUN_FILES, missing: string): Promise<Uint8Array> {
    const path = this.path(file);
    if (!(await this.fs.stat(path))) throw new Error(`${path}: ${missing}`);
    try {
      return await this.fs.readFile(path);
    } catch (e) {
      throw new Error(`${path}: cannot read (${(e as Error).message})`);
    }
  }

  /** `state.json`, checked: version, task, config, epochs. */
  async readState(): Promise<RunState> {
    const path = this.path("state");
    const bytes = await this.#read("state", "no checkpoint to resume from (not a run directory?)");
    const s = parseJson(new TextDecoder().decode(bytes), path) as Partial<RunState> | null;
    if (s === null || typeof s !== "object") throw new Error(`${path}: not a run state`);
    const version = s.version ?? 1;
    if (version !== RUN_FORMAT_VERSION) {
      throw new Error(`${path}: format version ${version}; this webtune reads version 1`);
    }
    try {
      validateRunConfig(s.config);
    } catch (e) {
      throw new Error(`${path}: config.${(e as Error).message}`);
    }
    if (s.task !== s.config!.task) throw new Error(`${path}: task and config.task differ`);
    const done = s.completed_epochs;
    if (!Number.isInteger(done) || done! < 0 || !Array.isArray(s.history)) {
      throw new Error(`${path}: completed_epochs and history are missing or invalid`);
    }
    if (s.history.length !== done) {
      throw new Error(`${path}: history has ${s.history.length} epochs, completed_epochs ${done}`);
    }
    if (typeof s.data !== "string") throw new Error(`${path}: data must be a string`);
    return { ...s, version } as RunState;
  }

  /** The checkpoint's weights and optimizer buffers (if any). */
  async readCheckpoint(): Promise<Checkpoint> {
    const weightsPath = this.path("checkpoint");
    const weights = readSafetensors(
      await this.#read("checkpoint", "missing (the run has no complete epoch)"),
      weightsPath,
    ).tensors;
    const optimizerPath = this.path("optimizer");
    if (!(await this.fs.stat(optimizerPath))) return { weights };
    return {
      weights,
      optimizer: readSafetensors(await this.fs.readFile(optimizerPath), optimizerPath).tensors,
    };
  }

  /**
   * After an epoch: checkpoint, optimizer buffers, metrics, and `state.json` last, so a crash
   * never leaves a state that points at a missing checkpoint.
   */
  async writeCheckpoint(
    weights: Uint8Array,
    optimizer: StateDict,
    state: Omit<RunState, "version">,
    metrics: object,
  ): Promise<void> {
    await this.write("checkpoint", weights);
    if (optimizer.size > 0) await this.write("optimizer", writeSafetensors(optimizer));
    await this.write("metrics", metricsJson(metrics));
    await this.write("state", JSON.stringify({ version: RUN_FORMAT_VERSION, ...state }, null, 2));
  }

  /** The trained model's two files. */
  async writeModel(files: ModelFiles): Promise<void> {
    await this.write("model", files.weights);
    await this.write("config", files.configJson);
  }

  /** `metrics.json` and `curves.svg`. */
  async writeMetrics(metrics: object, curvesSvg?: string): Promise<void> {
    await this.write("metrics", metricsJson(metrics));
    if (curvesSvg !== undefined) await this.write("curves", curvesSvg);
  }

  /** The trained model (`model.safetensors` + `config.json`); errors name the missing file. */
  async readModel(): Promise<TrainedModel> {
    const missing = "missing (is this a webtune run directory?)";
    const config = new TextDecoder().decode(await this.#read("config", missing));
    const weights = await this.#read("model", missing);
    return loadTrainedModel(config, weights, this.path("model"), this.path("config"));
  }
}

function metricsJson(metrics: object): string {
  return JSON.stringify({ version: RUN_FORMAT_VERSION, ...metrics }, null, 2);
}
