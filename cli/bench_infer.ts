/**
 * The `eval` forward's folded convs (`WebtuneConv2DBiasAct`: conv + bias (+ residual) (+ ReLU),
 * models/conv_bn.ts) of ResNet-18, each call shape with its epilogue, timed per candidate kernel
 * interleaved in one process: the numbers behind the inference path's kernel choices.
 *
 * ```sh
 * deno run -A cli/bench_infer.ts --size 224 --cpu        # every call shape, CPU time
 * deno run -A cli/bench_infer.ts --size 64 --only layer1 # only the shapes whose name has "layer1"
 * ```
 *
 * Candidates: `texture` (the direct kernel, conv2d.ts), `winograd` (conv2d_winograd.ts, the
 * filter transform made per call, on every 3×3 stride-1 shape, also those `auto` is not offered),
 * `winograd-u` (F(2×2) with the transform made once: `conv2DWinogradTransformed`) and
 * `winograd4-u` (F(4×4, 3×3) with the transform made once, as a fold keeps it and the
 * `winograd` variant runs it in an `eval` forward: conv2d_winograd4.ts).
 *
 * Timing as in cli/bench_dx.ts: (1 + `--calls` calls, then a readback) minus (1 call, then a
 * readback), divided by `--calls`; rounds alternate the candidates and each keeps its minimum,
 * and the median over rounds of its ratio to the first candidate in the same round (steadier on
 * a shared machine). `--cpu` reads the CPU time of all the process's threads (llvmpipe's
 * included). Every candidate's output is also compared with the direct `texture` kernel's
 * (`diff`: largest |difference| over the largest |output|). The last line weighs each shape by
 * how often an `eval` forward calls it.
 *
 * Measured on the shared 2-core machine (2026-11-29, CPU time, batch 16, loaded by other runs):
 * Winograd on layer1 (64 channels; the training path keeps it off for a gradient's sake) did not
 * win in an `eval` forward either (medians 0.67–1.15× at 224 px, 0.91–0.97× at 64 px: at 64
 * channels its transforms cost as much as the GEMM saves), so it is not offered there.
 * F(4×4) (2026-11-30, same method) won where F(2×2) did and more: see `WINOGRAD4_MIN_TILES`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { parseArgs } from "node:util";
import { describeAdapter, setupBackend } from "@webtune/core";
import {
  conv2DGemm,
  conv2DTextureTile,
  conv2DWinograd,
  conv2DWinograd4,
  conv2DWinogradSupports,
  conv2DWinogradTransformed,
  winograd4FilterTransform,
  winogradFilterTransform,
} from "@webtune/core/kernels";
import {
  benchClock,
  bestOfRounds,
  kernelBenchOptions,
  perCallRounds,
  timeKernelCalls,
} from "./bench_dx.ts";

/** One folded conv call of a ResNet-18 `eval` forward and how often the forward makes it. */
export interface FoldedCall {
  name: string;
  /** Input map height = width. */
  hw: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  residual: boolean;
  relu: boolean;
  count: number;
}

/** ResNet-18's folded conv calls for an `image`-pixel input, in forward order. */
export function resnet18FoldedCalls(image: number): FoldedCall[] {
  const calls: FoldedCall[] = [{
    name: "stem 7x7/2 3->64",
    hw: image,
    cin: 3,
    cout: 64,
    k: 7,
    stride: 2,
    residual: false,
    relu: true,
    count: 1,
  }];
  const block = (layer: number, hw: number, c: number, count: number) => {
    const base = { hw, cin: c, cout: c, k: 3, stride: 1, relu: true };
    calls.push(
      { ...base, name: `layer${layer} 3x3/1 ${c} relu`, residual: false, count },
      { ...base, name: `layer${layer} 3x3/1 ${c} +res relu`, residual: true, count: 2 },
    );
  };
  const h = image / 4;
  block(1, h, 64, 2);
  for (const [layer, c] of [[2, 128], [3, 256], [4, 512]]) {
    const hw = h / 2 ** (layer - 2);
    calls.push(
      {
        name: `layer${layer} 3x3/2 ${c / 2}->${c} relu`,
        hw,
        cin: c / 2,
        cout: c,
        k: 3,
        stride: 2,
        residual: false,
        relu: true,
        count: 1,
      },
      {
        name: `layer${layer} 1x1/2 ${c / 2}->${c}`,
        hw,
        cin: c / 2,
        cout: c,
        k: 1,
        stride: 2,
        residual: false,
        relu: false,
        count: 1,
      },
    );
    block(layer, hw / 2, c, 1);
  }
  return calls;
}

