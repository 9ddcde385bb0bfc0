/**
 * Sweeps the register tiles of webtune's three conv kernels on ResNet-18 shapes.
 *
 * ```sh
 * deno run -A cli/sweep_tiles.ts                 # batch 16, 64 px, all families, 3 runs
 * deno run -A cli/sweep_tiles.ts --runs 5 --family fwd --224
 * deno run -A cli/sweep_tiles.ts --textures        # buffer vs texture operands (+ tiles)
 * deno run -A cli/sweep_tiles.ts --family dw --shape 'stem|layer1' \
 *   --tiles '[{"tk":32,"tc":2,"textures":1},{"tk":16,"tc":2,"tx":2,"textures":2}]'
 * ```
 *
 * `--compare` times the forward and dW kernels before and after read-only storage textures and
 * their texture tiles (dX: its texture tile, sampled, twice); `--step 64` sweeps every conv of one ResNet-18 step at 64 px (distinct shapes, with
 * their counts) and prints each candidate's total, count-weighted, per family.
 *
 * `--calls N` records N calls back to back before each wait (per-call time = total / N), which
 * spreads the ~12 ms fixed cost of a wait on llvmpipe as a training step's batched submits do.
 *
 * `--tiles` takes the candidates as JSON, the same for every shape: the family's tile fields
 * (fwd `tm`, `tc`; dw `tk`, `tc`, `tx`; dx `tm`, `tci`) and `textures` (absent: storage buffers,
 * 1: sampled textures, 2: read-only storage textures). `--shape` is a regular expression.
 *
 * Each candidate's output is checked against the first one's (relative error > 1e-5 prints
 * MISMATCH). Besides wall time each candidate prints its CPU-time ratio (user + system of the
 * whole process, all of llvmpipe's threads): less disturbed by other processes on the machine
 * than wall time, but it also counts the main thread waiting for the device.
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
import { cpuUsage } from "node:process";
import { describeAdapter, setupBackend } from "@webtune/core";
import {
  conv2DBackpropFilterGemm,
  conv2DBackpropInputGemm,
  conv2DGemm,
  conv2DTextureTile,
  conv2DTile,
  derFilterTextureTile,
  derFilterTile,
  derInputTile,
} from "@webtune/core/kernels";
import { resnet18Shapes } from "./bench_kernels.ts";

type Shape = ReturnType<typeof resnet18Shapes>[number] & { count?: number };

/**
 * Every conv of one ResNet-18 step at `hw` px, batch `n`, as distinct shapes with their counts
 * (for `--step`: the per-family time of a step's convs).
 */
function resnet18Step(n: number, hw: number): Shape[] {
  const [stem, layer1, l2s2, l2ds, l2, l3, l4] = resnet18Shapes(n, hw);
  const h = hw / 16;
  const s = (name: string, h: number, cin: number, cout: number, k: number, st: number) => ({
    name,
    n,
    hw: h,
    cin,
    cout,
    k,
    stride: st,
    pad: (k - 1) >> 1,
  });
  return [
    { ...stem, count: 1 },
    { ...layer1, count: 4 },
    { ...l2s2, count: 1 },
    { ...l2ds, count: 1 },
    { ...l2, count: 3 },
    { ...s("layer3 3x3/2 128->256", h * 2, 128, 256, 3, 2), count: 1 },
    { ...s("layer3 1x1/2 128->256", h * 2, 128, 256, 1, 2), count: 1 },
    { ...l3, count: 3 },
    { ...s("layer4 3x3/2 256->512", h, 256, 512, 3, 2), count: 1 },
    { ...s("layer4 1x1/2 256->512", h, 256, 512, 1, 2), count: 1 },
    { ...l4, count: 3 },
  ];
}

/**
 * `--compare`: before (sampled textures with the storage-buffer tiles, as the kernels were
 * before read-only storage textures) and after (the registered variant: its texture tile and
 * the fastest texture kind).
 */
