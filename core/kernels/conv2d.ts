/**
 * A fast forward `Conv2D` kernel for tfjs-backend-webgpu, NHWC only.
 *
 * Why hand-written WGSL: tfjs-webgpu 4.22's `Conv2DMMProgram` uses 32×32 shared-memory tiles.
 * On Mesa's llvmpipe every storage or workgroup load is a per-lane scalar loop, so those tiles
 * cost more than they save, and with few tiles (ResNet-18's layer3/layer4 at small image sizes)
 * tfjs switches to im2col + small-output matmuls that ran at 0.13–0.6 GFLOP/s here.
 *
 * This kernel is an implicit GEMM, y[m, Cout] = Σ_k cols[m, k] · W[k, Cout], with each
 * invocation holding a TM×(4·TC) register tile: TM output positions × TC vec4s of Cout. Per
 * (tap, 4 input channels) it loads TM vec4s of x and 4·TC vec4s of W for 4·TM·TC vec4 FMAs.
 * Zero padding is a per-(position, tap) select, computed once per tap, outside the channel loop;
 * the taps that are padding for every position of a tile are not visited at all, and on small
 * output maps the positions are tiled with the batch innermost so that a tile's positions share
 * their taps ({@linkcode batchInnerFor}).
 *
 * Falls back to the stock kernel for NCHW, dilation > 1, Cout not a multiple of 4 and
 * non-float32 inputs.
 *
 * The registered variant reads x and W from `rgba32float` textures (`textures`, see
 * texture_operands.ts; read-only storage textures where WGSL allows them), several times faster
 * on llvmpipe, with its own, smaller tile ({@linkcode conv2DTextureTile}); the storage-buffer
 * variant remains for tensors too large for the device's textures (and as a candidate for other
 * adapters), with the tiles of {@linkcode conv2DTile}.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  allOf,
  dispatch2D,
  disposeAll,
  flatMain,
  LINEAR_GROUP_WGSL,
  padAxis,
  runKernel,
  uniformBlock,
  WebtuneProgram,
  WG,
} from "./kernel_util.ts";
import { operandRead, runWithOperands, type TextureKind, texturesFit } from "./texture_operands.ts";

/**
 * What the forward conv applies before it stores (the `eval` BatchNorm folded into the conv,
 * see {@linkcode conv2DGemm}): + bias per output channel, + a residual of the output's shape,
 * ReLU.
 */
export interface Conv2DEpilogue {
  /** [Cout], added to every output position. */
  bias: tf.TensorInfo;
  /** Of the output's shape, added after the bias. */
  residual?: tf.TensorInfo;
  /** ReLU last. */
  relu: boolean;
}

/** The parts of an epilogue the WGSL depends on. */
export interface EpilogueKind {
  residual: boolean;
  relu: boolean;
}

/** The program inputs an epilogue adds after the conv's own: `bias`, then `residual`. */
export function epilogueInputs(epilogue: EpilogueKind | null): string[] {
  if (!epilogue) return [];
  return epilogue.residual ? ["bias", "residual"] : ["bias"];
}

/** Register tile of one invocation: output positions × vec4s of output channels. */
export interface ConvTile {
  tm: number;
  tc: number;
  /**
   * Order the output positions (oy, ox)-major with the batch innermost, so that a tile's
   * positions share one or two (oy, ox) and the taps that fall in the padding for all of them
   * are skipped; `false`: (n, oy, ox) order, as NHWC stores them. Absent: chosen by the size of
   * the output map ({@linkcode batchInnerFor}).
   */
  batchInner?: boolean;
  /**
   * One pipeline for every call of the tile: the position order comes from a uniform and the
   * zero-padded stem runs the general tap loop, so nothing about the call is in the WGSL. A
   * first step compiles one forward conv pipeline instead of three (stem, (n, oy, ox) order,
   * batch-inner order); each costs 0.2–0.7 s to compile on llvmpipe. The same sums in the same
   * order as the specialised programs (the stem's padded taps are in bounds for every position,
   * so the general loop visits all of them, in the padded loop's (r, c, ci) order).
   */
  generic?: boolean;
}

