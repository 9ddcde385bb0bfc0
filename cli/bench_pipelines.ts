/**
 * `deno run -A cli/bench_pipelines.ts [--size 64] [--kernels auto] [--fresh-choices]
 * [--precompile] [--json]`: what a cold first training step spends on each GPU pipeline. Run it
 * with `MESA_SHADER_CACHE_DISABLE=true` for a cold shader cache, as `bench`'s first-step child
 * does; `--fresh-choices` starts from no stored kernel choices, as a first run on a machine does
 * (`auto` then runs the first-use variants).
 *
 * llvmpipe generates a pipeline's machine code at its first dispatch. Deno's `queue.submit`
 * returns before lavapipe ran the submission, and the next `submit` waits for it (a conv's time
 * showed up at the dispatch after it). So this script submits every dispatch alone
 * (`WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE` 1) and charges each submit's wait to the dispatch before
 * it. It runs the real first step (`prepareRun`'s model, optimizer and first batch) twice on the
 * same batch, and per pipeline (tfjs's pipeline-cache key: the program and what its WGSL bakes
 * in) prints: dispatches per step, distinct dispatch sizes, both steps' time, their difference
 * (≈ its code generation at first dispatch; a pipeline that lavapipe recompiled at every
 * dispatch would show in both), the same difference in process CPU time (`cpu`, all threads:
 * steadier than wall time on a busy machine), the main thread's `createShaderModule` + `createComputePipeline`
 * time, and the tfjs kernel that created it. Rows are grouped by program family, `webtune` for
 * ours, `tfjs` for stock programs. The steps' process CPU time (all threads) is printed too:
 * steadier than wall time on a busy machine.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { parseArgs } from "node:util";
import {
  defaultRunConfig,
  disposeBatch,
  prepareRun,
  type RunConfig,
  setupBackend,
  toDevice,
  trainStep,
} from "@webtune/core";
import { memoryKernelStore } from "@webtune/core/kernels";
import { resolveDataSource } from "@webtune/data";
import { denoFs } from "@webtune/data/deno_fs";
import { defaultKernelStore } from "./kernel_store.ts";
import { processCpuSeconds } from "./bench_first_step.ts";

/**
 * One dispatch as submitted: its pipeline, workgroup counts, the submit's milliseconds and the
 * process CPU milliseconds (all threads) during it: steadier than wall time on a busy machine.
 */
interface Dispatch {
  pipeline: GPUComputePipeline;
  size: string;
  ms: number;
  cpuMs: number;
}

/** What the hooks saw: dispatches per step and each pipeline's creation. */
interface Recorder {
  dispatches: Dispatch[];
  /** Milliseconds of submits that held no dispatch (copies, readbacks). */
  otherMs: number;
  created: Map<GPUComputePipeline, { label: string; ms: number; kernels: string }>;
  moduleMs: number;
}

/** The tfjs kernels running now, outermost first (which op made a pipeline). */
const kernelStack: string[] = [];

/** Keeps {@linkcode kernelStack}: wraps the engine's `runKernel`. */
function hookKernels(): void {
  const engine = tf.engine() as unknown as {
    runKernel: (name: string, ...a: unknown[]) => unknown;
  };
  const runKernel = engine.runKernel;
  engine.runKernel = function (this: unknown, name: string, ...a: unknown[]) {
    kernelStack.push(name);
    try {
      return runKernel.call(this, name, ...a);
    } finally {
      kernelStack.pop();
    }
  };
}

