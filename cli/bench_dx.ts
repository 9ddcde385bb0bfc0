/**
 * The dX (`Conv2DBackpropInput`) kernel variants on every dX call of a ResNet-18 training step,
 * timed interleaved in one process: the numbers behind conv2d_backprop_input_fma.ts.
 *
 * ```sh
 * deno run -A cli/bench_dx.ts                    # 64 px, batch 16, dot-product vs FMA kernel
 *                                                # (sampled and, where WGSL allows, storage textures)
 * deno run -A cli/bench_dx.ts --size 224 --only layer1 --rounds 2
 * deno run -A cli/bench_dx.ts --tiles 32x2,32x4  # also the FMA kernel with these tiles (tm x tc)
 * deno run -A cli/bench_dx.ts --cpu              # CPU time of the process instead of wall time
 * ```
 *
 * Each candidate's time per call is (1 + `--calls` calls, then a readback) minus (1 call, then a
 * readback), divided by `--calls`: the readback's fixed cost (~12 ms on llvmpipe) cancels. Rounds
 * run the candidates in turn (A, B, A, B, …) and each keeps its minimum, so on a shared machine
 * their ratios mean more than their times. `--cpu` reads the CPU time of all the process's
 * threads (Linux `/proc/self/task/*\/schedstat`; llvmpipe runs the shaders on its own threads in
 * the process): less disturbed by other processes than wall time. The last line weighs each
 * shape by how often a step calls it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { parseArgs } from "node:util";
import { describeAdapter, setupBackend } from "@webtune/core";
import {
  conv2DBackpropInputFma,
  conv2DBackpropInputGemm,
  derInputTile,
} from "@webtune/core/kernels";

/** One dX call of a ResNet-18 step (NHWC) and how often the step makes it. */
interface DxShape {
  name: string;
  hw: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  count: number;
}

/** ResNet-18's dX calls for an `image`-pixel input (the stem's dX is never computed). */
export function resnet18DxShapes(image: number): DxShape[] {
  const s = (name: string, hw: number, cin: number, cout: number, k: number, stride: number) => ({
    name,
    hw,
    cin,
    cout,
    k,
    stride,
    count: k === 1 || cin !== cout ? 1 : name.startsWith("layer1") ? 4 : 3,
  });
  const h = image / 4;
  return [
    s("layer1 3x3/1 64", h, 64, 64, 3, 1),
    s("layer2 3x3/2 64->128", h, 64, 128, 3, 2),
    s("layer2 1x1/2 64->128", h, 64, 128, 1, 2),
    s("layer2 3x3/1 128", h / 2, 128, 128, 3, 1),
    s("layer3 3x3/2 128->256", h / 2, 128, 256, 3, 2),
    s("layer3 1x1/2 128->256", h / 2, 128, 256, 1, 2),
    s("layer3 3x3/1 256", h / 4, 256, 256, 3, 1),
    s("layer4 3x3/2 256->512", h / 4, 256, 512, 3, 2),
    s("layer4 1x1/2 256->512", h / 4, 256, 512, 1, 2),
    s("layer4 3x3/1 512", h / 8, 512, 512, 3, 1),
  ];
}