/**
 * The tile for Cout < 128 (and the one the support check is made against). Bigger tiles win on
 * llvmpipe even though they cannot stay in its 16 ymm registers: every storage load is a per-lane
 * gather there, so the FMAs per load, 4·tm·tc / (tm + 4·tc), set the speed, and spills of the
 * accumulators to the stack are cheap next to that.
 */
export const CONV2D_TILE: ConvTile = { tm: 32, tc: 2 };

/**
 * The tile for a conv with `cout` output channels, measured with cli/sweep_tiles.ts (batch 16,
 * 64 px, ResNet-18 shapes; ratios are vs the former { tm: 12, tc: 2 }, one process):
 * Cout 64, { tm: 16, tc: 2 }: stem 1.09×, layer1 1.07× (tm 24: 1.23×, 1.03×; tm 8 × tc 4 with
 * half the lanes idle: 0.63×, 0.45×). Cout ≥ 128, { tm: 16, tc: 4 }: layer2 3×3/2 1.12×, 1×1/2
 * 2.5×, 3×3/1 1.45×, layer3 1.90×, layer4 2.00×. A second sweep, vs tm 16: tm 32 × tc 2 1.09×
 * on layer1; tm 32 × tc 4 vs tm 16 × tc 4 1.26× on layer2 3×3/1, 1.24× layer3, 1.52× layer4, so
 * both use tm 32 (not swept further). Smaller tiles (tm 1–8 × tc 1, 4–32
 * accumulator floats) were 0.2–0.76× on the stem; tm 6 × tc 2 and tm 4 × tc 4 0.68× and 0.31× on
 * layer1.
 * tc stays at 2 below Cout 128 so that all WG invocations of a workgroup get columns.
 *
 * @example
 * ```ts
 * conv2DTile(64); // { tm: 32, tc: 2 }
 * ```
 */
export function conv2DTile(cout: number): ConvTile {
  return cout >= 4 * 4 * WG ? WIDE_TILE : CONV2D_TILE;
}

const WIDE_TILE: ConvTile = { tm: 32, tc: 4 };

/**
 * The tile of the texture variant for a conv with `cout` output channels: a quarter to a half of
 * the storage-buffer tiles' positions (fewer spilled accumulators, less WGSL to compile).
 * Measured with cli/sweep_tiles.ts (batch 16, 64 px unless said, one process, read-only storage
 * textures, all with the accumulator-major FMA order; ratios vs sampled textures with the buffer
 * tiles; wall-time minima of 5–8 interleaved runs on the shared, busy 2-core machine, where the
 * same kernel timed twice in one sweep differed by up to 1.7×, so only the large effects hold):
 * Cout 64, { tm: 8, tc: 2 }: stem 1.12× (224 px 2.30×), layer1 1.80× (56 px 1.54×); the four
 * shapes took 1131 ms with it, 1519 with tm 16, 1630 with tm 32, 2099 before.
 * Cout ≥ 128, { tm: 16, tc: 4 }: layer2 3×3/2 0.99×, 3×3/1 1.84×, layer3 3×3/2 1.50×, 3×3/1
 * 1.75×, layer4 3×3/2 0.81×, 3×3/1 1.49×; a step's 3×3 convs of Cout ≥ 128 took 480 ms with it,
 * 469 with tm 8, 555 with tm 32, 747 before; over three sweeps' CPU time tm 16 beat tm 8 (958
 * vs 1083 ms); tm 16 × tc 2 and tm 32 × tc 2 were within noise, tc 8 0.7–1.35×.
 *
 * @example
 * ```ts
 * conv2DTextureTile(256); // { tm: 16, tc: 4 }
 * ```
 */
export function conv2DTextureTile(cout: number): ConvTile {
  return cout >= 4 * 4 * WG ? { tm: 16, tc: 4 } : { tm: 8, tc: 2 };
}

/**
 * Output maps of at most this many positions are tiled with the batch innermost (see
 * {@linkcode batchInnerFor}).
 */
export const BATCH_INNER_MAX_POSITIONS = 64;