function compareCandidates(family: Family, c: Shape): [string, Record<string, number>][] {
  const filter = [c.k, c.k, c.cin, c.cout];
  const [before, after]: Record<string, number>[] = family === "fwd"
    ? [fwdTile(conv2DTile(c.cout)), fwdTile(conv2DTextureTile(c.cout))]
    : family === "dw"
    ? [dwTile(derFilterTile(filter)), dwTile(derFilterTextureTile(filter))]
    : [{ ...derInputTile(c.cin, true) }, { ...derInputTile(c.cin, true) }];
  return [["before", { ...before, textures: 1 }], ["after", { ...after, textures: 2 }]];
}
type Family = "fwd" | "dw" | "dx";

/** A dW tile's sizes. */
function dwTile({ tk, tc, tx }: { tk: number; tc: number; tx?: number }): Record<string, number> {
  return tx === undefined ? { tk, tc } : { tk, tc, tx };
}

/** A forward tile's sizes (its position order left to the kernel's rule). */
function fwdTile({ tm, tc }: { tm: number; tc: number }): Record<string, number> {
  return { tm, tc };
}

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
 * `--textures`: each family's storage-buffer tile with storage-buffer operands (the baseline),
 * then its texture tile with sampled and with read-only storage textures (texture_operands.ts),
 * then storage textures with other tiles.
 */
