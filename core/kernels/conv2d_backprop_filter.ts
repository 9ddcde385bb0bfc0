/**
 * A fast `Conv2DBackpropFilter` (dW) kernel for tfjs-backend-webgpu, NHWC only.
 *
 * Why hand-written WGSL: tfjs-webgpu 4.22's own kernel (`Conv2DDerFilterProgram`) is fully naive,
 * one thread per filter element looping over N·Ho·Wo scalars, and no flag selects anything
 * better. On Mesa's llvmpipe it ran at ~0.2 GFLOP/s here, which made dW the largest cost of a
 * ResNet-18 training step.
 *
 * This kernel computes dW as an implicit GEMM, dW[K, Cout] = Σ_m cols[m, K] · dy[m, Cout] with
 * K = kh·kw·Cin and m = (n, oy, ox), the im2col address math done in the loader:
 *
 * - **Register tiles, no shared memory.** llvmpipe runs 8 invocations as one SIMD group and
 *   turns every storage *or workgroup* load into a per-lane scalar loop, so shared-memory tiles
 *   only add loads and barriers. Instead each invocation keeps TK×(4·TC) accumulators and loads
 *   TK/4 + TC vec4s per m: the ratio of FMAs to loads is what sets the speed there.
 * - **No bounds checks in the inner loop.** When Cin is a multiple of TK, all TK rows of an
 *   invocation share one filter tap (r, c), so the padding only clips the (oy, ox) ranges, which
 *   are computed once per invocation ("direct" mode). Otherwise (the 3-channel stem) x is padded
 *   spatially and to a multiple of 4 channels first, so every tap is in bounds ("padded" mode).
 * - **Split-K over output rows** when the filter is small (the stem, 1×1 convs) so both CPU cores
 *   get work; the partial sums are added by a second small program.
 *
 * Anything else (NCHW, Cout not a multiple of 4, non-float32) falls back to the stock kernel.
 * Dilation is not an attr of this kernel: tfjs's conv2d gradient refuses dilation > 1.
 *
 * The registered variant reads x and dy from `rgba32float` textures (`textures`, see
 * texture_operands.ts; read-only storage textures where WGSL allows them), several times faster
 * on llvmpipe, with its own tiles ({@linkcode derFilterTextureTile}); the storage-buffer variant
 * remains for tensors too large for the device's textures (and as a candidate for other
 * adapters), with the tiles of {@linkcode derFilterTile}.
 *
 * llvmpipe ends every loop of an invocation after 65535 loop steps in all (see
 * {@linkcode LOOP_STEP_BUDGET}), so the split also bounds each invocation's steps.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { allOf, disposeAll, runKernel, uniformBlock, WebtuneProgram, WG } from "./kernel_util.ts";
import { operandRead, runWithOperands, type TextureKind, texturesFit } from "./texture_operands.ts";

/**
 * Register tile of one invocation: rows of K (a multiple of 4) × vec4 columns of Cout, and `tx`
 * output positions (along x) per step of the reduction loop (default 1).
 */
export interface DerFilterTile {
  tk: number;
  tc: number;
  tx?: number;
  /**
   * One pipeline for direct and padded calls: the mode comes from a uniform (the x offsets of
   * the tile's row groups are picked once per invocation), so a first step compiles one dW
   * pipeline instead of two (the stem's padded one and the others'). The same sums in the same
   * order as the specialised programs.
   */
  generic?: boolean;
  /**
   * Split the reduction as a tile of this many vec4 columns would (default `tc`; see
   * {@linkcode derFilterSplit}): the split sets which partial sums each output adds, so a tile
   * that splits as another one computes its numbers exactly.
   */
  splitTc?: number;
}

/**
 * The smallest tile we use (Cin a multiple of 8 but not 16, or a filter of fewer than 16 padded
 * rows); the support checks are made against it.
 */
export const DER_FILTER_TILE: DerFilterTile = { tk: 8, tc: 2 };

