/**
 * `MESA_SHADER_CACHE_DISABLE=true deno run -A cli/bench_compile.ts [--rounds 3] [--only dX]
 * [--run]`: the code-generation cost of the conv families' candidate first-use tiles (dX's
 * dot-product kernel, strides baked in, and FMA kernel, strides in uniforms; the forward conv;
 * dW; tm × tc), interleaved in one process, in CPU
 * time of all the process's threads (steadier than wall time on a busy machine). The numbers
 * behind `FIRST_USE_VARIANT`'s tiles (variants.ts).
 *
 * llvmpipe compiles a pipeline's machine code at its first dispatch. Each round empties tfjs's
 * pipeline cache, then per candidate times a call on tiny inputs plus a readback twice: the
 * first includes the compile, the second does not, and their difference is the compile. Rounds
 * alternate the candidates (A, B, A, B, …) and each keeps its median. `--run` also times what
 * each tile costs in the step itself: one call per shape of a 64 px batch-16 ResNet-18 step
 * (as many as the step makes), compiled beforehand. A first step pays both.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { parseArgs } from "node:util";
import { describeAdapter, setupBackend } from "@webtune/core";
import {
  conv2DBackpropFilterGemm,
  conv2DBackpropInputFma,
  conv2DBackpropInputGemm,
  conv2DGemm,
} from "@webtune/core/kernels";
import { cpuMs, resnet18DxShapes, timeKernelCalls } from "./bench_dx.ts";

/** A named candidate: one call on tiny inputs. */
interface Candidate {
  name: string;
  run: () => tf.TensorInfo;
}

async function timed(backend: WebGPUBackend, f: () => tf.TensorInfo): Promise<number> {
  const t0 = cpuMs();
  const out = f();
  await backend.read(out.dataId);
  backend.disposeData(out.dataId);
  return cpuMs() - t0;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[s.length >> 1];
}

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    only: { type: "string", default: "" },
    run: { type: "boolean", default: false },
  },
});
console.log(describeAdapter(await setupBackend({ backend: "webgpu", env: Deno.env })));
const backend = tf.backend() as WebGPUBackend;
const n = 2, hw = 8, cin = 64, cout = 128;
const x = tf.randomNormal([n, hw, hw, cin]);
const w = tf.randomNormal([3, 3, cin, cout]);
const dy = tf.randomNormal([n, hw / 2, hw / 2, cout]);
const pad = [[0, 0], [1, 1], [1, 1], [0, 0]] as tf.backend_util.ExplicitPadding;
const convAttrs = { strides: [2, 2] as [number, number], pad, dataFormat: "NHWC" as const };
const dxAttrs = { ...convAttrs, inputShape: [n, hw, hw, cin] as [number, number, number, number] };
const dwAttrs = {
  ...convAttrs,
  filterShape: [3, 3, cin, cout] as [number, number, number, number],
};

const candidates: Candidate[] = [];
for (const [tm, tci] of [[8, 8], [4, 8], [8, 4], [4, 4], [2, 4], [1, 4]]) {
  candidates.push({
    name: `dX ${tm}x${tci}`,
    run: () => conv2DBackpropInputGemm(dy, w, dxAttrs, backend, { tm, tci }, true),
  });
}
for (const [tm, tc] of [[16, 2], [8, 2], [8, 1], [4, 2], [4, 1]]) {
  candidates.push({
    name: `dXfma ${tm}x${tc}`,
    run: () => conv2DBackpropInputFma(dy, w, dxAttrs, backend, { tm, tc }, true, true),
  });
}
for (const [tm, tc] of [[4, 2], [2, 2], [4, 1], [2, 1], [1, 1]]) {
  candidates.push({
    name: `forward ${tm}x${tc}`,
    run: () => conv2DGemm(x, w, convAttrs, backend, { tm, tc, generic: true }, true),
  });
}
for (const [tk, tc] of [[8, 2], [4, 2], [8, 1], [4, 1]]) {
  candidates.push({
    name: `dW ${tk}x${tc}`,
    run: () => conv2DBackpropFilterGemm(x, dy, dwAttrs, backend, { tk, tc, generic: true }, true),
  });
}
const chosen = candidates.filter((c) => c.name.startsWith(values.only));
const compile = new Map(chosen.map((c) => [c.name, [] as number[]]));
const pipelines = (backend as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache;
for (let round = 0; round < Number(values.rounds); round++) {
  for (const c of chosen) {
    for (const key of Object.keys(pipelines)) delete pipelines[key];
    const first = await timed(backend, c.run);
    const second = await timed(backend, c.run);
    compile.get(c.name)!.push(first - second);
  }
}
for (const c of chosen) {
  const v = compile.get(c.name)!;
  console.log(
    `${c.name.padEnd(16)} compile CPU median ${median(v).toFixed(0).padStart(5)} ms ` +
      `(${v.map((t) => t.toFixed(0)).join(", ")})`,
  );
}

if (values.run) {
  // Run time at a 64 px batch-16 step's shapes (each once, as a first step calls each shape),
  // compiled beforehand: what a smaller tile costs in the step itself.
  const shapes = resnet18DxShapes(64).map((c) => {
    const p = (c.k - 1) >> 1;
    const out = Math.floor((c.hw + 2 * p - c.k) / c.stride) + 1;
    const pad = [[0, 0], [p, p], [p, p], [0, 0]] as tf.backend_util.ExplicitPadding;
    const a = {
      strides: [c.stride, c.stride] as [number, number],
      pad,
      dataFormat: "NHWC" as const,
    };
    return {
      count: c.count,
      x: tf.randomNormal([16, c.hw, c.hw, c.cin]),
      w: tf.randomNormal([c.k, c.k, c.cin, c.cout]),
      dy: tf.randomNormal([16, out, out, c.cout]),
      conv: a,
      dx: { ...a, inputShape: [16, c.hw, c.hw, c.cin] as [number, number, number, number] },
      dw: { ...a, filterShape: [c.k, c.k, c.cin, c.cout] as [number, number, number, number] },
    };
  });
  const runs: Candidate[][] = [];
  for (const c of chosen) {
    const [family, t] = c.name.split(" ");
    const [a, b] = t.split("x").map(Number);
    runs.push(shapes.map((s) => ({
      name: c.name,
      run: family === "dXfma"
        ? () => conv2DBackpropInputFma(s.dy, s.w, s.dx, backend, { tm: a, tc: b }, true, true)
        : family === "dX"
        ? () => conv2DBackpropInputGemm(s.dy, s.w, s.dx, backend, { tm: a, tci: b }, true)
        : family === "forward"
        ? () => conv2DGemm(s.x, s.w, s.conv, backend, { tm: a, tc: b, generic: true }, true)
        : () =>
          conv2DBackpropFilterGemm(s.x, s.dy, s.dw, backend, { tk: a, tc: b, generic: true }, true),
    })));
  }
  for (const r of runs) for (const s of r) await timed(backend, s.run);
  const totals = runs.map(() => [] as number[]);
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [i, r] of runs.entries()) {
      let sum = 0;
      for (const [j, s] of r.entries()) {
        const one = await timeKernelCalls(backend, cpuMs, s.run, 1);
        const two = await timeKernelCalls(backend, cpuMs, s.run, 2);
        sum += (two - one) * shapes[j].count;
      }
      totals[i].push(sum);
    }
  }
  for (const [i, c] of chosen.entries()) {
    console.log(
      `${c.name.padEnd(16)} a step's calls, CPU median ${
        median(totals[i]).toFixed(0).padStart(5)
      } ms ` +
        `(${totals[i].map((t) => t.toFixed(0)).join(", ")})`,
    );
  }
}
