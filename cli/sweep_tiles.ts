/**
 * Sweeps the register tiles of webtune's three conv kernels on ResNet-18 shapes.
 *
 * ```sh
 * deno run -A cli/sweep_tiles.ts                 # batch 16, 64 px, all families, 3 runs
 * deno run -A cli/sweep_tiles.ts --runs 5 --family fwd --224
 * deno run -A cli/sweep_tiles.ts --textures        # buffer vs texture operands (+ tiles)
 * ```
 *
 * For each shape, every candidate tile is compiled and warmed up, then timed in interleaved
 * rounds (candidate A, B, C, A, B, C, ...) and each keeps its minimum: on a shared, noisy machine
 * only ratios measured this way, within one process, mean anything. Times are wall time from
 * recording to the device's completion (`onSubmittedWorkDone`): tfjs's `tf.time` does not
 * wait for the device when the adapter lacks timestamp queries (llvmpipe), so it is not used.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { parseArgs } from "node:util";
import { describeAdapter, setupBackend } from "@webtune/core";
import {
  conv2DBackpropFilterGemm,
  conv2DBackpropInputGemm,
  conv2DGemm,
  conv2DTile,
  derFilterTile,
  derInputTile,
} from "@webtune/core/kernels";
import { resnet18Shapes } from "./bench_kernels.ts";

type Shape = ReturnType<typeof resnet18Shapes>[number];
type Family = "fwd" | "dw" | "dx";

/**
 * Candidate tiles per family: [label, tile]; the first is the ratios' baseline. These are the
 * last sweep's (around the chosen tiles); earlier sweeps' results are in the kernels' docs.
 */
const CANDIDATES: Record<Family, [string, Record<string, number>][]> = {
  fwd: [
    [16, 2],
    [32, 2],
    [16, 4],
    [24, 4],
    [32, 4],
  ].map(([tm, tc]) => [`tm${tm} tc${tc}`, { tm, tc }]),
  dw: [
    [32, 2],
    [64, 2],
    [32, 4],
    [64, 4],
    [32, 8],
  ].map(([tk, tc]) => [`tk${tk} tc${tc}`, { tk, tc }]),
  dx: [
    [16, 8],
    [32, 8],
    [16, 16],
    [24, 16],
    [32, 16],
    [16, 32],
  ].map(([tm, tci]) => [`tm${tm} tci${tci}`, { tm, tci }]),
};

/**
 * `--textures`: each family's default tile with storage-buffer operands (the baseline), then
 * with texture operands (texture_operands.ts), then texture operands with other tiles.
 */
function textureCandidates(family: Family, c: Shape): [string, Record<string, number>][] {
  const base: Record<string, number> = family === "fwd"
    ? { ...conv2DTile(c.cout) }
    : family === "dw"
    ? { ...derFilterTile([c.k, c.k, c.cin, c.cout]) }
    : { ...derInputTile(c.cin) };
  const others: Record<Family, number[][]> = {
    fwd: [[16, 2], [16, 4], [8, 4]],
    dw: [[16, 2], [32, 4], [16, 4]],
    dx: [[16, 8], [16, 16], [8, 16]],
  };
  const keys = Object.keys(base);
  const named = (t: Record<string, number>) => keys.map((k) => `${k}${t[k]}`).join(" ");
  return [
    [`buffers ${named(base)}`, base],
    [`textures ${named(base)}`, { ...base, textures: 1 }],
    ...others[family].map(([a, b]): [string, Record<string, number>] => {
      const t = { [keys[0]]: a, [keys[1]]: b, textures: 1 };
      return [`textures ${named(t)}`, t];
    }),
  ];
}

function explicitPad(c: Shape): tf.backend_util.ExplicitPadding {
  return [[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]];
}

