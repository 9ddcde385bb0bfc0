/**
 * `kernels.json` in a run directory: the GPU kernels the run computes with, so that every process
 * of the run (a resume, an extension) computes exactly as the first did.
 *
 * `--kernels auto` chooses each conv shape's variant by timing it in the process, and variants
 * round differently (dX's FMA form sums in another order than its dot-product form; stock tfjs in
 * yet another), so without a record a resumed run could drift from an uninterrupted one, as
 * PyTorch does with `cudnn.benchmark`. The record holds the mode (`auto`, `fast`, `stock`: a
 * resume without `--kernels` continues with it) and `auto`'s choice per shape key, written when
 * the run decides them (after its first step's tuning pass) and when it meets a new shape. The
 * rules of what runs when are `KernelTuner.pinRun`'s (core/kernels/autotune.ts).
 *
 * Format (version {@linkcode RUN_FORMAT_VERSION}):
 *
 * ```json
 * {
 *   "version": 1,
 *   "kernels": "auto",
 *   "kernel_set": "conv-variants-4",
 *   "adapter": "webgpu: llvmpipe (LLVM 15.0.6, 256 bits) [software fallback adapter]",
 *   "choices": { "<shape key>": "texture-fma", "…": "stock" },
 *   "first_step": { "epoch": 1, "choices": { "<shape key>": "texture-small" } }
 * }
 * ```
 *
 * `choices` are the variants from the first tuning pass on; `first_step` says which epoch's first
 * step came before that pass and what it ran where that differs (a resume from that epoch's
 * start replays it). `kernel_set` is the `KERNEL_SET_VERSION` the variant names belong to: a
 * record of another kernel set is dropped with a warning (the run goes on with new choices).
 *
 * @example
 * ```ts ignore
 * const recorded = await readRunKernels(dir); // undefined when the run has none
 * const record = pinRunKernels(dir, { kernels: "auto", adapter, epoch: 1, recorded, warn });
 * await record.save();
 * ```
 *
 * @module
 */
import {
  type AdapterReport,
  describeAdapter,
  KERNEL_CHOICES,
  type KernelChoice,
} from "./backend.ts";
import {
  KERNEL_SET_VERSION,
  pinRunKernelChoices,
  type RunKernelChoices,
  runKernelChoices,
  saveRunKernelChoices,
} from "./kernels/mod.ts";
import { atomicWrite, RUN_FORMAT_VERSION, type RunDir } from "./run_dir.ts";

