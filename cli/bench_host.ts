/**
 * Where a training and an inference step's main-thread time goes outside the GPU work. Prints,
 * per step, the main thread's CPU time (the JavaScript and the WebGPU calls it makes) next to all
 * threads' (llvmpipe's included) and the wall time; on a 2-core machine the main thread's CPU
 * competes with llvmpipe's threads, so every millisecond of it counts.
 *
 * ```sh
 * deno run -A cli/bench_host.ts                 # 64 px, batch 16, auto kernels (tuned first)
 * deno run -A cli/bench_host.ts --kernels fast --calls --steps 6
 * deno run -A cli/bench_host.ts --kernels fast --ab 3 --steps 4
 * ```
 *
 * - `--calls`: every WebGPU call (`createBindGroup`, `CommandEncoder.finish`, …), tfjs backend
 *   method and tfjs kernel is wrapped with a timer of the thread's CPU time (`clock_gettime`
 *   through FFI) and counted; kernels are listed by self time. The wrappers cost ~10–20% more
 *   main-thread CPU themselves.
 * - `--js-profile`: V8's sampling profile (node:inspector) of the timed training steps, by
 *   function. It samples wall time, so waits (`submit`) show too.
 * - `--ab N`: the steps with neither the dispatch caches (core/kernels/dispatch_cache.ts) nor
 *   kept filter textures (core/kernels/texture_operands.ts), with the caches, and with both,
 *   alternated N times in this process; medians per variant.
 * - `--ab-submit-batch N`: with `--ab`, also the caches on with N dispatches per submit.
 * - `--submit-batch N`: tfjs's `WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE` (default 15).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { Session } from "node:inspector";
import { parseArgs } from "node:util";
import { describeAdapter, disposeBatch, setupBackend, trainStep } from "@webtune/core";
import {
  dispatchCacheStats,
  keptTextureHits,
  operandCopyCount,
  setDispatchCaching,
  setMaxKeptTextureBytes,
  tunePendingKernels,
} from "@webtune/core/kernels";
import { cpuMs } from "./bench_dx.ts";
import { evalForward, setupStep } from "./bench_setup.ts";

/** Per wrapped method, e.g. `GPUDevice.createBindGroup`: wall and main-thread CPU ms, calls. */
type CallTimes = Map<string, { ms: number; cpu: number; calls: number }>;

/** The WebGPU methods a step calls, by interface. */
const WRAPPED: [string, { prototype: object }, string[]][] = [
  ["GPUDevice", GPUDevice, [
    "createBindGroup",
    "createBuffer",
    "createTexture",
    "createCommandEncoder",
    "createShaderModule",
    "createComputePipeline",
    "createPipelineLayout",
  ]],
  ["GPUQueue", GPUQueue, ["submit", "writeBuffer"]],
  ["GPUCommandEncoder", GPUCommandEncoder, [
    "finish",
    "beginComputePass",
    "copyBufferToTexture",
    "copyBufferToBuffer",
  ]],
  ["GPUComputePassEncoder", GPUComputePassEncoder, [
    "setPipeline",
    "setBindGroup",
    "dispatchWorkgroups",
    "end",
  ]],
  ["GPUComputePipeline", GPUComputePipeline, ["getBindGroupLayout"]],
  ["GPUTexture", GPUTexture, ["createView", "destroy"]],
  ["GPUBuffer", GPUBuffer, ["mapAsync", "getMappedRange", "unmap", "destroy"]],
];

/** tfjs-webgpu backend methods (inclusive of the WebGPU calls they make). */
const BACKEND_METHODS = ["runWebGPUProgram", "makeUniforms", "submitQueue", "disposeData"];

/**
 * CPU time of the calling thread in ms (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)` through FFI, a
 * fraction of a microsecond): wall time on this shared machine counts other processes' time.
 */
const threadCpuMs = (() => {
  const libc = Deno.dlopen("libc.so.6", {
    clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  });
  const ts = new BigInt64Array(2);
  return () => {
    libc.symbols.clock_gettime(3, ts);
    return Number(ts[0]) * 1e3 + Number(ts[1]) / 1e6;
  };
})();

/** Replaces `target[method]` with a timed wrapper that adds to `times` under `name`. */
function wrap(times: CallTimes, target: object, method: string, name: string): void {
  const obj = target as Record<string, (...a: unknown[]) => unknown>;
  const original = obj[method];
  if (typeof original !== "function") return;
  const entry = { ms: 0, cpu: 0, calls: 0 };
  times.set(name, entry);
  obj[method] = function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now(), c0 = threadCpuMs();
    try {
      return original.apply(this, args);
    } finally {
      entry.cpu += threadCpuMs() - c0;
      entry.ms += performance.now() - t0;
      entry.calls++;
    }
  };
}

/** Wraps the methods of {@linkcode WRAPPED}; returns the live totals. */
function wrapWebGpu(): CallTimes {
  const times: CallTimes = new Map();
  for (const [iface, cls, methods] of WRAPPED) {
    for (const method of methods) wrap(times, cls.prototype, method, `${iface}.${method}`);
  }
  return times;
}