/**
 * The tile for a filter of `[kh, kw, cin, cout]`, measured with cli/sweep_tiles.ts (batch 16,
 * 64 px, ResNet-18 shapes, one process):
 * vs the former tiles (tk 8 for the stem, else tk 16; tc 2): stem { tk: 32, tc: 2 } 1.24×,
 * layer1 { tk: 32, tc: 2 } 1.10×, and with Cout ≥ 128 { tk: 32, tc: 4 }: layer2 3×3/2 1.74×,
 * 1×1/2 4.1×, 3×3/1 1.83×, layer3 1.69×, layer4 1.24× (tk 16 × tc 4 there: 1.45×). Smaller
 * tiles (tk 4–16 × tc 1) were 0.3–0.6× on the stem. Bigger still (tk 64, tc 8) was mixed
 * (0.5–1.3× vs these), so not used.
 * Bigger tiles win on llvmpipe although their accumulators spill: each storage load is a per-lane
 * gather there, so FMAs per load set the speed. Rows: as many as Cin allows while all rows share
 * one tap ("direct" mode); Cin not a multiple of 8 (the stem) pads x and takes up to 32 rows.
 * tc stays at 2 below Cout 128 so that all WG invocations of a workgroup get columns.
 *
 * @example
 * ```ts
 * derFilterTile([3, 3, 64, 64]); // { tk: 32, tc: 2 }
 * ```
 */
export function derFilterTile(filterShape: readonly number[]): DerFilterTile {
  const [kh, kw, cin, cout] = filterShape;
  const tc = cout >= 4 * 4 * WG ? 4 : 2;
  if (cin % 8 === 0) return { tk: cin % 32 === 0 ? 32 : cin % 16 === 0 ? 16 : 8, tc };
  const kRows = kh * kw * Math.ceil(cin / 4) * 4;
  return { tk: kRows >= 32 ? 32 : kRows >= 16 ? 16 : 8, tc };
}

/**
 * The tile of the texture variant for a filter of `[kh, kw, cin, cout]`: half the rows of the
 * storage-buffer tiles, and for Cout < 128 two positions per step. Measured with
 * cli/sweep_tiles.ts (batch 16, one process, read-only storage textures; ratios vs the
 * sampled-texture variant with the buffer tiles, wall-time minimum of 6–10 interleaved runs on
 * the shared 2-core machine, so ±15%):
 * Cout 64, { tk: 16, tc: 2, tx: 2 }: stem 2.23× (224 px 1.79×), layer1 2.03× (56 px 2.60×);
 * tx 1 1.6–2.6×, tk 32 × tx 2 1.2–1.8×, tk 8 × tx 2 1.6–2.2×.
 * Cout ≥ 128, { tk: 16, tc: 4 }: layer2 3×3/2 1.47×, 1×1/2 1.12×, 3×3/1 1.46×, layer3 2.53×,
 * layer4 1.41×; tk 8 × tc 4 1.1–1.6×, with tx 2 1.1–1.6×, tk 16 × tc 2 1.2–2.2×.
 * Rows stay one tap ("direct" mode) when Cin is a multiple of 16, else 8; Cin not a multiple of
 * 8 (the stem) pads x and takes 16 rows (8 for filters of fewer padded rows).
 *
 * @example
 * ```ts
 * derFilterTextureTile([3, 3, 64, 64]); // { tk: 16, tc: 2, tx: 2 }
 * ```
 */
export function derFilterTextureTile(filterShape: readonly number[]): DerFilterTile {
  const [kh, kw, cin, cout] = filterShape;
  const wide = cout >= 4 * 4 * WG;
  const tk = cin % 8 === 0
    ? (cin % 16 === 0 ? 16 : 8)
    : (kh * kw * Math.ceil(cin / 4) * 4 >= 16 ? 16 : 8);
  return wide ? { tk, tc: 4 } : { tk, tc: 2, tx: 2 };
}