/** The parsed `kernels.json`. */
export interface RunKernels {
  version: number;
  /** The `--kernels` mode the run computes with. */
  kernels: KernelChoice;
  /** The kernel-set version the variant names belong to. */
  kernel_set: string;
  /** The adapter the choices were made on, for people. */
  adapter: string;
  /** Variant per shape key from the first tuning pass on (`auto`). */
  choices: Record<string, string>;
  /** The step before that pass: its epoch and what it ran where that differs. */
  first_step?: { epoch: number; choices: Record<string, string> };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** What is wrong with a variant-per-shape map, or undefined. */
function choicesProblem(v: unknown, field: string): string | undefined {
  if (!isObject(v)) return `${field} must be an object of shape key → variant`;
  for (const [key, variant] of Object.entries(v)) {
    if (typeof variant !== "string" || variant === "") {
      return `${field}[${JSON.stringify(key.slice(0, 40))}] must be a variant name`;
    }
  }
  return undefined;
}

/**
 * Parses and checks `kernels.json`; errors are one line naming the file and the field.
 *
 * @example
 * ```ts
 * import { parseRunKernels } from "./run_kernels.ts";
 * parseRunKernels(
 *   '{"version":1,"kernels":"fast","kernel_set":"v","adapter":"a","choices":{}}',
 *   "runs/x/kernels.json",
 * ).kernels; // "fast"
 * ```
 */
export function parseRunKernels(json: string, path: string): RunKernels {
  let r: unknown;
  try {
    r = JSON.parse(json);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  const problem = !isObject(r)
    ? "expected a JSON object"
    : r.version !== RUN_FORMAT_VERSION
    ? `version must be ${RUN_FORMAT_VERSION}, got ${JSON.stringify(r.version) ?? "nothing"}`
    : !KERNEL_CHOICES.includes(r.kernels as KernelChoice)
    ? `kernels must be one of ${KERNEL_CHOICES.join(", ")}`
    : typeof r.kernel_set !== "string" || r.kernel_set === ""
    ? "kernel_set must be a non-empty string"
    : typeof r.adapter !== "string"
    ? "adapter must be a string"
    : choicesProblem(r.choices, "choices") ??
      (r.first_step === undefined
        ? Object.keys(r.choices as object).length > 0
          ? "first_step is missing (choices are recorded with their first step)"
          : undefined
        : !isObject(r.first_step)
        ? "first_step must be an object"
        : !Number.isInteger(r.first_step.epoch) || (r.first_step.epoch as number) < 1
        ? "first_step.epoch must be an integer ≥ 1"
        : choicesProblem(r.first_step.choices, "first_step.choices"));
  if (problem) throw new Error(`${path}: not a webtune kernel record (${problem})`);
  return r as unknown as RunKernels;
}

/** The run's `kernels.json`, checked; undefined when it has none (a run made before it existed). */
export async function readRunKernels(dir: RunDir): Promise<RunKernels | undefined> {
  const path = dir.path("kernels");
  if (!(await dir.fs.stat(path))) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = await dir.fs.readFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message.split("\n")[0]})`);
  }
  return parseRunKernels(new TextDecoder().decode(bytes), path);
}

/** What {@linkcode pinRunKernels} returns: writes the record as it stands. */
export interface RunKernelRecord {
  /** Writes `kernels.json` now (after a new run has taken its directory over). */
  save(): Promise<void>;
  /** Writes it if the run met new shapes since (call after each epoch). */
  saveChanges(): Promise<void>;
}

/** Options of {@linkcode pinRunKernels}. */
export interface PinRunKernelsOptions {
  /** This process's mode. */
  kernels: KernelChoice;
  adapter: AdapterReport;
  /** The first epoch this process trains (1 for a new run). */
  epoch: number;
  /** The run's record, from {@linkcode readRunKernels} (undefined for a new run). */
  recorded?: RunKernels;
  /** Where the one-line warnings go (a record of another kernel set or adapter). */
  warn: (line: string) => void;
}

/**
 * Makes this process compute with the run's recorded kernels and record its own decisions in
 * `dir`'s `kernels.json` (temp name + rename). Call after the backend is set up and before
 * `prepareRun` (its precompile pass already meets the run's shapes). A record of another kernel
 * set is dropped with a warning; one made on another adapter is used, with a warning.
 *
 * @example
 * ```ts ignore
 * const record = pinRunKernels(dir, { kernels: "auto", adapter, epoch: 1, warn: console.warn });
 * await dir.takeOver();
 * await record.save();
 * ```
 */
export function pinRunKernels(dir: RunDir, options: PinRunKernelsOptions): RunKernelRecord {
  const path = dir.path("kernels");
  const adapter = describeAdapter(options.adapter);
  let recorded: RunKernelChoices | undefined;
  const r = options.recorded;
  if (r && r.kernel_set !== KERNEL_SET_VERSION && Object.keys(r.choices).length > 0) {
    options.warn(
      `${path}: recorded with kernel set ${r.kernel_set}, this webtune has ${KERNEL_SET_VERSION}: ` +
        "choosing kernels afresh (the run may round differently from its earlier epochs)",
    );
  } else if (r) {
    if (r.adapter !== adapter && Object.keys(r.choices).length > 0) {
      options.warn(
        `${path}: choices made on ${r.adapter}, running on ${adapter}: the same kernels run, ` +
          "but another adapter may round differently",
      );
    }
    recorded = {
      choices: r.choices,
      ...(r.first_step ? { firstStep: r.first_step } : {}),
    };
  }
  const write = (choices: RunKernelChoices | undefined) => {
    const record: RunKernels = {
      version: RUN_FORMAT_VERSION,
      kernels: options.kernels,
      kernel_set: KERNEL_SET_VERSION,
      adapter,
      choices: choices?.choices ?? {},
      ...(choices?.firstStep ? { first_step: choices.firstStep } : {}),
    };
    return atomicWrite(dir.fs, path, `${JSON.stringify(record, null, 1)}\n`);
  };
  pinRunKernelChoices(recorded, { epoch: options.epoch, store: { save: write } });
  return {
    // Under fast (or stock) the recorded choices stay in the file for a later `auto` resume.
    save: () => write(runKernelChoices() ?? recorded),
    saveChanges: () => saveRunKernelChoices(),
  };
}
