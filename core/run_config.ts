/**
 * The run-config table: every hyper-parameter of a run declared once — its kind, the chapter's
 * value (per task where fine-tuning and scratch differ), its help line, the tasks that use it and
 * its label on the web page. The CLI's flags and `--help`, `compare`'s overrides, `config.json` /
 * `metrics.json` and the page's form are all derived from {@linkcode RUN_PARAMS}; adding a
 * hyper-parameter is one entry here plus its use (nanoGPT's habit: plain defaults, overridable).
 *
 * @example
 * ```ts
 * import { defaultRunConfig, parseParamValue } from "./run_config.ts";
 * const config = { ...defaultRunConfig("finetune"), lr: parseParamValue("lr", "1e-4") as number };
 * console.log(config.lr, config.batchSize); // 0.0001 128
 * ```
 *
 * @module
 */
import { ARCHS, RESNET18_IMAGENET } from "@webtune/models";
import { SAVE_POLICIES } from "./best_epoch.ts";
import { OPTIMIZER_KINDS } from "./optimizer.ts";
import { SCHEDULE_KINDS } from "./schedule.ts";
import { BN_MODES } from "./train_step.ts";

/** The chapter's two runs. */
export type Task = "finetune" | "scratch";

/** Every task, in the order `--help` lists them. */
export const TASKS: readonly Task[] = ["finetune", "scratch"];

/** A default that may differ between tasks (the chapter's `scratch` uses lr 5e-4, one group). */
export type PerTask<T> = T | { readonly finetune: T; readonly scratch: T };

interface ParamBase<T> {
  /** One line for `--help` and the page's tooltip. */
  readonly help: string;
  /** The chapter's value, the default. Absent for optional parameters (`--limit-train`). */
  readonly default?: PerTask<T>;
  /** Tasks whose runs use it (default: all). Other tasks get no flag and keep the default. */
  readonly tasks?: readonly Task[];
  /** The page's label; parameters without one are not on the page's form. */
  readonly page?: string;
}

/** A number; `integer` requires a whole (safe) integer; `min`/`max` are inclusive bounds. */
export interface NumberParam extends ParamBase<number> {
  readonly kind: "number";
  readonly integer?: boolean;
  readonly min?: number;
  readonly max?: number;
}

/**
 * A boolean. `explicit`: the flag takes a value (`--param-group false`), because the default
 * differs per task; otherwise it is a switch (`--nesterov`).
 */
export interface BooleanParam extends ParamBase<boolean> {
  readonly kind: "boolean";
  readonly explicit?: boolean;
}

/** One of a few named choices. */
export interface EnumParam<C extends string = string> extends ParamBase<C> {
  readonly kind: "enum";
  readonly choices: readonly C[];
}

/** One entry of the table. */
export type ParamSpec = NumberParam | BooleanParam | EnumParam;

/**
 * The hyper-parameters of a run, in `--help` order. Keys are `RunConfig` field names; the CLI flag
 * is the key in kebab case (`headLrMult` → `--head-lr-mult`).
 */