/** Split the reduction until there are about this many workgroups (2 cores, some slack). */
const TARGET_WORKGROUPS = 32;
/** Never let the split partial sums grow past this many floats (64 MiB). */
const MAX_PARTIAL_FLOATS = 16 << 20;
/**
 * Loop steps one invocation may take. llvmpipe (gallivm's `LP_MAX_TGSI_LOOP_ITERATIONS`) gives
 * each shader invocation a budget of 65535 loop iterations, all loops together, and then ends
 * every loop: a longer reduction silently drops its tail. Seen here as a wrong stem dW at 224 px,
 * batch 16, with 16-row tiles (3 splits of 598 rows × 113 steps).
 */
export const LOOP_STEP_BUDGET = 65535;

/** How the N·Ho rows of output positions are split between workgroups (partial sums). */
export interface DerFilterSplit {
  splits: number;
  rowsPerSplit: number;
}

/**
 * The split of dW's reduction for a `[kRows, cout]` output over `totalRows` rows of `outW`
 * positions: enough splits for about {@linkcode TARGET_WORKGROUPS} workgroups and for each
 * invocation's loop steps (a row is `ceil(outW / tx)` steps plus one) to stay within
 * {@linkcode LOOP_STEP_BUDGET}, with at most 16 Mi floats of partial sums.
 *
 * @throws if the loop budget and the partial-sum cap cannot both hold (a single output row of
 *   ~65,000 positions).
 * @example
 * ```ts
 * // ResNet-18's stem at 224 px, batch 16, 16-row tiles: 13 tiles, 1792 rows of 112.
 * derFilterSplit(196, 64, { tk: 16, tc: 2 }, 1792, 112); // { splits: 4, rowsPerSplit: 448 }
 * ```
 */
export function derFilterSplit(
  kRows: number,
  cout: number,
  tile: DerFilterTile,
  totalRows: number,
  outW: number,
): DerFilterSplit {
  const baseWorkgroups = Math.ceil(cout / 4 / tile.tc / WG) * Math.ceil(kRows / tile.tk);
  // Each row is its steps plus one step of the row loop itself.
  const maxRows = Math.floor((LOOP_STEP_BUDGET - 1) / (Math.ceil(outW / (tile.tx ?? 1)) + 1));
  const needed = maxRows < 1 ? Infinity : Math.ceil(totalRows / maxRows);
  const maxSplits = Math.floor(MAX_PARTIAL_FLOATS / (kRows * cout));
  if (needed > maxSplits) {
    throw new Error(
      `Conv2DBackpropFilter: ${totalRows} rows of ${outW} output positions need more loop steps ` +
        `than llvmpipe allows per invocation (${LOOP_STEP_BUDGET}) within ${maxSplits} splits`,
    );
  }
  const wanted = Math.ceil(TARGET_WORKGROUPS / baseWorkgroups);
  const splits = Math.max(1, Math.min(Math.max(wanted, needed), totalRows, maxSplits));
  const rowsPerSplit = Math.ceil(totalRows / splits);
  return { splits: Math.ceil(totalRows / rowsPerSplit), rowsPerSplit };
}

const UNIFORMS = uniformBlock({
  kRows: "i32",
  cout4: "i32",
  cin4: "i32",
  kw: "i32",
  inH: "i32",
  inW: "i32",
  outH: "i32",
  outW: "i32",
  strides: "vec2<i32>",
  pads: "vec2<i32>",
  rowsPerSplit: "i32",
  totalRows: "i32",
  /** 1: direct mode (read by generic programs only; see DerFilterTile). */
  direct: "i32",
});

/** The implicit-GEMM dW program; see the module docs. */
class Conv2DDerFilterGemmProgram extends WebtuneProgram {
  variableNames = ["x", "dy"];
  uniforms = UNIFORMS.wgsl;

  constructor(
    splits: number,
    kRows: number,
    cout: number,
    private readonly direct: boolean,
    private readonly tile: DerFilterTile,
    private readonly textures: boolean,
  ) {
    super(
      [splits, kRows, cout],
      // Not flat, so the prelude calls `main()` and we index with globalId ourselves.
      { x: [2], y: [1], z: [0] },
      [Math.ceil(cout / 4 / tile.tc / WG), Math.ceil(kRows / tile.tk), splits],
      // Everything baked into the WGSL below: tile sizes and the mode. Shapes are uniforms.
      `Conv2DDerFilterGemm_${tile.tk}_${tile.tc}_${tile.tx ?? 1}_${
        tile.generic ? "generic" : direct
      }_${textures}`,
    );
  }