/**
 * Whether a conv with an `outH` × `outW` output map tiles its positions (oy, ox)-major with the
 * batch innermost ({@linkcode ConvTile.batchInner}): on small maps, where many positions lie on
 * the border and a tile of one (oy, ox) skips the taps in the padding. A tile of the (n, oy, ox)
 * order spans a row or several images there, so it must visit all 9 taps of a 3×3 filter.
 * Measured on llvmpipe (batch 16, texture tiles, wall-time minima interleaved in one process,
 * a loaded machine): 64 px, a step's convs but the stem 348 → 246 ms (layer4 3×3/1 2×2 maps
 * 43.5 → 17.1 ms each, layer3 14.7 → 12.0, layer2 15.7 → 14.1); 224 px layer4 3×3/1 (7×7)
 * 233 → 194 ms. On larger maps the batch-inner order lost (224 px layer1, 56×56: 174 → 226 ms;
 * layer2 28×28: 145 → 172 ms): there neighbouring positions of a tile share x's texels across
 * taps, and few taps are in the padding.
 *
 * @example
 * ```ts
 * batchInnerFor(2, 2); // true
 * batchInnerFor(56, 56); // false
 * ```
 */
export function batchInnerFor(outH: number, outW: number): boolean {
  return outH * outW <= BATCH_INNER_MAX_POSITIONS;
}

const UNIFORMS = uniformBlock({
  cin4: "i32",
  cout4: "i32",
  inH: "i32",
  inW: "i32",
  outH: "i32",
  outW: "i32",
  kh: "i32",
  kw: "i32",
  strides: "vec2<i32>",
  pads: "vec2<i32>",
  mTotal: "i32",
  groupsCo: "i32",
  groups: "i32",
  /** 1: positions in batch-inner order (read by generic programs only; see ConvTile). */
  batchInner: "i32",
});

/**
 * The lanes of x's vec4s a program multiplies: `lanes` in a specialised program of a padded x
 * (the stem's 3), else all 4 — the generic program multiplies every lane, so that the stem and
 * every other conv share its one pipeline.
 */
function lanesMultiplied(padded: boolean, tile: ConvTile, lanes: number): number {
  return padded && !tile.generic ? lanes : 4;
}

/** The implicit-GEMM forward conv; the WG invocations of a group split Cout. */
class Conv2DGemmProgram extends WebtuneProgram {
  variableNames: string[];
  uniforms = UNIFORMS.wgsl;

  /**
   * @param padded x was zero-padded beforehand (the stem): no bounds checks, and the taps of a
   *   filter row read one contiguous run of x, so (c, channel) is a single inner loop.
   * @param lanes the channels of x's vec4s that are not zero padding: 4, or Cin < 4 for a padded
   *   x of one vec4 per position (the stem's 3), whose zero lanes are not multiplied.
   */
  constructor(
    outShape: number[],
    groups: number,
    private readonly padded: boolean,
    private readonly tile: ConvTile,
    private readonly textures: boolean,
    private readonly epilogue: EpilogueKind | null = null,
    private readonly lanes = 4,
  ) {
    // Not flat: the prelude calls `main()`; we find our tile from the linear workgroup id.
    const epi = epilogue ? `_bias_${epilogue.residual}_${epilogue.relu}` : "";
    const mode = tile.generic ? "generic" : `${padded}`;
    const order = tile.generic ? "" : `_${!padded && !!tile.batchInner}`;
    const lanesUsed = lanesMultiplied(padded, tile, lanes);
    super(
      outShape,
      { x: [3], y: [0] },
      dispatch2D(groups),
      `Conv2DGemm_${tile.tm}_${tile.tc}_${mode}_${textures}${order}${epi}${
        lanesUsed === 4 ? "" : `_lanes${lanesUsed}`
      }`,
    );
    this.variableNames = ["x", "w", ...epilogueInputs(epilogue)];
  }

  private get lanesUsed(): number {
    return lanesMultiplied(this.padded, this.tile, this.lanes);
  }

  /** The padded stem reads whole rows of x: it keeps the (n, oy, ox) order. */
  private get batchInner(): boolean {
    return !this.tile.generic && !this.padded && !!this.tile.batchInner;
  }

  /** The specialised loop for the zero-padded stem (generic programs run the general one). */
  private get paddedLoop(): boolean {
    return this.padded && !this.tile.generic;
  }