function textureCandidates(family: Family, c: Shape): [string, Record<string, number>][] {
  const filter = [c.k, c.k, c.cin, c.cout];
  const [base, texture]: Record<string, number>[] = family === "fwd"
    ? [fwdTile(conv2DTile(c.cout)), fwdTile(conv2DTextureTile(c.cout))]
    : family === "dw"
    ? [dwTile(derFilterTile(filter)), dwTile(derFilterTextureTile(filter))]
    : [{ ...derInputTile(c.cin) }, { ...derInputTile(c.cin, true) }];
  const others: Record<Family, number[][]> = {
    fwd: [[16, 2], [8, 4], [4, 4]],
    dw: [[8, 2], [16, 4], [8, 4]],
    dx: [[16, 8], [16, 16], [8, 16]],
  };
  const keys = ["tm", "tk", "tc", "tci", "tx"].filter((k) => k in base || k in texture);
  const named = (t: Record<string, number>) =>
    keys.filter((k) => k in t).map((k) => `${k}${t[k]}`).join(" ");
  const [k0, k1] = keys;
  return [
    [`buffers ${named(base)}`, base],
    [`sampled ${named(texture)}`, { ...texture, textures: 1 }],
    [`storage ${named(texture)}`, { ...texture, textures: 2 }],
    ...others[family].map(([a, b]): [string, Record<string, number>] => {
      const t = { [k0]: a, [k1]: b, textures: 2 };
      return [`storage ${named(t)}`, t];
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
  // `textures`: 1 sampled, 2 read-only storage textures (texture_operands.ts), else buffers.
  const textures = tile.textures === 2 ? "storage" : tile.textures === 1 ? "sampled" : false;
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
      textures !== false,
    );
}

/** Records `f`, submits it and waits until the device has finished it: wall milliseconds. */
async function timeOnce(
  f: () => tf.TensorInfo,
  backend: WebGPUBackend,
  calls = 1,
): Promise<[number, number]> {
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
  const c0 = cpuUsage();
  const t0 = performance.now();
  const outs: tf.TensorInfo[] = [];
  for (let i = 0; i < calls; i++) outs.push(f());
  await flush();
  const ms = (performance.now() - t0) / calls;
  const c1 = cpuUsage();
  for (const out of outs) backend.disposeData(out.dataId);
  return [ms, (c1.user + c1.system - c0.user - c0.system) / 1000 / calls];
}

async function sweep(
  families: Family[],
  shapes: Shape[],
  runs: number,
  textures: boolean,
  tiles?: Record<string, number>[],
  compare = false,
  callsPerRun = 1,
): Promise<void> {
  const backend = tf.backend() as WebGPUBackend;
  /** Per family and candidate label: Σ count × best ms (wall, cpu) over the shapes. */
  const totals = new Map<string, [number, number]>();
  for (const c of shapes) {
    const ho = Math.floor((c.hw + 2 * c.pad - c.k) / c.stride) + 1;
    const t = {
      x: tf.randomNormal([c.n, c.hw, c.hw, c.cin]),
      dy: tf.randomNormal([c.n, ho, ho, c.cout]),
      w: tf.randomNormal([c.k, c.k, c.cin, c.cout]),
    };
    for (const family of families) {
      const candidates = tiles
        ? tiles.map((t): [string, Record<string, number>] => [
          Object.entries(t).map(([k, v]) => `${k}${v}`).join(" "),
          t,
        ])
        : compare
        ? compareCandidates(family, c)
        : textures
        ? textureCandidates(family, c)
        : CANDIDATES[family];
      const calls = candidates
        .map(([label, tile]) => [label, kernelCall(family, c, tile, t, backend)] as const)
        .filter((e): e is readonly [string, () => tf.TensorInfo] => e[1] !== null);
      if (calls.length === 0) continue;
      const best = calls.map(() => Infinity);
      const bestCpu = calls.map(() => Infinity);
      // Compile, warm up, and check every candidate against the first.
      let want: Float32Array | null = null;
      const errs: number[] = [];
      for (const [, f] of calls) {
        const out = f();
        const got = await backend.read(out.dataId) as Float32Array;
        backend.disposeData(out.dataId);
        want ??= got;
        let e = 0, scale = 0;
        for (let i = 0; i < got.length; i++) {
          e = Math.max(e, Math.abs(got[i] - want[i]));
          scale = Math.max(scale, Math.abs(want[i]));
        }
        errs.push(e / scale);
      }
      for (let r = 0; r < runs; r++) {
        for (let i = 0; i < calls.length; i++) {
          const [ms, cpu] = await timeOnce(calls[i][1], backend, callsPerRun);
          best[i] = Math.min(best[i], ms);
          bestCpu[i] = Math.min(bestCpu[i], cpu);
        }
      }
      const base = best[0];
      const cells = calls.map(([label], i) =>
        `${label} ${best[i].toFixed(1)}ms (${(base / best[i]).toFixed(2)}x, cpu ${
          (bestCpu[0] / bestCpu[i]).toFixed(2)
        }x)` +
        (errs[i] > 1e-5 ? ` MISMATCH ${errs[i].toExponential(1)}` : "")
      );
      const count = c.count ? ` ×${c.count}` : "";
      console.log(
        `${family.padEnd(3)} ${c.name} n${c.n} ${c.hw}px${count}: ${cells.join(" | ")}`,
      );
      calls.forEach(([label], i) => {
        const key = `${family} ${label}`;
        const [ms, cpu] = totals.get(key) ?? [0, 0];
        totals.set(key, [ms + (c.count ?? 1) * best[i], cpu + (c.count ?? 1) * bestCpu[i]]);
      });
    }
    tf.dispose([t.x, t.dy, t.w]);
  }
  for (const [key, [ms, cpu]] of totals) {
    console.log(`total ${key}: ${ms.toFixed(0)} ms wall, ${cpu.toFixed(0)} ms cpu`);
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
      tiles: { type: "string" },
      compare: { type: "boolean", default: false },
      step: { type: "string" },
      calls: { type: "string", default: "1" },
    },
  });
  const families = (values.family ?? ["fwd", "dw", "dx"]) as Family[];
  for (const f of families) {
    if (!(f in CANDIDATES)) throw new Error(`sweep_tiles: unknown --family ${f} (fwd, dw, dx)`);
  }
  let shapes: Shape[] = values.step
    ? resnet18Step(16, Number(values.step))
    : resnet18Shapes(16, 64);
  if (values["224"]) shapes = shapes.concat(resnet18Shapes(16, 224).slice(0, 2));
  if (values.shape) shapes = shapes.filter((s) => new RegExp(values.shape!).test(s.name));
  console.log(describeAdapter(await setupBackend({ backend: "webgpu", env: Deno.env })));
  const tiles = values.tiles ? JSON.parse(values.tiles) as Record<string, number>[] : undefined;
  await sweep(
    families,
    shapes,
    Number(values.runs),
    values.textures,
    tiles,
    values.compare,
    Number(values.calls),
  );
}
