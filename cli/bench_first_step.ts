/**
 * `bench`'s launch → first finished training step: a fresh process runs the real training path
 * (data listing, model, `prepareRun` with its decoding and — unless disabled — the pipelines
 * compiled ahead, then `runTraining` until the first batch ends) and prints where the time went,
 * with every shader module and pipeline it created counted and timed. It trains on to step
 * {@linkcode LATER_STEP}, so that a first step made faster by leaving work for later (the tuning
 * pass, the tuned variants' pipelines) shows.
 *
 * @module
 */
import { defaultRunConfig, prepareRun, type RunConfig, runTraining } from "@webtune/core";
import { resolveDataSource } from "@webtune/data";
import { denoFs } from "@webtune/data/deno_fs";
import type { Arch } from "@webtune/models";

/**
 * The step up to which the child trains: what the first step leaves for later (the tuning pass
 * after it, pipelines of tuned variants compiled at their first dispatch) shows by then.
 */
export const LATER_STEP = 5;

/** What one fresh process spent, in seconds since its launch unless named otherwise. */
export interface FirstStep {
  first_step_seconds: number;
  /** Launch → the end of each step up to {@linkcode LATER_STEP} (the first included). */
  step_seconds: number[];
  /** Seconds per phase, in order: module load, backend, data listing, prepare, first step. */
  phases: Record<string, number>;
  /**
   * Process CPU seconds (all threads: the main thread and llvmpipe's) per phase; steadier than
   * wall time on a busy machine. Empty where /proc is not readable.
   */
  cpu_phases: Record<string, number>;
  /** Shader modules and pipelines created before the first step finished, and their ms. */
  compiles: CompileCounts;
  /** Pipelines `prepareRun` compiled ahead (0 when disabled). */
  precompiled_pipelines: number;
}

/** Counts and milliseconds of the device's compile calls (on the calling thread). */
export interface CompileCounts {
  shader_modules: number;
  shader_module_ms: number;
  pipelines: number;
  pipeline_ms: number;
  /** Of `pipelines`, those made with createComputePipelineAsync. */
  async_pipelines: number;
}

/**
 * Wraps `GPUDevice`'s compile calls to count them and time the calling thread's share (in Deno
 * that is the whole compile: wgpu compiles inside the call even for the async variant).
 */
export function countCompiles(): CompileCounts {
  const counts: CompileCounts = {
    shader_modules: 0,
    shader_module_ms: 0,
    pipelines: 0,
    pipeline_ms: 0,
    async_pipelines: 0,
  };
  const proto = GPUDevice.prototype;
  const timed = <A extends unknown[], R>(f: (...a: A) => R, count: (ms: number) => void) =>
    function (this: GPUDevice, ...args: A): R {
      const t0 = performance.now();
      try {
        return f.apply(this, args);
      } finally {
        count(performance.now() - t0);
      }
    };
  proto.createShaderModule = timed(proto.createShaderModule, (ms) => {
    counts.shader_modules++;
    counts.shader_module_ms += ms;
  });
  proto.createComputePipeline = timed(proto.createComputePipeline, (ms) => {
    counts.pipelines++;
    counts.pipeline_ms += ms;
  });
  proto.createComputePipelineAsync = timed(proto.createComputePipelineAsync, (ms) => {
    counts.pipelines++;
    counts.async_pipelines++;
    counts.pipeline_ms += ms;
  });
  return counts;
}

/** User + system CPU seconds of this process so far (Linux /proc), or NaN. */
export function processCpuSeconds(): number {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and
    // 13th, in clock ticks of 1/100 s on Linux.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Options of {@linkcode firstStep}. */
export interface FirstStepOptions {
  arch: Arch;
  size: number;
  batch: number;
  /** `--data` of the bench (a folder; the synthetic set when it is missing). */
  data: string;
  precompile: boolean;
  /** `performance.now()` and {@linkcode processCpuSeconds} before and after the backend setup. */
  backendStart: [number, number];
  backendEnd: [number, number];
  compiles: CompileCounts;
}

/**
 * The child's work: the training path up to step {@linkcode LATER_STEP} (the phases end at the
 * first). Resolves there, with the run still stopping: the child process exits after printing.
 */
export async function firstStep(options: FirstStepOptions): Promise<FirstStep> {
  const { size, batch, compiles } = options;
  const marks: [string, [number, number]][] = [
    ["module load", options.backendStart],
    ["backend", options.backendEnd],
  ];
  const mark = (name: string) => marks.push([name, [performance.now(), processCpuSeconds()]]);
  const isDir = (await denoFs.stat(options.data))?.isDirectory;
  const data = await resolveDataSource(isDir ? options.data : "synthetic", { fs: denoFs });
  mark("data listing");
  const config: RunConfig = {
    ...defaultRunConfig("scratch"),
    arch: options.arch,
    imageSize: size,
    batchSize: batch,
    epochs: 1,
  };
  const run = await prepareRun(config, data, { precompile: options.precompile });
  mark("prepare (model, decode, precompile)");
  // Ends at step LATER_STEP's batch-end (or the first epoch's end, if sooner); the phases end
  // at the first step. What follows the first step (`auto`'s tuning pass, tuned variants'
  // pipelines) shows in the later steps' times.
  let atFirstStep: CompileCounts | undefined;
  const stepSeconds: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const stop = new AbortController();
    runTraining(run, {
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type !== "batch-end") return;
        stepSeconds.push(performance.now() / 1000);
        if (e.batch === 1) {
          mark("first step");
          atFirstStep = { ...compiles };
        }
        if (e.batch < LATER_STEP) return;
        stop.abort();
        resolve();
      },
    }).then(() => resolve(), reject);
  });
  const phases: Record<string, number> = {}, cpuPhases: Record<string, number> = {};
  let previous = 0, previousCpu = 0;
  const firstAt = marks.at(-1)![1][0];
  for (const [name, [at, cpu]] of marks) {
    phases[name] = (at - previous) / 1000;
    if (Number.isFinite(cpu)) cpuPhases[name] = cpu - previousCpu;
    previous = at;
    previousCpu = cpu;
  }
  return {
    first_step_seconds: firstAt / 1000,
    step_seconds: stepSeconds,
    phases,
    cpu_phases: cpuPhases,
    compiles: atFirstStep ?? { ...compiles },
    precompiled_pipelines: run.precompiled?.pipelines ?? 0,
  };
}

/** What the fresh process of {@linkcode firstStepInFreshProcess} starts without. */
export interface FreshProcessCaches {
  /** Mesa's on-disk shader cache disabled (MESA_SHADER_CACHE_DISABLE), as on a first run. */
  cold: boolean;
  /**
   * An empty webtune cache directory (WEBTUNE_CACHE), so no stored kernel choices: `--kernels
   * auto` runs its first-use variants, as on a first run on a machine.
   */
  firstRun: boolean;
}

/** Runs `bench --first-step-only` in a fresh process and returns what it printed. */
export async function firstStepInFreshProcess(
  bench: string,
  args: string[],
  caches: FreshProcessCaches,
): Promise<FirstStep> {
  const env: Record<string, string> = caches.cold ? { MESA_SHADER_CACHE_DISABLE: "true" } : {};
  const fresh = caches.firstRun ? await Deno.makeTempDir({ prefix: "webtune-first-run-" }) : "";
  if (fresh) env.WEBTUNE_CACHE = fresh;
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", bench, "--first-step-only", ...args],
      env,
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
    if (!out.success) {
      throw new Error(`first-step child failed: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
    return JSON.parse(text) as FirstStep;
  } finally {
    if (fresh) await Deno.remove(fresh, { recursive: true });
  }
}