  /**
   * The value stored for accumulator `acc` at output vec4 `out`: in the ops' order, acc + bias,
   * then + residual, then ReLU (as the eval BatchNorm pass computes x·scale + shift, + residual,
   * ReLU).
   */
  private epilogueOf(acc: string, bias: string, out: string): string {
    if (!this.epilogue) return acc;
    const read = operandRead(this.textures);
    let v = `(${acc} + ${bias})`;
    if (this.epilogue.residual) v = `(${v} + ${read("residual", out)})`;
    return this.epilogue.relu ? `max(${v}, vec4<f32>(0.0))` : v;
  }

  getUserCode(): string {
    const { tm, tc } = this.tile;
    const batchInner = this.batchInner;
    const read = operandRead(this.textures);
    const perPos: string[] = [];
    const tapRange: string[] = [];
    const perTap: string[] = [];
    const perRow: string[] = [];
    const loads: string[] = [];
    const loadsPadded: string[] = [];
    const fmas: string[] = [];
    const stores: string[] = [];
    const biasLoads = this.epilogue
      ? [...Array(tc).keys()].map((t) => `let bias${t} = ${read("bias", `cc + ${t}`)};`)
      : [];
    const accs: string[] = [];
    for (let i = 0; i < tm; i++) {
      perPos.push(
        `let p${i} = min(m0 + ${i}, uniforms.mTotal - 1);`,
        ...(this.tile.generic
          ? [
            `let s${i} = p${i} / batch;`,
            `let nb${i} = p${i} / hw;`,
            `let n${i} = select(nb${i}, p${i} - s${i} * batch, inner);`,
            `let q${i} = select(p${i} - nb${i} * hw, s${i}, inner);`,
            `let oy${i} = q${i} / uniforms.outW;`,
            `let ox${i} = q${i} - oy${i} * uniforms.outW;`,
          ]
          : batchInner
          ? [
            `let s${i} = p${i} / batch;`,
            `let n${i} = p${i} - s${i} * batch;`,
            `let oy${i} = s${i} / uniforms.outW;`,
            `let ox${i} = s${i} - oy${i} * uniforms.outW;`,
          ]
          : [
            `let n${i} = p${i} / hw;`,
            `let oy${i} = (p${i} - n${i} * hw) / uniforms.outW;`,
            `let ox${i} = p${i} - n${i} * hw - oy${i} * uniforms.outW;`,
          ]),
        `let iyb${i} = oy${i} * uniforms.strides.x - uniforms.pads.x;`,
        `let ixb${i} = ox${i} * uniforms.strides.y - uniforms.pads.y;`,
        `let row${i} = n${i} * uniforms.inH;`,
      );
      tapRange.push(
        `rLo = min(rLo, clamp(-iyb${i}, 0, uniforms.kh));`,
        `rHi = max(rHi, clamp(uniforms.inH - iyb${i}, 0, uniforms.kh));`,
        `cLo = min(cLo, clamp(-ixb${i}, 0, uniforms.kw));`,
        `cHi = max(cHi, clamp(uniforms.inW - ixb${i}, 0, uniforms.kw));`,
      );
      perTap.push(
        `let iy${i} = iyb${i} + r;`,
        `let ix${i} = ixb${i} + c;`,
        `let ok${i} = ${
          allOf(`iy${i} >= 0`, `iy${i} < uniforms.inH`, `ix${i} >= 0`, `ix${i} < uniforms.inW`)
        };`,
        `let at${i} = select(0, ((row${i} + iy${i}) * uniforms.inW + ix${i}) * uniforms.cin4, ` +
          `ok${i});`,
      );
      perRow.push(
        `let at${i} = ((row${i} + iyb${i} + r) * uniforms.inW + ixb${i}) * uniforms.cin4;`,
      );
      loads.push(`let a${i} = select(vec4<f32>(0.0), ${read("x", `at${i} + ci4`)}, ok${i});`);
      loadsPadded.push(`let a${i} = ${read("x", `at${i} + j`)};`);
      for (let t = 0; t < tc; t++) {
        accs.push(`var acc${i}_${t} = vec4<f32>(0.0);`);
        // Both orders store at (n, oy, ox); in the (n, oy, ox) order that is m0 + i.
        const at = batchInner || this.tile.generic
          ? `((n${i} * uniforms.outH + oy${i}) * uniforms.outW + ox${i})`
          : `(m0 + ${i})`;
        const out = `${at} * uniforms.cout4 + cc + ${t}`;
        stores.push(
          `if (m0 + ${i} < uniforms.mTotal) { ` +
            `result[${out}] = ${this.epilogueOf(`acc${i}_${t}`, `bias${t}`, out)}; }`,
        );
      }
    }
    // Lanes of x that are zero padding (the stem's 4th channel, with zero rows of W) are left
    // out: each would add fma(0, 0, acc) = acc + 0 = acc (acc is never -0, see the tap skip
    // below), so the same numbers with a quarter fewer FMAs and W loads on the stem.
    const lanes = this.lanesUsed;
    for (let j = 0; j < lanes; j++) {
      for (let t = 0; t < tc; t++) {
        const b = `let b${j}_${t} = ${read("w", `wb + ${j} * uniforms.cout4 + ${t}`)};`;
        loads.push(b);
        loadsPadded.push(b);
      }
    }
    // The 4 updates of one accumulator follow each other (not k-major): llvmpipe spills most
    // accumulators, and this way each is loaded and stored once per channel group, not 4 times
    // (1.1–1.4× on the texture variant; the same sums in the same order, so the same numbers).
    for (let i = 0; i < tm; i++) {
      for (let t = 0; t < tc; t++) {
        for (let j = 0; j < lanes; j++) {
          fmas.push(`acc${i}_${t} = fma(vec4<f32>(a${i}.${"xyzw"[j]}), b${j}_${t}, acc${i}_${t});`);
        }
      }
    }
    // Only the taps that reach the input for at least one of the tile's positions: the others
    // would add fma(0, w, acc) = acc + ±0, which leaves acc as it is (acc starts at +0 and a
    // sum of floats is never -0 unless all its terms are, so acc + ±0 == acc). The same sums
    // in the same order, so the same numbers; at 64 px layer4 (2×2 maps) a tile in
    // (oy, ox)-major order visits 4–6 of the 9 taps.
    const generalLoop = `
      var rLo = uniforms.kh;
      var rHi = 0;
      var cLo = uniforms.kw;
      var cHi = 0;
      ${tapRange.join("\n      ")}
      for (var r = rLo; r < rHi; r++) {
        for (var c = cLo; c < cHi; c++) {
          ${perTap.join("\n          ")}
          // W row of (r, c, ci = 0), in vec4s, plus our columns.
          var wb = (r * uniforms.kw + c) * uniforms.cin4 * 4 * uniforms.cout4 + cc;
          for (var ci4 = 0; ci4 < uniforms.cin4; ci4++) {
            ${loads.join("\n            ")}
            ${fmas.join("\n            ")}
            wb += 4 * uniforms.cout4;
          }
        }
      }`;
    const paddedLoop = `
      let rowLen = uniforms.kw * uniforms.cin4;
      for (var r = 0; r < uniforms.kh; r++) {
        ${perRow.join("\n        ")}
        // W row of (r, c = 0, ci = 0): the rows of (c, ci) follow contiguously.
        var wb = r * rowLen * 4 * uniforms.cout4 + cc;
        for (var j = 0; j < rowLen; j++) {
          ${loadsPadded.join("\n          ")}
          ${fmas.join("\n          ")}
          wb += 4 * uniforms.cout4;
        }
      }`;
    return `
    fn main() {
      let group = ${LINEAR_GROUP_WGSL};
      if (group >= uniforms.groups) { return; }
      let coGroup = group % uniforms.groupsCo;
      let m0 = (group / uniforms.groupsCo) * ${tm};
      let c0 = (coGroup * ${WG} + i32(localId.x)) * ${tc};
      // Clamp the last tile inward; overlapping tiles write identical values.
      let cc = min(c0, uniforms.cout4 - ${tc});
      let hw = uniforms.outH * uniforms.outW;
      ${batchInner || this.tile.generic ? "let batch = uniforms.mTotal / hw;" : ""}
      ${this.tile.generic ? "let inner = uniforms.batchInner != 0;" : ""}
      ${perPos.join("\n      ")}
      ${accs.join("\n      ")}
      ${this.paddedLoop ? paddedLoop : generalLoop}
      if (c0 < uniforms.cout4) {
        ${biasLoads.join("\n        ")}
        ${stores.join("\n        ")}
      }
    }`;
  }
}

