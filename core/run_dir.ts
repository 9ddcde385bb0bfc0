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
 * | `kernels.json`           | the GPU kernels the run computes with (`run_kernels.ts`)      |
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
import { placeOnDevice } from "./backend.ts";
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
  /** The kernel mode and `auto`'s choice per shape (format: `run_kernels.ts`). */
  kernels: "kernels.json",
  /** `deno task lr-find`: the sweep (`LrFindResult`) and its chart. */
  lrFind: "lr_find.json",
  lrFindChart: "lr_find.svg",
} as const;

/** Format version of `state.json`, `metrics.json` and `kernels.json`; readers refuse others. */
export const RUN_FORMAT_VERSION = 1;

/** The file-system calls a run directory needs (`denoFs` in Deno). */
export type RunDirFs = Pick<
  FileSystem,
  "stat" | "readDir" | "readFile" | "writeFile" | "mkdir" | "rename" | "remove"
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
  await atomicWriteAll(fs, [[path, data]]);
}

/**
 * Writes several files so that a failed write (a full disk) changes none of them: every file is
 * written to a temporary name first, and only when all are written are they renamed over their
 * targets, in order (the last one is the one readers trust: `state.json`). The error names the
 * file that could not be written.
 *
 * @example
 * ```ts ignore
 * await atomicWriteAll(denoFs, [["runs/x/a.bin", bytes], ["runs/x/state.json", "{}"]]);
 * ```
 */