export const RUN_PARAMS = {
  imageSize: {
    kind: "number",
    integer: true,
    min: 32,
    default: 224,
    help:
      `train crop size (test: resize ×${RESNET18_IMAGENET.testResize}/${RESNET18_IMAGENET.inputSize}, crop)`,
    page: "Image size (px)",
  },
  batchSize: {
    kind: "number",
    integer: true,
    min: 1,
    default: 128,
    help: "images per batch",
    page: "Batch size",
  },
  epochs: { kind: "number", integer: true, min: 1, default: 5, help: "epochs", page: "Epochs" },
  lr: {
    kind: "number",
    min: 0,
    default: { finetune: 5e-5, scratch: 5e-4 },
    help: "learning rate η (loss is summed over the batch, as in d2l)",
    page: "Learning rate η",
  },
  headLrMult: {
    kind: "number",
    min: 0,
    default: 10,
    help: "the new fc trains at η × this",
    tasks: ["finetune"],
    page: "Head learning rate ×",
  },
  paramGroup: {
    kind: "boolean",
    explicit: true,
    default: { finetune: true, scratch: false },
    help: "true: backbone η, head η×mult; false: all η",
  },
  weightDecay: { kind: "number", min: 0, default: 0.001, help: "L2 weight decay (torch SGD's)" },
  momentum: { kind: "number", min: 0, default: 0, help: "SGD momentum (off in the chapter)" },
  nesterov: { kind: "boolean", default: false, help: "Nesterov momentum" },
  freezeBackbone: {
    kind: "boolean",
    default: false,
    help: "train the output layer only (exercise 3)",
    tasks: ["finetune"],
    page: "Freeze the backbone (train fc only)",
  },
  headInit: {
    kind: "enum",
    choices: ["xavier", "imagenet-hotdog"],
    default: "xavier",
    help: "the new fc's init (imagenet-hotdog: exercise 4)",
    tasks: ["finetune"],
  },
  seed: {
    kind: "number",
    integer: true,
    default: 0,
    help: "seed for init, shuffling and augmentation",
  },
  limitTrain: {
    kind: "number",
    integer: true,
    min: 1,
    help: "use a random subset of N training images",
  },
  limitTest: {
    kind: "number",
    integer: true,
    min: 1,
    help: "use a random subset of N test images",
  },
  arch: {
    kind: "enum",
    choices: ARCHS,
    help: "resnet18 | resnet34 | resnet50 (finetune: read from the weights if omitted; " +
      "scratch: resnet18)",
  },
  bn: {
    kind: "enum",
    choices: BN_MODES,
    default: "train",
    help: "BatchNorm while training: train (PyTorch tab) or frozen running stats (JAX tab)",
    page: "BatchNorm",
  },
  microBatch: {
    kind: "number",
    integer: true,
    min: 1,
    help: "examples per forward/backward pass; their gradients are summed into one step of " +
      "--batch-size (BatchNorm then sees each micro-batch's statistics, as d2l's multi-GPU " +
      "train_ch13 does). Default: the largest equal split that fits the device",
  },
  optimizer: {
    kind: "enum",
    choices: OPTIMIZER_KINDS,
    default: "sgd",
    help: "sgd (the chapter's torch.optim.SGD) or adamw (torch.optim.AdamW: betas 0.9/0.999, " +
      "eps 1e-8, decoupled --weight-decay)",
    page: "Optimizer",
  },
  schedule: {
    kind: "enum",
    choices: SCHEDULE_KINDS,
    default: "constant",
    help: "per-batch lr schedule: constant, cosine (CosineAnnealingLR to 0) or onecycle " +
      "(OneCycleLR, max_lr = --lr; also cycles momentum/β1 0.95→0.85→0.95)",
    page: "Schedule",
  },
  warmupEpochs: {
    kind: "number",
    min: 0,
    default: 0,
    help: "linear warm-up over this many epochs, per batch (constant/cosine)",
  },
  freezeEpochs: {
    kind: "number",
    integer: true,
    min: 0,
    default: 0,
    help: "train only the head for the first N of --epochs, then all layers with the param " +
      "groups; with --schedule onecycle, fastai's fine_tune: one cycle for the N epochs " +
      "(pct_start 0.99), a new one at half the lr for the rest (pct_start 0.3, div 5)",
    tasks: ["finetune"],
    page: "Head-only epochs first",
  },
  labelSmoothing: {
    kind: "number",
    min: 0,
    max: 1,
    default: 0,
    help: "CrossEntropyLoss(label_smoothing=ε), still summed over the batch",
    page: "Label smoothing ε",
  },
  save: {
    kind: "enum",
    choices: SAVE_POLICIES,
    default: "last",
    help: "model.safetensors from the last epoch, or the best test accuracy's (ties: later)",
  },
} as const satisfies Record<string, ParamSpec>;

type Params = typeof RUN_PARAMS;
/** A hyper-parameter's name (a `RunConfig` field). */
export type ParamName = keyof Params;
type ValueOf<P> = P extends { kind: "enum"; choices: readonly (infer C)[] } ? C
  : P extends { kind: "boolean" } ? boolean
  : number;
type WithDefault = { [K in ParamName as Params[K] extends { default: unknown } ? K : never]: K };
type Optional = Exclude<ParamName, keyof WithDefault>;

/** Everything that defines a run; written to `config.json` and `metrics.json`. */
export type RunConfig =
  & { task: Task }
  & { -readonly [K in keyof WithDefault]: ValueOf<Params[K]> }
  & { -readonly [K in Optional]?: ValueOf<Params[K]> };

/** The entry of `name`, typed as the general {@linkcode ParamSpec}. */
export function paramSpec(name: ParamName): ParamSpec {
  return RUN_PARAMS[name] as ParamSpec;
}

/** Every parameter name, in table order. */
export function paramNames(): ParamName[] {
  return Object.keys(RUN_PARAMS) as ParamName[];
}

/** Whether runs of `task` use `name` (the CLI offers its flag, the page enables its field). */
export function paramUsedBy(name: ParamName, task: Task): boolean {
  const tasks = paramSpec(name).tasks;
  return tasks === undefined || tasks.includes(task);
}