  getUserCode(): string {
    const { tk: TK, tc: TC } = this.tile;
    const read = operandRead(this.textures);
    const groups = TK / 4;
    // TX positions per step: each accumulator takes TX updates in a row (loaded and stored once
    // when spilled), the loop runs TX times fewer steps. Positions past the row's end read zeros.
    const TX = this.tile.tx ?? 1;
    const acc: string[] = [];
    const fma: string[] = [];
    const store: string[] = [];
    for (let i = 0; i < TK; i++) {
      for (let j = 0; j < TC; j++) {
        acc.push(`var acc${i}_${j} = vec4<f32>(0.0);`);
        for (let u = 0; u < TX; u++) {
          const xs = `xv${u}_${i >> 2}.${"xyzw"[i & 3]}`;
          fma.push(`acc${i}_${j} = fma(vec4<f32>(${xs}), d${u}_${j}, acc${i}_${j});`);
        }
        store.push(
          `result[(split * uniforms.kRows + kk + ${i}) * uniforms.cout4 + cc + ${j}] = ` +
            `acc${i}_${j};`,
        );
      }
    }
    // In direct mode the TK rows are TK consecutive channels of one tap, so their x offsets are
    // consecutive vec4s; in padded mode each vec4 group of rows may sit at a different tap.
    const offsets: string[] = [];
    for (let q = 0; q < groups; q++) {
      if (this.tile.generic) {
        offsets.push(
          `let off${q} = select(tapOffset(kk + ${q * 4}), tap0 + ${q}, uniforms.direct != 0);`,
        );
      } else if (this.direct) {
        offsets.push(`let off${q} = tap0 + ${q};`);
      } else {
        offsets.push(`let off${q} = tapOffset(kk + ${q * 4});`);
      }
    }
    const loads: string[] = [];
    for (let u = 0; u < TX; u++) {
      const guard = (
        e: string,
      ) => (u > 0 ? `select(vec4<f32>(0.0), ${e}, ox + ${u} < xRange.y)` : e);
      for (let j = 0; j < TC; j++) {
        loads.push(
          `let d${u}_${j} = ${guard(read("dy", `db + ${u} * uniforms.cout4 + ${j}`))};`,
        );
      }
      for (let q = 0; q < groups; q++) {
        loads.push(`let xv${u}_${q} = ${guard(read("x", `xb + ${u} * xStep + off${q}`))};`);
      }
    }

    return `
    // vec4 offset in x of tap (r, c) and channel group of row k, relative to x(n, iy0, ix0, 0).
    fn tapOffset(k : i32) -> i32 {
      let k4 = k / 4;
      let ci4 = k4 % uniforms.cin4;
      let rc = k4 / uniforms.cin4;
      return ((rc / uniforms.kw) * uniforms.inW + rc % uniforms.kw) * uniforms.cin4 + ci4;
    }

    // First o in [0, outLen) with 0 <= o * s - pad + tap, and one past the last with < inLen.
    fn validRange(tap : i32, pad : i32, s : i32, inLen : i32, outLen : i32) -> vec2<i32> {
      let lo = max(pad - tap + s - 1, 0) / s;
      let hiNum = inLen - 1 + pad - tap;
      var hi = 0;
      if (hiNum >= 0) { hi = min(hiNum / s + 1, outLen); }
      return vec2<i32>(lo, max(hi, lo));
    }

    fn main() {
      let c0 = i32(globalId.x) * ${TC};
      let k0 = i32(globalId.y) * ${TK};
      let split = i32(globalId.z);
      // Clamp the last tiles inward; overlapping tiles write identical values.
      let cc = min(c0, uniforms.cout4 - ${TC});
      let kk = min(k0, uniforms.kRows - ${TK});
      ${acc.join("\n      ")}

      let rc = (kk / 4) / uniforms.cin4;
      let tapR = rc / uniforms.kw;
      let tapC = rc % uniforms.kw;
      let tap0 = tapOffset(kk);
      ${offsets.join("\n      ")}
      let yRange = validRange(tapR, uniforms.pads.x, uniforms.strides.x, uniforms.inH,
                              uniforms.outH);
      let xRange = validRange(tapC, uniforms.pads.y, uniforms.strides.y, uniforms.inW,
                              uniforms.outW);
      let xStep = uniforms.strides.y * uniforms.cin4;
      let rowStart = split * uniforms.rowsPerSplit;
      let rowEnd = min(rowStart + uniforms.rowsPerSplit, uniforms.totalRows);
      for (var row = rowStart; row < rowEnd; row++) {
        let n = row / uniforms.outH;
        let oy = row - n * uniforms.outH;
        if (${allOf("oy >= yRange.x", "oy < yRange.y")}) {
          let iy0 = oy * uniforms.strides.x - uniforms.pads.x;
          let ix0 = xRange.x * uniforms.strides.y - uniforms.pads.y;
          var xb = ((n * uniforms.inH + iy0) * uniforms.inW + ix0) * uniforms.cin4;
          var db = (row * uniforms.outW + xRange.x) * uniforms.cout4 + cc;
          for (var ox = xRange.x; ox < xRange.y; ox += ${TX}) {
            ${loads.join("\n            ")}
            ${fma.join("\n            ")}
            xb += ${TX} * xStep;
            db += ${TX} * uniforms.cout4;
          }
        }
      }
      if (${allOf("c0 < uniforms.cout4", "k0 < uniforms.kRows")}) {
        ${store.join("\n        ")}
      }
    }`;
  }
}