/** Wraps the device's compile calls, the pass's setPipeline/dispatch and the queue's submit. */
function hookWebGpu(): Recorder {
  const rec: Recorder = { dispatches: [], otherMs: 0, created: new Map(), moduleMs: 0 };
  let pendingModuleMs = 0;
  const device = GPUDevice.prototype;
  const createModule = device.createShaderModule;
  device.createShaderModule = function (this: GPUDevice, d: GPUShaderModuleDescriptor) {
    const t0 = performance.now();
    const m = createModule.call(this, d);
    pendingModuleMs += performance.now() - t0;
    return m;
  };
  const createPipeline = device.createComputePipeline;
  device.createComputePipeline = function (this: GPUDevice, d: GPUComputePipelineDescriptor) {
    const t0 = performance.now();
    const p = createPipeline.call(this, d);
    rec.created.set(p, {
      label: d.label ?? "?",
      ms: performance.now() - t0 + pendingModuleMs,
      kernels: kernelStack.join(">"),
    });
    rec.moduleMs += pendingModuleMs;
    pendingModuleMs = 0;
    return p;
  };
  const pass = GPUComputePassEncoder.prototype;
  let current: GPUComputePipeline | undefined;
  let pending: { pipeline: GPUComputePipeline; size: string }[] = [];
  const setPipeline = pass.setPipeline;
  pass.setPipeline = function (this: GPUComputePassEncoder, p: GPUComputePipeline) {
    current = p;
    return setPipeline.call(this, p);
  };
  const dispatch = pass.dispatchWorkgroups;
  pass.dispatchWorkgroups = function (this: GPUComputePassEncoder, x: number, y = 1, z = 1) {
    pending.push({ pipeline: current!, size: `${x}x${y}x${z}` });
    return dispatch.call(this, x, y, z);
  };
  // Deno returns from `submit` before the work ran; the next submit waits for it (measured: a
  // conv's time showed up at the dispatch after it). So a submit's time is the previous
  // submission's: its dispatches' run time and, at a pipeline's first dispatch, its compile.
  const queue = GPUQueue.prototype;
  const submit = queue.submit;
  let inFlight: { pipeline: GPUComputePipeline; size: string }[] = [];
  queue.submit = function (this: GPUQueue, buffers: GPUCommandBuffer[]) {
    const t0 = performance.now(), c0 = processCpuSeconds();
    const r = submit.call(this, buffers);
    const ms = performance.now() - t0, cpuMs = (processCpuSeconds() - c0) * 1000;
    if (inFlight.length === 0) rec.otherMs += ms;
    // With one dispatch per submit the time is that dispatch's; else it is split evenly.
    for (const d of inFlight) {
      rec.dispatches.push({ ...d, ms: ms / inFlight.length, cpuMs: cpuMs / inFlight.length });
    }
    inFlight = pending;
    pending = [];
    return r;
  };
  return rec;
}

/** One pipeline's row of the table. */
interface PipelineRow {
  key: string;
  /** The tfjs kernels (outer>inner) that were running when the pipeline was created. */
  kernels: string;
  family: string;
  ours: boolean;
  dispatches: number;
  sizes: number;
  firstStepMs: number;
  secondStepMs: number;
  /** Process CPU ms (all threads) of its dispatches in the first and the second step. */
  firstStepCpuMs: number;
  secondStepCpuMs: number;
  createMs: number;
}

/** The program family of a pipeline-cache key: its program name (tfjs) or webtune's program. */
function familyOf(key: string, label: string): string {
  if (key.startsWith("webtune")) return key.slice("webtune".length).split("_")[0];
  return label;
}

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "64" },
    "batch-size": { type: "string", default: "16" },
    kernels: { type: "string", default: "auto" },
    data: { type: "string", default: "../shared/datasets/hotdog-mini" },
    "fresh-choices": { type: "boolean", default: false },
    precompile: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});
const rec = hookWebGpu();
const adapter = await setupBackend({
  backend: "webgpu",
  kernels: values.kernels as "auto" | "fast" | "stock",
  env: Deno.env,
  // A first run on this machine has no stored choices: auto runs the first-use variants.
  kernelStore: values["fresh-choices"] ? memoryKernelStore() : defaultKernelStore(),
});
tf.env().set("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE", 1);
hookKernels();
const isDir = (await denoFs.stat(values.data))?.isDirectory;
const data = await resolveDataSource(isDir ? values.data : "synthetic", { fs: denoFs });
const config: RunConfig = {
  ...defaultRunConfig("scratch"),
  imageSize: Number(values.size),
  batchSize: Number(values["batch-size"]),
  epochs: 1,
};
const run = await prepareRun(config, data, { precompile: values.precompile, adapter });
const first = await run.trainBatches(1)[Symbol.asyncIterator]().next();
const batch = toDevice(first.value);
const steps: Dispatch[][] = [];
const wall: number[] = [];
const cpu: number[] = [];
for (let i = 0; i < 2; i++) {
  rec.dispatches = [];
  const t0 = performance.now(), c0 = processCpuSeconds();
  await trainStep(run.model, batch, run.optimizer, run.config.bn);
  wall.push(performance.now() - t0);
  cpu.push(processCpuSeconds() - c0);
  steps.push(rec.dispatches);
}
disposeBatch(batch);
run.dispose();

// Pipeline objects → their cache keys (tfjs keeps `pipelineCache[key] = pipeline`).
const cache = (tf.backend() as unknown as { pipelineCache: Record<string, unknown> })
  .pipelineCache;