/** The kernel call of `family` on shape `c` with `tile`, or null if the tile does not apply. */
function kernelCall(
  family: Family,
  c: Shape,
  tile: Record<string, number>,
  t: { x: tf.Tensor; dy: tf.Tensor; w: tf.Tensor },
  backend: WebGPUBackend,
): (() => tf.TensorInfo) | null {
  const pad = explicitPad(c);
  // Candidates with `textures: 1` read their operands from textures (texture_operands.ts).
  const textures = tile.textures === 1;
  const strides: [number, number] = [c.stride, c.stride];
  if (family === "fwd") {
    if (c.cout < 4 * tile.tc) return null;
    return () =>
      conv2DGemm(
        t.x,
        t.w,
        { strides, pad },
        backend,
        tile as { tm: number; tc: number },
        textures,
      );
  }
  if (family === "dw") {
    if (c.cout < 4 * tile.tc) return null;
    const filterShape: [number, number, number, number] = [c.k, c.k, c.cin, c.cout];
    return () =>
      conv2DBackpropFilterGemm(
        t.x,
        t.dy,
        { strides, pad, dataFormat: "NHWC", filterShape },
        backend,
        tile as { tk: number; tc: number },
        textures,
      );
  }
  // dX of the stem is never needed in training (the image needs no gradient).
  if (c.cin % 4 !== 0 || c.cin % tile.tci !== 0) return null;
  return () =>
    conv2DBackpropInputGemm(
      t.dy,
      t.w,
      { strides, pad, dataFormat: "NHWC", inputShape: [c.n, c.hw, c.hw, c.cin] },
      backend,
      tile as { tm: number; tci: number },
      textures,
    );
}

/** Records `f`, submits it and waits until the device has finished it: wall milliseconds. */
async function timeOnce(f: () => tf.TensorInfo, backend: WebGPUBackend): Promise<number> {
  const be = backend as unknown as {
    device: GPUDevice;
    commandEncoder: GPUCommandEncoder | null;
    endComputePassEncoder(): void;
    submitQueue(): void;
  };
  const flush = async () => {
    if (be.commandEncoder) {
      be.endComputePassEncoder();
      be.submitQueue();
    }
    await be.device.queue.onSubmittedWorkDone();
  };
  await flush(); // earlier work must not count
  const t0 = performance.now();
  const out = f();
  await flush();
  const ms = performance.now() - t0;
  backend.disposeData(out.dataId);
  return ms;
}

async function sweep(
  families: Family[],
  shapes: Shape[],
  runs: number,
  textures: boolean,
): Promise<void> {
  const backend = tf.backend() as WebGPUBackend;
  for (const c of shapes) {
    const ho = Math.floor((c.hw + 2 * c.pad - c.k) / c.stride) + 1;
    const t = {
      x: tf.randomNormal([c.n, c.hw, c.hw, c.cin]),
      dy: tf.randomNormal([c.n, ho, ho, c.cout]),
      w: tf.randomNormal([c.k, c.k, c.cin, c.cout]),
    };
    for (const family of families) {
      const candidates = textures ? textureCandidates(family, c) : CANDIDATES[family];
      const calls = candidates
        .map(([label, tile]) => [label, kernelCall(family, c, tile, t, backend)] as const)
        .filter((e): e is readonly [string, () => tf.TensorInfo] => e[1] !== null);
      if (calls.length === 0) continue;
      const best = calls.map(() => Infinity);
      for (const [, f] of calls) await timeOnce(f, backend); // compile + warm up
      for (let r = 0; r < runs; r++) {
        for (let i = 0; i < calls.length; i++) {
          best[i] = Math.min(best[i], await timeOnce(calls[i][1], backend));
        }
      }
      const base = best[0];
      const cells = calls.map(([label], i) =>
        `${label} ${best[i].toFixed(1)}ms (${(base / best[i]).toFixed(2)}x)`
      );
      console.log(`${family.padEnd(3)} ${c.name} n${c.n} ${c.hw}px: ${cells.join(" | ")}`);
    }
    tf.dispose([t.x, t.dy, t.w]);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "3" },
      family: { type: "string", multiple: true },
      "224": { type: "boolean", default: false },
      shape: { type: "string" },
      textures: { type: "boolean", default: false },
    },
  });
  const families = (values.family ?? ["fwd", "dw", "dx"]) as Family[];
  for (const f of families) {
    if (!(f in CANDIDATES)) throw new Error(`sweep_tiles: unknown --family ${f} (fwd, dw, dx)`);
  }
  let shapes = resnet18Shapes(16, 64);
  if (values["224"]) shapes = shapes.concat(resnet18Shapes(16, 224).slice(0, 2));
  if (values.shape) shapes = shapes.filter((s) => s.name.includes(values.shape!));
  console.log(describeAdapter(await setupBackend({ backend: "webgpu", env: Deno.env })));
  await sweep(families, shapes, Number(values.runs), values.textures);
}