export async function atomicWriteAll(
  fs: RunDirFs,
  files: readonly (readonly [path: string, data: Uint8Array | string])[],
): Promise<void> {
  const temps: string[] = [];
  try {
    for (const [path, data] of files) {
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
      const slash = path.lastIndexOf("/");
      if (slash > 0) await fs.mkdir(path.slice(0, slash));
      const temp = `${path}.partial-${crypto.randomUUID().slice(0, 8)}`;
      temps.push(temp);
      try {
        await fs.writeFile(temp, bytes);
      } catch (e) {
        throw new Error(`${path}: cannot write (${oneLine(e)})`);
      }
    }
    for (const [i, [path]] of files.entries()) {
      await fs.rename(temps[i], path);
      temps[i] = "";
    }
  } catch (e) {
    for (const temp of temps) if (temp) await fs.remove(temp).catch(() => {});
    throw e;
  }
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
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
    // V8's message quotes the text around the fault, line breaks and all: escape control
    // characters so the error stays on one line (the state.json fuzzer found a broken one).
    const why = (e as Error).message.replace(
      // deno-lint-ignore no-control-regex -- matching control characters is the point
      /[\u0000-\u001f]/g,
      (c) => JSON.stringify(c).slice(1, -1),
    );
    throw new Error(`${name}: not valid JSON (${why})`);
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
  // It then predicts exactly as the model it was saved from did (see placeOnDevice).
  placeOnDevice(model.variables.values());
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

/** A new run's hold on a directory that may have held another run ({@linkcode RunDir.takeOver}). */
export interface RunTakeover {
  /** The run files that were moved aside. */
  moved: string[];
  /** Removes the new run's files and puts the previous ones back. */
  restore(): Promise<void>;
  /** Drops the previous files: the directory is the new run's. */
  commit(): Promise<void>;
}

const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** What is wrong with one `history` entry (epoch `epoch`), or undefined. */
function epochProblem(m: unknown, epoch: number): string | undefined {
  if (m === null || typeof m !== "object" || Array.isArray(m)) return "is not an object";
  const e = m as Record<string, unknown>;
  if (e.epoch !== epoch) return `.epoch must be ${epoch}`;
  for (const key of ["loss", "examples_per_sec", "seconds"]) {
    if (!isFiniteNumber(e[key]) || (e[key] as number) < 0) return `.${key} must be a number ≥ 0`;
  }
  for (const key of ["train_acc", "test_acc"]) {
    const v = e[key];
    if (!isFiniteNumber(v) || v < 0 || v > 1) return `.${key} must be a number in [0, 1]`;
  }
  if (e.lrs !== undefined && (!Array.isArray(e.lrs) || !e.lrs.every(isFiniteNumber))) {
    return ".lrs must be a list of numbers";
  }
  return undefined;
}

/**
 * Parses and checks `state.json` against its schema: the format version, the task, the run
 * config (every parameter through `validateRunConfig`), where the data and weights came from,
 * `completed_epochs` within `0..config.epochs`, and one well-formed `history` entry per completed
 * epoch. Errors are one line that names the file and the field.
 *
 * @example
 * ```ts ignore
 * const state = parseRunState(await Deno.readTextFile("runs/x/state.json"), "runs/x/state.json");
 * ```
 */
export function parseRunState(json: string, path: string = RUN_FILES.state): RunState {
  const fail = (problem: string): never => {
    throw new Error(`${path}: ${problem}`);
  };
  const s = parseJson(json, path);
  if (s === null || typeof s !== "object" || Array.isArray(s)) {
    return fail("not a run state (expected a JSON object)");
  }
  const state = s as Record<string, unknown>;
  if (state.version !== RUN_FORMAT_VERSION) {
    fail(
      typeof state.version === "number"
        ? `format version ${state.version}; this webtune reads version ${RUN_FORMAT_VERSION}`
        : `version must be ${RUN_FORMAT_VERSION}, got ${
          JSON.stringify(state.version) ?? "nothing"
        }`,
    );
  }
  if (state.config === null || typeof state.config !== "object" || Array.isArray(state.config)) {
    fail("config must be an object");
  }
  let config: RunConfig;
  try {
    config = validateRunConfig(state.config);
  } catch (e) {
    return fail(`config.${oneLine(e)}`);
  }
  if (state.task !== config.task) fail("task and config.task differ");
  if (typeof state.data !== "string" || state.data === "") fail("data must be a non-empty string");
  if (state.weights !== undefined && typeof state.weights !== "string") {
    fail("weights must be a string");
  }
  const done = state.completed_epochs;
  if (!Number.isInteger(done) || (done as number) < 0) {
    fail("completed_epochs must be an integer ≥ 0");
  }
  if ((done as number) > config.epochs) {
    fail(`completed_epochs ${done} is more than config.epochs ${config.epochs}`);
  }
  if (!Array.isArray(state.history)) return fail("history must be a list of epochs");
  if (state.history.length !== done) {
    fail(`history has ${state.history.length} epochs, completed_epochs ${done}`);
  }
  for (const [i, m] of state.history.entries()) {
    const problem = epochProblem(m, i + 1);
    if (problem) fail(`history[${i}]${problem.startsWith(".") ? "" : " "}${problem}`);
  }
  return state as unknown as RunState;
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

  /** `state.json`, checked against its schema ({@linkcode parseRunState}). */
  async readState(): Promise<RunState> {
    const bytes = await this.#read("state", "no checkpoint to resume from (not a run directory?)");
    return parseRunState(new TextDecoder().decode(bytes), this.path("state"));
  }

  /**
   * The checkpoint's weights and optimizer buffers (if any). With `state`, the checkpoint must be
   * the one it records (same task, same epoch): a checkpoint from another run or epoch is refused.
   */
  async readCheckpoint(state?: RunState): Promise<Checkpoint> {
    const weightsPath = this.path("checkpoint");
    const { tensors: weights, metadata } = readSafetensors(
      await this.#read("checkpoint", "missing (the run has no complete epoch)"),
      weightsPath,
    );
    if (
      state && (metadata.task !== state.task || metadata.epoch !== String(state.completed_epochs))
    ) {
      throw new Error(
        `${weightsPath}: holds ${metadata.task ?? "an unknown"} run's epoch ${
          metadata.epoch ?? "?"
        }` +
          `, but state.json records ${state.task} epoch ${state.completed_epochs}`,
      );
    }
    const optimizerPath = this.path("optimizer");
    if (!(await this.fs.stat(optimizerPath))) return { weights };
    return {
      weights,
      optimizer: readSafetensors(await this.fs.readFile(optimizerPath), optimizerPath).tensors,
    };
  }

  /**
   * After an epoch (and once before the first, as epoch 0): checkpoint, optimizer buffers,
   * metrics and `state.json`, all or nothing. Every file is written under a temporary name first,
   * so a full disk leaves the previous checkpoint and state as they were; then the renames put
   * `state.json` last, so a crash never leaves a state that points at a missing checkpoint.
   */
  async writeCheckpoint(
    weights: Uint8Array,
    optimizer: StateDict,
    state: Omit<RunState, "version">,
    metrics: object,
  ): Promise<void> {
    try {
      await atomicWriteAll(this.fs, [
        [this.path("checkpoint"), weights],
        ...(optimizer.size > 0
          ? [[this.path("optimizer"), writeSafetensors(optimizer)] as const]
          : []),
        [this.path("metrics"), metricsJson(metrics)],
        [this.path("state"), JSON.stringify({ version: RUN_FORMAT_VERSION, ...state }, null, 2)],
      ]);
    } catch (e) {
      const kept = state.completed_epochs > 0
        ? `epoch ${state.completed_epochs - 1}'s`
        : "the previous";
      throw new Error(
        `checkpoint of epoch ${state.completed_epochs} not written: ${oneLine(e)}; ` +
          `${kept} checkpoint in ${this.dir} is intact`,
      );
    }
  }

  /**
   * Whether a new `task` run may start in this directory: yes when it is missing or empty, or
   * holds a webtune run of the same task (a `state.json` or `config.json` + `metrics.json` of that
   * task); otherwise the reason, for a one-line error that suggests `--overwrite`.
   */
  async refuseNewRun(task: string): Promise<string | undefined> {
    const info = await this.fs.stat(this.dir);
    if (!info) return undefined;
    if (!info.isDirectory) return `${this.dir}: not a directory`;
    const names = (await this.fs.readDir(this.dir)).map((e) => e.name);
    if (names.length === 0) return undefined;
    const recorded = await this.#recordedTask();
    if (recorded === task) return undefined;
    const what = recorded ? `a ${recorded} run` : "not empty and not a webtune run";
    return `${this.dir}: ${what}; choose another --out, or pass --overwrite to replace its run files`;
  }

  /** The task `state.json` or `metrics.json` records, if either is readable. */
  async #recordedTask(): Promise<string | undefined> {
    for (const file of ["state", "metrics"] as const) {
      try {
        const json = JSON.parse(new TextDecoder().decode(await this.fs.readFile(this.path(file))));
        if (typeof json?.task === "string") return json.task;
      } catch {
        // Missing or unreadable: not evidence of a run.
      }
    }
    return undefined;
  }

  /**
   * A new run takes the directory over: the run files already there are moved aside (into
   * `.previous/`), so that {@linkcode RunTakeover.restore} can put them back when the new run
   * fails, and {@linkcode RunTakeover.commit} drops them once it has something true to keep.
   * Files that are not run files are never touched.
   */
  async takeOver(): Promise<RunTakeover> {
    await this.fs.mkdir(this.dir);
    const aside = `${this.dir}/.previous`;
    await this.fs.remove(aside, { recursive: true });
    const moved: string[] = [];
    for (const name of Object.values(RUN_FILES)) {
      if (await this.fs.stat(`${this.dir}/${name}`)) {
        await this.fs.mkdir(aside);
        await this.fs.rename(`${this.dir}/${name}`, `${aside}/${name}`);
        moved.push(name);
      }
    }
    return {
      moved,
      restore: async () => {
        for (const name of Object.values(RUN_FILES)) await this.fs.remove(`${this.dir}/${name}`);
        for (const name of moved) await this.fs.rename(`${aside}/${name}`, `${this.dir}/${name}`);
        await this.fs.remove(aside, { recursive: true });
      },
      commit: () => this.fs.remove(aside, { recursive: true }),
    };
  }

  /** The trained model's two files, both or neither. */
  async writeModel(files: ModelFiles): Promise<void> {
    await atomicWriteAll(this.fs, [
      [this.path("model"), files.weights],
      [this.path("config"), files.configJson],
    ]);
  }

  /**
   * The end of a finished run, all or nothing: `model.safetensors`, `config.json`, `metrics.json`
   * and `curves.svg`.
   */
  async writeFinal(files: ModelFiles, metrics: object, curvesSvg: string): Promise<void> {
    await atomicWriteAll(this.fs, [
      [this.path("model"), files.weights],
      [this.path("config"), files.configJson],
      [this.path("metrics"), metricsJson(metrics)],
      [this.path("curves"), curvesSvg],
    ]);
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