type Candidate = (
  x: tf.TensorInfo,
  w: tf.TensorInfo,
  bias: tf.TensorInfo,
  residual: tf.TensorInfo | undefined,
  relu: boolean,
  stride: number,
  pad: number,
) => tf.TensorInfo;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      ...kernelBenchOptions("224", "2"),
      only: { type: "string" },
    },
  });
  const n = Number(values.batch), calls = Number(values.calls), size = Number(values.size);
  const now = benchClock(values.cpu);
  console.log(describeAdapter(await setupBackend({ backend: "webgpu", env: Deno.env })));
  const backend = tf.backend() as WebGPUBackend;
  const attrs = (stride: number, pad: number) => ({
    strides: [stride, stride] as [number, number],
    pad,
    dataFormat: "NHWC" as const,
  });
  const candidates: Record<string, Candidate> = {
    texture: (x, w, bias, residual, relu, stride, pad) =>
      conv2DGemm(x, w, attrs(stride, pad), backend, conv2DTextureTile(w.shape[3]), true, {
        bias,
        residual,
        relu,
      }),
    winograd: (x, w, bias, residual, relu, stride, pad) =>
      conv2DWinograd(x, w, attrs(stride, pad), backend, undefined, true, {
        bias,
        residual,
        relu,
      }),
  };
  const us = new Map<tf.TensorInfo, tf.TensorInfo>();
  candidates["winograd-u"] = (x, w, bias, residual, relu, stride, pad) => {
    let u = us.get(w);
    if (!u) {
      u = winogradFilterTransform(w, backend);
      us.set(w, u);
    }
    return conv2DWinogradTransformed(x, u, attrs(stride, pad), backend, undefined, true, {
      bias,
      residual,
      relu,
    });
  };
  const u4s = new Map<tf.TensorInfo, tf.TensorInfo>();
  candidates["winograd4-u"] = (x, w, bias, residual, relu, stride, pad) => {
    let u = u4s.get(w);
    if (!u) {
      u = winograd4FilterTransform(w, backend);
      u4s.set(w, u);
    }
    return conv2DWinograd4(x, u, attrs(stride, pad), backend, undefined, true, {
      bias,
      residual,
      relu,
    });
  };
  const applies: Record<string, (c: FoldedCall, x: tf.TensorInfo, w: tf.TensorInfo) => boolean> = {
    texture: () => true,
    "winograd-u": (c, x, w) => conv2DWinogradSupports(x, w, attrs(c.stride, (c.k - 1) >> 1)),
    winograd: (c, x, w) => conv2DWinogradSupports(x, w, attrs(c.stride, (c.k - 1) >> 1)),
    "winograd4-u": (c, x, w) => conv2DWinogradSupports(x, w, attrs(c.stride, (c.k - 1) >> 1)),
  };
  const names = Object.keys(candidates);
  const totals = new Map<string, number>(names.map((name) => [name, 0]));
  const timeCalls = (f: () => tf.TensorInfo, times: number) =>
    timeKernelCalls(backend, now, f, times);
  const shapes = resnet18FoldedCalls(size).filter((c) =>
    !values.only || c.name.includes(values.only)
  );
  for (const c of shapes) {
    const pad = (c.k - 1) >> 1;
    const out = Math.floor((c.hw + 2 * pad - c.k) / c.stride) + 1;
    const x = tf.relu(tf.randomNormal([n, c.hw, c.hw, c.cin], 0, 1, "float32", 1));
    const w = tf.mul(
      tf.randomNormal([c.k, c.k, c.cin, c.cout], 0, 1, "float32", 2),
      Math.sqrt(2 / (c.k * c.k * c.cin)),
    );
    const bias = tf.randomNormal([c.cout], 0, 0.1, "float32", 3);
    const residual = c.residual
      ? tf.relu(tf.randomNormal([n, out, out, c.cout], 0, 1, "float32", 4))
      : undefined;
    const here = names.filter((name) => applies[name](c, x, w));
    const run = here.map((name) => () =>
      candidates[name](x, w, bias, residual, c.relu, c.stride, pad)
    );
    // Compile, warm up, and compare each output with the first candidate's.
    const outputs: Float32Array[] = [];
    for (const f of run) {
      const y = f();
      outputs.push(await backend.read(y.dataId) as Float32Array);
      backend.disposeData(y.dataId);
    }
    const largest = outputs[0].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const diffs = outputs.map((o) =>
      o.reduce((m, v, i) => Math.max(m, Math.abs(v - outputs[0][i])), 0) / largest
    );
    const perRound = await perCallRounds(run, timeCalls, calls, Number(values.rounds));
    const best = bestOfRounds(perRound, run.length);
    const ratios = run.map((_, i) => perRound.map((times) => times[0] / times[i]));
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
    here.forEach((name, i) => totals.set(name, totals.get(name)! + best[i] * c.count));
    for (const name of names) {
      if (!here.includes(name)) totals.set(name, totals.get(name)! + best[0] * c.count);
    }
    const cells = here.map((name, i) =>
      `${name} ${best[i].toFixed(1)} ms (${(best[0] / best[i]).toFixed(2)}×, median of rounds ` +
      `${median(ratios[i]).toFixed(2)}×` +
      `${i > 0 ? `, diff ${diffs[i].toExponential(1)}` : ""})`
    );
    console.log(
      `${size}px ${c.name} [${n},${c.hw},${c.hw},${c.cin}] ×${c.count}: ${cells.join(" | ")}`,
    );
    tf.dispose([x, w, bias, ...(residual ? [residual] : [])]);
  }
  const sums = names.map((name) => `${name} ${totals.get(name)!.toFixed(0)} ms`).join(" | ");
  console.log(
    `${size}px, an eval forward's folded convs (${values.cpu ? "CPU" : "wall"}; a candidate ` +
      `that does not apply counts as texture): ${sums}`,
  );
}

if (import.meta.main) await main();