const PAD_UNIFORMS = uniformBlock({
  n4: "i32",
  cin: "i32",
  inH: "i32",
  inW: "i32",
  outH: "i32",
  outW: "i32",
  pads: "vec2<i32>",
});

/**
 * x [N, H, W, Cin < 4] → [N, H', W', 4]: zero padding around the map (top/left `pads`, the rest
 * bottom/right) and as the channels past Cin; one invocation per output vec4. For the stem
 * (Cin = 3), in place of tfjs's `PadV2`, which took 90–120 ms of CPU time on the 224 px batch-16
 * input on llvmpipe, about a fifth of the stem conv (cli/bench_infer.ts): its loads sit under
 * bounds checks, each a per-lane scalar loop there. Here the loads are unconditional (an index
 * clamped into x, the value selected away outside it).
 */
class PadChannelsTo4Program extends WebtuneProgram {
  variableNames = ["x"];
  uniforms = PAD_UNIFORMS.wgsl;
  override workgroupSize: [number, number, number] = [64, 1, 1];

  constructor(outShape: number[], private readonly cin: number) {
    const n4 = tf.util.sizeFromShape(outShape) / 4;
    super(outShape, { x: [0] }, dispatch2D(Math.ceil(n4 / 64)), `PadChannelsTo4_${cin}`);
    this.variableComponents = [1];
  }