/**
 * Adds `kernel <name> (self)` rows: the main-thread CPU of each tfjs kernel call, without the
 * kernels it calls itself (nested `runKernel`s), with the WebGPU calls it makes.
 */
function wrapKernelsBySelfTime(times: CallTimes, engine: object): void {
  const obj = engine as { runKernel: (name: string, ...a: unknown[]) => unknown };
  const original = obj.runKernel;
  const stack: number[] = [];
  obj.runKernel = function (this: unknown, name: string, ...args: unknown[]) {
    const c0 = threadCpuMs();
    stack.push(0);
    try {
      return original.call(this, name, ...args);
    } finally {
      const inclusive = threadCpuMs() - c0;
      const nested = stack.pop()!;
      if (stack.length > 0) stack[stack.length - 1] += inclusive;
      const key = `kernel ${name} (self)`;
      let entry = times.get(key);
      if (!entry) times.set(key, entry = { ms: 0, cpu: 0, calls: 0 });
      entry.cpu += inclusive - nested;
      entry.calls++;
    }
  };
}

/** A V8 CPU profile (node:inspector's `Profiler.stop` result). */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
}

/** Starts V8's sampling profiler on this thread (the JavaScript, not the GPU threads). */
async function startJsProfile(): Promise<{ stop(): Promise<CpuProfile> }> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params ?? {}, (err, result) => err ? reject(err) : resolve(result))
    );
  await post("Profiler.enable");
  await post("Profiler.setSamplingInterval", { interval: 200 });
  await post("Profiler.start");
  return {
    stop: async () => ((await post("Profiler.stop")) as { profile: CpuProfile }).profile,
  };
}