const keyOf = new Map<unknown, string>();
for (const [key, p] of Object.entries(cache)) keyOf.set(p, key);

const rows = new Map<GPUComputePipeline, PipelineRow>();
for (const [i, step] of steps.entries()) {
  for (const d of step) {
    let row = rows.get(d.pipeline);
    if (!row) {
      const key = keyOf.get(d.pipeline) ?? rec.created.get(d.pipeline)?.label ?? "?";
      const label = rec.created.get(d.pipeline)?.label ?? "?";
      row = {
        key,
        kernels: rec.created.get(d.pipeline)?.kernels ?? "?",
        family: familyOf(key, label),
        ours: key.startsWith("webtune"),
        dispatches: 0,
        sizes: 0,
        firstStepMs: 0,
        secondStepMs: 0,
        firstStepCpuMs: 0,
        secondStepCpuMs: 0,
        createMs: rec.created.get(d.pipeline)?.ms ?? 0,
      };
      rows.set(d.pipeline, row);
    }
    if (i === 0) {
      row.dispatches++;
      row.firstStepMs += d.ms;
      row.firstStepCpuMs += d.cpuMs;
    } else {
      row.secondStepMs += d.ms;
      row.secondStepCpuMs += d.cpuMs;
    }
  }
}
for (const [pipeline, row] of rows) {
  row.sizes = new Set(steps[0].filter((d) => d.pipeline === pipeline).map((d) => d.size)).size;
}

const all = [...rows.values()];
const families = new Map<string, PipelineRow[]>();
for (const row of all) families.set(row.family, [...families.get(row.family) ?? [], row]);
const compile = (r: PipelineRow) => r.firstStepMs - r.secondStepMs;
const compileCpu = (r: PipelineRow) => r.firstStepCpuMs - r.secondStepCpuMs;
const sum = (rs: PipelineRow[], f: (r: PipelineRow) => number) => rs.reduce((s, r) => s + f(r), 0);
const ordered = [...families.entries()].sort((a, b) => sum(b[1], compile) - sum(a[1], compile));

if (values.json) {
  console.log(JSON.stringify({ wall_ms: wall, cpu_seconds: cpu, rows: all }));
} else {
  const n = (v: number) => v.toFixed(0).padStart(7);
  console.log(
    `first step ${wall[0].toFixed(0)} ms (process CPU ${cpu[0].toFixed(2)} s), second ` +
      `${wall[1].toFixed(0)} ms (${cpu[1].toFixed(2)} s); ` +
      `${all.length} pipelines (${all.filter((r) => r.ours).length} webtune), ` +
      `${steps[0].length} dispatches; created on the main thread in ` +
      `${sum(all, (r) => r.createMs).toFixed(0)} ms`,
  );
  console.log(
    "family / pipeline key".padEnd(58) +
      "  pipes   disp  sizes  step1  step2 compile    cpu create",
  );
  for (const [family, rs] of ordered) {
    console.log(
      `${(rs[0].ours ? "webtune " : "tfjs ") + family}`.padEnd(58) +
        `${n(rs.length)}${n(sum(rs, (r) => r.dispatches))}${n(sum(rs, (r) => r.sizes))}` +
        `${n(sum(rs, (r) => r.firstStepMs))}${n(sum(rs, (r) => r.secondStepMs))}` +
        `${n(sum(rs, compile))}${n(sum(rs, compileCpu))}${n(sum(rs, (r) => r.createMs))}`,
    );
    for (const r of rs.sort((a, b) => compile(b) - compile(a))) {
      console.log(
        `  ${r.key.slice(0, 54)}`.padEnd(58) +
          `${n(1)}${n(r.dispatches)}${n(r.sizes)}${n(r.firstStepMs)}${n(r.secondStepMs)}` +
          `${n(compile(r))}${n(compileCpu(r))}${n(r.createMs)}  ${r.kernels}`,
      );
    }
  }
  console.log(
    `total`.padEnd(58) +
      `${n(all.length)}${n(sum(all, (r) => r.dispatches))}${n(sum(all, (r) => r.sizes))}` +
      `${n(sum(all, (r) => r.firstStepMs))}${n(sum(all, (r) => r.secondStepMs))}` +
      `${n(sum(all, compile))}${n(sum(all, compileCpu))}${n(sum(all, (r) => r.createMs))}`,
  );
}