  getUserCode(): string {
    const lanes = [0, 1, 2, 3].map((c) => c < this.cin ? `ld_x(select(0, at + ${c}, ok))` : "0.0");
    return `
    ${flatMain(true, 64)}
      let j = min(i, uniforms.n4 - 1);
      let hw = uniforms.outH * uniforms.outW;
      let n = j / hw;
      let oy = (j - n * hw) / uniforms.outW;
      let ox = j - n * hw - oy * uniforms.outW;
      let iy = oy - uniforms.pads.x;
      let ix = ox - uniforms.pads.y;
      let ok = ${allOf("iy >= 0", "iy < uniforms.inH", "ix >= 0", "ix < uniforms.inW")};
      let at = ((n * uniforms.inH + iy) * uniforms.inW + ix) * uniforms.cin;
      result[j] = select(vec4<f32>(0.0), vec4<f32>(${lanes.join(", ")}), ok);
    }`;
  }
}

/**
 * `x` [N, H, W, Cin < 4] zero-padded to [N, `outH`, `outW`, 4], its map starting at (`top`,
 * `left`): {@linkcode PadChannelsTo4Program}.
 */
function padChannelsTo4(
  x: tf.TensorInfo,
  outH: number,
  outW: number,
  top: number,
  left: number,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const [n, inH, inW, cin] = x.shape;
  const program = new PadChannelsTo4Program([n, outH, outW, 4], cin);
  const uniforms = PAD_UNIFORMS.data({
    n4: n * outH * outW,
    cin,
    inH,
    inW,
    outH,
    outW,
    pads: [top, left],
  });
  return runWithOperands(backend, program, [x], uniforms, "buffer");
}