const SPLIT_UNIFORMS = uniformBlock({ splits: "i32", n4: "i32" });

/** Adds the split partial sums: out[i] = Σ_s partial[s, i]. */
class SumSplitsProgram extends WebtuneProgram {
  variableNames = ["partial"];
  uniforms = SPLIT_UNIFORMS.wgsl;
  override workgroupSize: [number, number, number] = [64, 1, 1];

  constructor(kRows: number, cout: number) {
    // Flat: the prelude calls main(globalIndex).
    super([kRows, cout], { x: [0, 1] }, [Math.ceil(kRows * cout / 4 / 64), 1, 1], "SumSplits");
  }

  getUserCode(): string {
    return `
    fn main(index : i32) {
      if (index < uniforms.n4) {
        var s = partial[index];
        for (var i = 1; i < uniforms.splits; i++) { s += partial[i * uniforms.n4 + index]; }
        result[index] = s;
      }
    }`;
  }
}

/** The attrs tfjs passes to Conv2DBackpropFilter (see tfjs-core ops/conv2d_backprop_filter). */
export interface Conv2DBackpropFilterAttrs {
  strides: [number, number] | number;
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  filterShape: [number, number, number, number];
}

/** Whether {@linkcode conv2DBackpropFilterGemm} handles these inputs (else use the stock kernel). */
export function derFilterSupports(
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
): boolean {
  const { dataFormat, filterShape } = attrs;
  const [kh, kw, cin, cout] = filterShape;
  return (dataFormat ?? "NHWC") === "NHWC" && x.dtype === "float32" &&
    dy.dtype === "float32" && x.shape.length === 4 && cout % 4 === 0 &&
    cout >= 4 * DER_FILTER_TILE.tc && kh * kw * Math.ceil(cin / 4) * 4 >= DER_FILTER_TILE.tk;
}

/**
 * Runs the dW implicit GEMM. Callers check {@linkcode derFilterSupports} first.
 *
 * @returns a new float32 tensor of shape `attrs.filterShape`, owned by the caller.
 */