/** The default (the chapter's value) of one parameter for a task; undefined if optional. */
export function paramDefault(
  name: ParamName,
  task: Task,
): number | boolean | string | undefined {
  const d = paramSpec(name).default;
  if (d !== null && typeof d === "object") return d[task];
  return d;
}

/** One parameter as a task sees it: its flag, spec, default for the task, and whether used. */
export interface ParamEntry {
  name: ParamName;
  /** The CLI flag and the page's field id: `head-lr-mult`. */
  flag: string;
  spec: ParamSpec;
  default: number | boolean | string | undefined;
  /** Whether the task's runs use it (see {@linkcode paramUsedBy}). */
  used: boolean;
}

/** Every parameter of the table for `task`, in table order. */
export function paramEntries(task: Task): ParamEntry[] {
  return paramNames().map((name) => ({
    name,
    flag: flagName(name),
    spec: paramSpec(name),
    default: paramDefault(name, task),
    used: paramUsedBy(name, task),
  }));
}

/** The chapter's settings for each task. */
export function defaultRunConfig(task: Task): RunConfig {
  const config: Record<string, unknown> = { task };
  for (const name of paramNames()) {
    const value = paramDefault(name, task);
    if (value !== undefined) config[name] = value;
  }
  return config as RunConfig;
}

/** The CLI flag of a parameter: `headLrMult` → `head-lr-mult`. */
export function flagName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * What is wrong with `value` for a number, boolean or enum spec, as words without the
 * parameter's name ("expects an integer, got 1.5"), or undefined if it is fine; `got` is how the
 * value is shown (the text the user typed, where there is one). The CLI and the
 * page put the flag or the field's label in front. Integers must be safe integers, so a seed of
 * `1e300` is refused rather than rounded.
 */
export function valueProblem(
  spec: ParamSpec,
  value: unknown,
  got: string = typeof value === "string" ? value : JSON.stringify(value),
): string | undefined {
  switch (spec.kind) {
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        return `expects a number, got ${JSON.stringify(value)}`;
      }
      if (spec.integer && !Number.isSafeInteger(value)) {
        return `expects an integer${
          Number.isInteger(value) ? ` of at most ${Number.MAX_SAFE_INTEGER}` : ""
        }, got ${got}`;
      }
      if (spec.min !== undefined && value < spec.min) {
        return `must be at least ${spec.min}, got ${got}`;
      }
      if (spec.max !== undefined && value > spec.max) {
        return `must be at most ${spec.max}, got ${got}`;
      }
      return undefined;
    }
    case "boolean":
      return typeof value === "boolean" ? undefined : `expects true or false, got ${got}`;
    case "enum":
      return (spec.choices as readonly unknown[]).includes(value)
        ? undefined
        : `expects ${spec.choices.join(" or ")}, got ${got}`;
  }
}

/** An invalid parameter value; `problem` is the message without the parameter's name. */
export class ParamError extends Error {
  override name = "ParamError";
  constructor(readonly param: string, readonly problem: string) {
    super(`${param} ${problem}`);
  }
}

/**
 * Parses a text value (a CLI flag, a form field) for a spec: numbers with `Number` (an empty
 * string is not 0), booleans `true`/`false`, enums by name. Throws {@linkcode ParamError}.
 */
export function parseValue(param: string, spec: ParamSpec, raw: string): number | boolean | string {
  let value: unknown = raw;
  if (spec.kind === "number") {
    value = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(value)) {
      throw new ParamError(param, `expects a number, got "${raw}"`);
    }
  } else if (spec.kind === "boolean") {
    value = raw === "true" ? true : raw === "false" ? false : raw;
  }
  const problem = valueProblem(spec, value, raw);
  if (problem) throw new ParamError(param, problem);
  return value as number | boolean | string;
}

/** {@linkcode parseValue} for a run parameter, by name. */
export function parseParamValue(name: ParamName, raw: string): number | boolean | string {
  return parseValue(name, paramSpec(name), raw);
}

/**
 * Checks a whole config (e.g. read back from `state.json`): every parameter of the table present
 * unless optional, and valid. Throws {@linkcode ParamError} naming the first bad one.
 */
export function validateRunConfig(config: unknown): RunConfig {
  if (config === null || typeof config !== "object") {
    throw new ParamError("config", "must be an object");
  }
  const c = config as Record<string, unknown>;
  if (!TASKS.includes(c.task as Task)) {
    throw new ParamError("task", `expects ${TASKS.join(" or ")}, got ${JSON.stringify(c.task)}`);
  }
  for (const name of paramNames()) {
    const spec = paramSpec(name);
    if (c[name] === undefined && spec.default === undefined) continue;
    const problem = valueProblem(spec, c[name]);
    if (problem) throw new ParamError(name, problem);
  }
  return c as RunConfig;
}