/** The attrs tfjs passes to Conv2D. */
export interface Conv2DAttrs {
  strides: [number, number] | number;
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat?: "NHWC" | "NCHW";
  dilations?: [number, number] | number;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/** Whether {@linkcode conv2DGemm} handles these inputs (else use the stock kernel). */
export function conv2DGemmSupports(
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DAttrs,
): boolean {
  const d = attrs.dilations ?? 1;
  const dil = typeof d === "number" ? [d, d] : d;
  return (attrs.dataFormat ?? "NHWC") === "NHWC" && x.dtype === "float32" &&
    filter.dtype === "float32" && x.shape.length === 4 && filter.shape[3] % 4 === 0 &&
    filter.shape[3] >= 4 * CONV2D_TILE.tc &&
    dil[0] === 1 && dil[1] === 1;
}

/**
 * Runs the forward conv. Callers check {@linkcode conv2DGemmSupports} first.
 *
 * @param textures read x and W from textures (texture_operands.ts): `true` for the fastest kind
 *   this WebGPU allows, or a {@linkcode TextureKind}; `false` for storage buffers.
 * @param epilogue bias, residual and ReLU applied in the store (see above).
 * @returns a new float32 NHWC tensor, owned by the caller.
 */
export function conv2DGemm(
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DAttrs,
  backend: WebGPUBackend,
  tile: ConvTile = conv2DTile(filter.shape[3]),
  textures: boolean | TextureKind = false,
  epilogue?: Conv2DEpilogue,
): tf.TensorInfo {
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const [kh, kw, cin, cout] = filter.shape;
  const temps: tf.TensorInfo[] = [];
  let xIn = x, wIn = filter, cinUsed = cin;
  let inH = info.inHeight, inW = info.inWidth;
  let pads = [info.padInfo.top, info.padInfo.left];
  const padded = cin % 4 !== 0;
  if (padded) {
    // vec4 loads of x need Cin % 4 == 0 (the 3-channel stem): add zero channels to x and W,
    // and pad x spatially too so the kernel needs no bounds checks (see the program).
    cinUsed = Math.ceil(cin / 4) * 4;
    inH = Math.max(inH + pads[0], (info.outHeight - 1) * info.strideHeight + kh);
    inW = Math.max(inW + pads[1], (info.outWidth - 1) * info.strideWidth + kw);
    const paddings = [
      [0, 0],
      [pads[0], inH - info.inHeight - pads[0]],
      [pads[1], inW - info.inWidth - pads[1]],
      [0, cinUsed - cin],
    ];
    xIn = cinUsed === 4
      ? padChannelsTo4(x, inH, inW, pads[0], pads[1], backend)
      : runKernel("PadV2", { x }, { paddings, constantValue: 0 }, backend);
    wIn = padAxis(filter, 2, cinUsed, backend);
    temps.push(xIn, wIn);
    pads = [0, 0];
  }
  const mTotal = info.batchSize * info.outHeight * info.outWidth;
  const batchInner = tile.batchInner ?? batchInnerFor(info.outHeight, info.outWidth);
  const groupsCo = Math.ceil(cout / 4 / tile.tc / WG);
  const groups = groupsCo * Math.ceil(mTotal / tile.tm);
  const uniforms = UNIFORMS.data({
    cin4: cinUsed / 4,
    cout4: cout / 4,
    inH,
    inW,
    outH: info.outHeight,
    outW: info.outWidth,
    kh,
    kw,
    strides: [info.strideHeight, info.strideWidth],
    pads: [pads[0], pads[1]],
    mTotal,
    groupsCo,
    groups,
    batchInner: Number(!padded && batchInner),
  });
  const operands = [xIn, wIn];
  if (epilogue) operands.push(epilogue.bias);
  if (epilogue?.residual) operands.push(epilogue.residual);
  const textured = textures !== false && texturesFit(backend, operands);
  const program = new Conv2DGemmProgram(
    info.outShape,
    groups,
    padded,
    { ...tile, batchInner },
    textured,
    epilogue ? { residual: epilogue.residual !== undefined, relu: epilogue.relu } : null,
    cinUsed === 4 ? cin : 4,
  );
  const out = runWithOperands(backend, program, operands, uniforms, textured && textures);
  disposeAll(backend, temps);
  return out;
}

/** Whether {@linkcode conv2DTexture} handles these inputs: the same as {@linkcode conv2DGemmSupports}. */
export const conv2DTextureSupports = conv2DGemmSupports;

/**
 * {@linkcode conv2DGemm} with x and W read from textures (see texture_operands.ts): several times
 * faster on llvmpipe, where storage-buffer loads in loops are per-lane scalar loops. Falls back to
 * storage buffers for tensors too large for the device's textures.
 *
 * @example
 * ```ts ignore
 * if (conv2DTextureSupports(x, filter, attrs)) return conv2DTexture(x, filter, attrs, backend);
 * ```
 */
export function conv2DTexture(
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DAttrs,
  backend: WebGPUBackend,
): tf.TensorInfo {
  return conv2DGemm(x, filter, attrs, backend, conv2DTextureTile(filter.shape[3]), true);
}