export function conv2DBackpropFilterGemm(
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
  backend: WebGPUBackend,
  tile: DerFilterTile = derFilterTile(attrs.filterShape),
  textures: boolean | TextureKind = false,
): tf.TensorInfo {
  const { strides, pad, dimRoundingMode, filterShape } = attrs;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1, // dilations: tfjs's conv2d gradient asserts they are 1
    pad,
    dimRoundingMode,
  );
  const [kh, kw, cin, cout] = filterShape;
  const disposables: tf.TensorInfo[] = [];
  let xIn = x;
  let inH = info.inHeight, inW = info.inWidth, cinUsed = cin;
  let padT = info.padInfo.top, padL = info.padInfo.left;
  const direct = cin % tile.tk === 0;
  if (!direct) {
    // Pad so that every tap of every output position is in bounds, and channels to a multiple
    // of 4 (vec4 loads); the extra filter rows are sliced off at the end.
    cinUsed = Math.ceil(cin / 4) * 4;
    const hp = Math.max(inH + padT, (info.outHeight - 1) * info.strideHeight + kh);
    const wp = Math.max(inW + padL, (info.outWidth - 1) * info.strideWidth + kw);
    const paddings = [[0, 0], [padT, hp - inH - padT], [padL, wp - inW - padL], [
      0,
      cinUsed - cin,
    ]];
    xIn = runKernel("PadV2", { x }, { paddings, constantValue: 0 }, backend);
    disposables.push(xIn);
    inH = hp;
    inW = wp;
    padT = 0;
    padL = 0;
  }
  const kRows = kh * kw * cinUsed;
  const totalRows = info.batchSize * info.outHeight;
  const { splits, rowsPerSplit } = derFilterSplit(
    kRows,
    cout,
    tile.splitTc ? { ...tile, tc: tile.splitTc } : tile,
    totalRows,
    info.outWidth,
  );

  const uniforms = UNIFORMS.data({
    kRows,
    cout4: cout / 4,
    cin4: cinUsed / 4,
    kw,
    inH,
    inW,
    outH: info.outHeight,
    outW: info.outWidth,
    strides: [info.strideHeight, info.strideWidth],
    pads: [padT, padL],
    rowsPerSplit,
    totalRows,
    direct: Number(direct),
  });
  const textured = textures !== false && texturesFit(backend, [xIn, dy]);
  const program = new Conv2DDerFilterGemmProgram(splits, kRows, cout, direct, tile, textured);
  let out = runWithOperands(backend, program, [xIn, dy], uniforms, textured && textures);
  if (splits > 1) {
    disposables.push(out);
    const sum = new SumSplitsProgram(kRows, cout);
    out = backend.runWebGPUProgram(
      sum,
      [out],
      "float32",
      SPLIT_UNIFORMS.data({ splits, n4: kRows * cout / 4 }),
    );
  }
  let result: tf.TensorInfo;
  if (cinUsed === cin) {
    result = runKernel("Reshape", { x: out }, { shape: filterShape }, backend);
    disposables.push(out);
  } else {
    disposables.push(out);
    const full = runKernel("Reshape", { x: out }, { shape: [kh, kw, cinUsed, cout] }, backend);
    disposables.push(full);
    result = runKernel(
      "Slice",
      { x: full },
      { begin: [0, 0, 0, 0], size: filterShape },
      backend,
    );
  }
  disposeAll(backend, disposables);
  return result;
}

/** Whether {@linkcode conv2DBackpropFilterTexture} handles these inputs (as the buffer variant). */
export const derFilterTextureSupports = derFilterSupports;

/**
 * {@linkcode conv2DBackpropFilterGemm} with x and dy read from textures (see
 * texture_operands.ts); storage buffers for tensors too large for the device's textures.
 *
 * @example
 * ```ts ignore
 * if (derFilterTextureSupports(x, dy, attrs)) {
 *   return conv2DBackpropFilterTexture(x, dy, attrs, backend);
 * }
 * ```
 */
export function conv2DBackpropFilterTexture(
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const tile = derFilterTextureTile(attrs.filterShape);
  return conv2DBackpropFilterGemm(x, dy, attrs, backend, tile, true);
}