/** Prints the functions with the most self time per step, and their callers' totals. */
function printJsProfile(profile: CpuProfile, steps: number): void {
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  const byFunction = new Map<string, number>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.replace(/^.*\/(node_modules|npm|wt-js)\//, "");
    const key = `${functionName || "(anonymous)"} ${where}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + (self.get(node.id) ?? 0));
  }
  console.log("  JavaScript self time per step (V8 sampling profiler):");
  for (const [key, ms] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    console.log(`    ${(ms / steps).toFixed(1).padStart(7)} ms  ${key}`);
  }
}

function snapshot(times: CallTimes): CallTimes {
  return new Map([...times].map(([k, v]) => [k, { ...v }]));
}

/** Per-step averages of `after - before`, largest first, with the step's time split. */
function report(
  label: string,
  before: CallTimes,
  after: CallTimes,
  spent: { wall: number; cpu: number; main: number },
  steps: number,
): void {
  const rows = [...after].map(([name, v]) => {
    const b = before.get(name) ?? { ms: 0, cpu: 0, calls: 0 };
    return {
      name,
      ms: (v.ms - b.ms) / steps,
      cpu: (v.cpu - b.cpu) / steps,
      calls: (v.calls - b.calls) / steps,
    };
  }).filter((r) => r.calls > 0).sort((a, b) => b.cpu - a.cpu);
  const gpu = rows.filter((r) => r.name.startsWith("GPU"));
  const sum = (f: (r: (typeof rows)[number]) => number) => gpu.reduce((s, r) => s + f(r), 0);
  console.log(
    `${label}: per step wall ${(spent.wall / steps).toFixed(0)} ms; CPU: main thread ${
      (spent.main / steps).toFixed(0)
    } ms${
      gpu.length ? ` (of it in WebGPU calls ${sum((r) => r.cpu).toFixed(0)})` : ""
    }, all threads ${(spent.cpu / steps).toFixed(0)} ms`,
  );
  if (rows.length === 0) return;
  console.log(`  ${"call".padEnd(40)} ${"CPU ms".padStart(8)} ${"wall ms".padStart(8)}  calls`);
  for (const r of rows) {
    console.log(
      `  ${r.name.padEnd(40)} ${r.cpu.toFixed(1).padStart(8)} ${r.ms.toFixed(1).padStart(8)}  ${
        String(Math.round(r.calls)).padStart(5)
      }`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "64" },
      batch: { type: "string", default: "16" },
      steps: { type: "string", default: "3" },
      kernels: { type: "string", default: "auto" },
      "submit-batch": { type: "string" },
      "js-profile": { type: "boolean", default: false },
      calls: { type: "boolean", default: false },
      ab: { type: "string" },
      "ab-submit-batch": { type: "string" },
    },
  });
  const size = Number(values.size), batch = Number(values.batch), steps = Number(values.steps);
  // --calls: time each WebGPU call and kernel (the wrappers cost ~10–20% more main-thread CPU).
  const times = values.calls ? wrapWebGpu() : new Map();
  console.log(
    describeAdapter(
      await setupBackend({
        backend: "webgpu",
        env: Deno.env,
        kernels: values.kernels as "auto" | "fast" | "stock",
      }),
    ),
  );
  if (values["submit-batch"]) {
    tf.env().set("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE", Number(values["submit-batch"]));
  }
  const backend = tf.backend();
  if (values.calls) {
    for (const m of BACKEND_METHODS) wrap(times, backend, m, `backend.${m}`);
    const engine = tf.engine();
    wrap(times, engine, "runKernel", "engine.runKernel (incl. nested)");
    wrapKernelsBySelfTime(times, engine);
  }
  const { model, sgd, device } = setupStep("resnet18", size, batch);
  const infer = () => evalForward(model, device.x);
  await trainStep(model, device, sgd);
  await infer();
  if (values.kernels === "auto") await tunePendingKernels({ budgetMs: 60_000 });
  await trainStep(model, device, sgd);
  await infer();

  if (values.ab) {
    const submitBatch = values["ab-submit-batch"] ? Number(values["ab-submit-batch"]) : undefined;
    await compareCaching(
      Number(values.ab),
      steps,
      () => trainStep(model, device, sgd),
      infer,
      submitBatch,
    );
    return;
  }
  const timed = async (label: string, f: () => Promise<unknown>) => {
    const before = snapshot(times);
    const copies0 = operandCopyCount(), kept0 = keptTextureHits();
    const t0 = { wall: performance.now(), cpu: cpuMs(), main: threadCpuMs() };
    for (let i = 0; i < steps; i++) await f();
    const spent = {
      wall: performance.now() - t0.wall,
      cpu: cpuMs() - t0.cpu,
      main: threadCpuMs() - t0.main,
    };
    report(label, before, times, spent, steps);
    console.log(
      `  operand texture copies per step: ${
        ((operandCopyCount() - copies0) / steps).toFixed(0)
      }; filter copies saved by kept textures: ${((keptTextureHits() - kept0) / steps).toFixed(0)}`,
    );
  };
  const stats0 = dispatchCacheStats(backend as WebGPUBackend);
  const profiler = values["js-profile"] ? await startJsProfile() : undefined;
  await timed("train", () => trainStep(model, device, sgd));
  if (profiler) printJsProfile(await profiler.stop(), steps);
  const stats1 = dispatchCacheStats(backend as WebGPUBackend);
  const perStep = (key: keyof typeof stats1) => ((stats1[key] - stats0[key]) / steps).toFixed(0);
  console.log(
    `  dispatch caches per step: bind groups ${perStep("bindGroupHits")} hits, ${
      perStep("bindGroupMisses")
    } misses; uniform buffers ${perStep("uniformHits")} hits, ${
      perStep("uniformMisses")
    } misses; cleared ${stats1.clears - stats0.clears} times`,
  );
  await infer();
  await timed("infer", infer);
  disposeBatch(device);
  sgd.dispose();
  model.dispose();
}

/**
 * `--ab ROUNDS`: the training and inference steps with the dispatch caches off and on
 * (core/kernels/dispatch_cache.ts), alternated `rounds` times in this process; prints each
 * variant's median main-thread CPU, all-threads CPU and wall time per step.
 */
async function compareCaching(
  rounds: number,
  steps: number,
  train: () => Promise<unknown>,
  infer: () => Promise<unknown>,
  submitBatch?: number,
): Promise<void> {
  const batch = tf.env().get("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE") as number;
  // With --ab-submit-batch N also "on, N": the caches on and N dispatches per submit.
  // "none": tfjs's per-dispatch work and every filter copied (before this round's changes);
  // "caches": the dispatch caches; "caches+kept": also kept filter textures (as shipped).
  const variants = [
    "none",
    "caches",
    "caches+kept",
    ...(submitBatch ? [`caches+kept, ${submitBatch}`] : []),
  ];
  const keptBound = setMaxKeptTextureBytes(0);
  const results = new Map<string, { main: number[]; cpu: number[]; wall: number[] }>();
  for (let round = 0; round < rounds; round++) {
    for (const variant of variants) {
      setDispatchCaching(variant !== "none");
      setMaxKeptTextureBytes(variant.startsWith("caches+kept") ? keptBound : 0);
      tf.env().set(
        "WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE",
        variant.includes(", ") ? submitBatch! : batch,
      );
      for (const [label, f] of [["train", train], ["infer", infer]] as const) {
        await f(); // the first step after a switch settles the buffer pool
        const t0 = { wall: performance.now(), cpu: cpuMs(), main: threadCpuMs() };
        for (let i = 0; i < steps; i++) await f();
        const key = `${label} ${variant}`;
        let r = results.get(key);
        if (!r) results.set(key, r = { main: [], cpu: [], wall: [] });
        r.main.push((threadCpuMs() - t0.main) / steps);
        r.cpu.push((cpuMs() - t0.cpu) / steps);
        r.wall.push((performance.now() - t0.wall) / steps);
      }
    }
  }
  setDispatchCaching(true);
  setMaxKeptTextureBytes(keptBound);
  tf.env().set("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE", batch);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const [key, r] of [...results].sort()) {
    console.log(
      `${key.padEnd(24)} per step, median of ${rounds}: main thread CPU ${
        median(r.main).toFixed(1)
      } ms, all threads CPU ${median(r.cpu).toFixed(0)} ms, wall ${
        median(r.wall).toFixed(0)
      } ms (main: ${r.main.map((x) => x.toFixed(0)).join(" ")})`,
    );
  }
}

if (import.meta.main) await main();