/** Milliseconds of CPU time of all this process's threads so far. */
export function cpuMs(): number {
  let ns = 0;
  for (const entry of Deno.readDirSync("/proc/self/task")) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/self/task/${entry.name}/schedstat`).split(" ")[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ns / 1e6;
}

/**
 * Time of `times` back-to-back calls of `f` plus a readback of the last output, by `now` (ms of
 * wall or CPU time); each call's output but the last is disposed as the next one starts.
 * Callers subtract a 1-call run from a (1 + k)-call run, so the readback's fixed wait cancels.
 */
export async function timeKernelCalls(
  backend: WebGPUBackend,
  now: () => number,
  f: () => tf.TensorInfo,
  times: number,
): Promise<number> {
  const t0 = now();
  let last: tf.TensorInfo | null = null;
  for (let i = 0; i < times; i++) {
    if (last) backend.disposeData(last.dataId);
    last = f();
  }
  await backend.read(last!.dataId);
  backend.disposeData(last!.dataId);
  return now() - t0;
}

/**
 * The options of the benches that time kernel calls ({@linkcode perCallRounds}): `--size` (image
 * pixels), `--batch`, `--rounds`, `--calls` (per timed run) and `--cpu` (see
 * {@linkcode benchClock}), with this bench's defaults for `size` and `calls`.
 *
 * @example
 * ```ts ignore
 * parseArgs({ args: Deno.args, options: { ...kernelBenchOptions("64", "3"), only: { type: "string" } } });
 * ```
 */
export function kernelBenchOptions(size: string, calls: string) {
  return {
    size: { type: "string", default: size },
    batch: { type: "string", default: "16" },
    rounds: { type: "string", default: "3" },
    calls: { type: "string", default: calls },
    cpu: { type: "boolean", default: false },
  } as const;
}

/** The clock of `--cpu`: {@linkcode cpuMs} where `cpu`, else wall time (ms). */
export function benchClock(cpu: boolean): () => number {
  return cpu ? cpuMs : () => performance.now();
}

/**
 * Each candidate's time per call in each of `rounds` rounds: `time(candidate, 1 + calls)` minus
 * `time(candidate, 1)` (the readback's fixed wait cancels), ÷ `calls`, at least 0. The candidates
 * run in turn within a round (A, B, A, B, …), so their ratios share the machine's load.
 *
 * @returns per round, per candidate (ms).
 */
export async function perCallRounds<C>(
  candidates: readonly C[],
  time: (candidate: C, times: number) => Promise<number>,
  calls: number,
  rounds: number,
): Promise<number[][]> {
  const perRound: number[][] = [];
  for (let round = 0; round < rounds; round++) {
    const times: number[] = [];
    for (const c of candidates) {
      const one = await time(c, 1);
      const more = await time(c, 1 + calls);
      times.push(Math.max(0, more - one) / calls);
    }
    perRound.push(times);
  }
  return perRound;
}

/** Each candidate's best (least) time over {@linkcode perCallRounds}'s rounds. */
export function bestOfRounds(perRound: readonly number[][], count: number): number[] {
  const best = new Array<number>(count).fill(Infinity);
  for (const times of perRound) times.forEach((t, i) => best[i] = Math.min(best[i], t));
  return best;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      ...kernelBenchOptions("64", "3"),
      tiles: { type: "string", default: "" },
      only: { type: "string" },
    },
  });
  const n = Number(values.batch), calls = Number(values.calls);
  const now = benchClock(values.cpu);
  console.log(describeAdapter(await setupBackend({ backend: "webgpu", env: Deno.env })));
  const backend = tf.backend() as WebGPUBackend;
  const timeCalls = (f: () => tf.TensorInfo, times: number) =>
    timeKernelCalls(backend, now, f, times);
  const tiles = values.tiles ? values.tiles.split(",").map((t) => t.split("x").map(Number)) : [];
  const names = ["dot", "fma sampled", "fma", ...tiles.map(([tm, tc]) => `fma ${tm}x${tc}`)];
  const totals = names.map(() => 0);
  const shapes = resnet18DxShapes(Number(values.size))
    .filter((c) => !values.only || c.name.includes(values.only));
  for (const c of shapes) {
    const p = (c.k - 1) >> 1;
    const out = Math.floor((c.hw + 2 * p - c.k) / c.stride) + 1;
    const dy = tf.randomNormal([n, out, out, c.cout]);
    const w = tf.randomNormal([c.k, c.k, c.cin, c.cout]);
    const attrs = {
      strides: [c.stride, c.stride] as [number, number],
      pad: [[0, 0], [p, p], [p, p], [0, 0]] as tf.backend_util.ExplicitPadding,
      dataFormat: "NHWC" as const,
      inputShape: [n, c.hw, c.hw, c.cin] as [number, number, number, number],
    };
    const candidates = [
      () => conv2DBackpropInputGemm(dy, w, attrs, backend, derInputTile(c.cin, true), true),
      () => conv2DBackpropInputFma(dy, w, attrs, backend, undefined, "sampled"),
      () => conv2DBackpropInputFma(dy, w, attrs, backend),
      ...tiles.map(([tm, tc]) => () => conv2DBackpropInputFma(dy, w, attrs, backend, { tm, tc })),
    ];
    for (const f of candidates) await timeCalls(f, 1); // compile and warm up
    const best = bestOfRounds(
      await perCallRounds(candidates, timeCalls, calls, Number(values.rounds)),
      candidates.length,
    );
    best.forEach((ms, i) => totals[i] += ms * c.count);
    const gflop = 2 * n * out * out * c.k * c.k * c.cin * c.cout / 1e9;
    const cells = names.map((name, i) =>
      `${name} ${best[i].toFixed(1)} ms ${(gflop / best[i] * 1e3).toFixed(1)} GFLOP/s ` +
      `(${(best[0] / best[i]).toFixed(2)}×)`
    );
    console.log(`${c.name} ${c.hw}px n${n} ×${c.count}: ${cells.join(" | ")}`);
    tf.dispose([dy, w]);
  }
  const sums = names.map((name, i) => `${name} ${totals[i].toFixed(0)} ms`).join(" | ");
  console.log(`a step's dX (${values.cpu ? "CPU" : "wall"} time): ${sums}`);
}

if (import.meta.main) await main();
