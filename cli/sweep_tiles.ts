/**
 * Sweeps the register tiles of webtune's three conv kernels on ResNet-18 shapes.
 *
 * ```sh
 * deno run -A cli/sweep_tiles.ts                 # batch 16, 64 px, all families, 3 runs
 * deno run -A cli/sweep_tiles.ts --runs 5 --family fwd --224
 * ```
 *
 * For each shape, every candidate tile is compiled and warmed up, then timed in interleaved
 * rounds (candidate A, B, C, A, B, C, ...) and each keeps its minimum: on a shared, noisy machine
 * only ratios measured this way, within one process, mean anything. Times are GPU time from
 * timestamp queries when the adapter has them, else wall time.
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
  const strides: [number, number] = [c.stride, c.stride];
  if (family === "fwd") {
    if (c.cout < 4 * tile.tc) return null;
    return () =>
      conv2DGemm(t.x, t.w, { strides, pad }, backend, tile as { tm: number; tc: number });
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
    );
}

async function timeOnce(f: () => tf.TensorInfo, backend: WebGPUBackend): Promise<number> {
  const t = await tf.time(() => {
    const out = f();
    backend.disposeData(out.dataId);
  });
  const kernelMs = typeof t.kernelMs === "number" ? t.kernelMs : 0;
  return kernelMs > 0 ? kernelMs : t.wallMs;
}

async function sweep(families: Family[], shapes: Shape[], runs: number): Promise<void> {
  const backend = tf.backend() as WebGPUBackend;
  for (const c of shapes) {
    const ho = Math.floor((c.hw + 2 * c.pad - c.k) / c.stride) + 1;
    const t = {
      x: tf.randomNormal([c.n, c.hw, c.hw, c.cin]),
      dy: tf.randomNormal([c.n, ho, ho, c.cout]),
      w: tf.randomNormal([c.k, c.k, c.cin, c.cout]),
    };
    for (const family of families) {
      const calls = CANDIDATES[family]
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
  await sweep(families, shapes, Number(values.runs));
}
