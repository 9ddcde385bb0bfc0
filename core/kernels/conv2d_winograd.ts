/**
 * Winograd F(2×2, 3×3) for 3×3, stride-1 NHWC convs (ResNet's main convs): the forward
 * `Conv2D` and its dX (`Conv2DBackpropInput`, the same passes on dy with the filter rotated by 180°
 * and Cin, Cout swapped, see {@linkcode conv2DBackpropInputWinograd}).
 *
 * Why: on llvmpipe the direct conv kernels are bound by texel fetches, not arithmetic (see
 * texture_operands.ts). Winograd's minimal filtering computes a 2×2 block of outputs from a 4×4
 * input tile with 16 multiplies per (input, output) channel pair, where the direct conv needs
 * 36: the GEMM stage does 2.25× less work, with the same loads per FMA. It is four passes:
 *
 * 1. filter transform, U = G g Gᵀ per (Cin, Cout): [3, 3, Cin, Cout] → [16, Cin, Cout];
 * 2. input transform, V = Bᵀ d B per 4×4 input tile d (tiles overlap by 2, zero padding outside
 *    the image): → [16, tiles, Cin];
 * 3. 16 independent GEMMs, M[ξ] = V[ξ] · U[ξ] ([tiles, Cin] × [Cin, Cout]), register-blocked
 *    like conv2d.ts's implicit GEMM (tm tiles × tc vec4s of Cout per invocation, operands read
 *    from textures);
 * 4. output transform, y = Aᵀ M A per tile: the 2×2 outputs, written to NHWC (the last row or
 *    column of tiles is partial for odd output sizes).
 *
 * The matrices are the standard ones (Lavin & Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2015); their coefficients (0, ±1, ±½) are exact in float32, so the only rounding
 * is in the sums. It rounds differently from the direct conv (closer to float64 on ResNet shapes,
 * measured with cli/bench_winograd.ts; see {@linkcode WINOGRAD_MIN_CHANNELS} for the numbers and
 * for where it may run).
 *
 * Operands are always read from textures (the variant is not offered where they do not fit).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  dispatch2D,
  disposeAll,
  flatMain,
  LINEAR_GROUP_WGSL,
  uniformBlock,
  WebtuneProgram,
  WG,
} from "./kernel_util.ts";
import {
  type Conv2DAttrs,
  type Conv2DEpilogue,
  type ConvTile,
  epilogueInputs,
  type EpilogueKind,
} from "./conv2d.ts";
import type { Conv2DBackpropInputAttrs } from "./conv2d_backprop_input.ts";
import { runWithOperands, type TextureKind, texturesFit } from "./texture_operands.ts";

/** Winograd components: a 4×4 transformed tile. */
export const XI = 16;
/**
 * The pooled operand textures of the passes (texture_operands.ts), one set for the forward and
 * dX variants: a pool slot only grows, so separate slots per program would hold more memory.
 */
export const SLOTS = {
  filter: "winograd filter",
  input: "winograd input",
  v: "winograd V",
  u: "winograd U",
  m: "winograd M",
} as const;
/** Invocations per workgroup of the transform passes (memory-bound, flat). */
export const FLAT_WG = 64;

/**
 * The GEMM stage's register tile for `cout` output channels: tm tiles × tc vec4s of Cout, the
 * same shapes as the direct conv's texture tiles (conv2d.ts's conv2DTextureTile).
 *
 * @example
 * ```ts
 * winogradTile(64); // { tm: 8, tc: 2 }
 * ```
 */
export function winogradTile(cout: number): ConvTile {
  return cout >= 4 * 4 * WG ? { tm: 16, tc: 4 } : { tm: 8, tc: 2 };
}

/** The problem sizes every pass needs. */
export interface Geometry {
  n: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  padTop: number;
  padLeft: number;
  cin: number;
  cout: number;
  tilesH: number;
  tilesW: number;
  /** Tiles in all: n · tilesH · tilesW. */
  tiles: number;
}

/**
 * The passes' sizes for conv(x, filter) in tiles of `step` × `step` outputs (2 for F(2×2), 4 for
 * F(4×4)); also dW's (conv2d_backprop_filter_winograd.ts).
 */
export function geometry(
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DAttrs,
  step = 2,
): Geometry {
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const tilesH = Math.ceil(info.outHeight / step), tilesW = Math.ceil(info.outWidth / step);
  return {
    n: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    outH: info.outHeight,
    outW: info.outWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
    cin: info.inChannels,
    cout: info.outChannels,
    tilesH,
    tilesW,
    tiles: info.batchSize * tilesH * tilesW,
  };
}

/**
 * The geometry of dX = conv(dy, W rotated by 180°, Cin and Cout swapped) for a 3×3 stride-1
 * conv: dy's map is the input, x's the output, padded by 2 − the forward padding.
 */
function derInputGeometry(
  filter: tf.TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
): Geometry {
  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const tilesH = Math.ceil(info.inHeight / 2), tilesW = Math.ceil(info.inWidth / 2);
  return {
    n: info.batchSize,
    inH: info.outHeight,
    inW: info.outWidth,
    outH: info.inHeight,
    outW: info.inWidth,
    padTop: 2 - info.padInfo.top,
    padLeft: 2 - info.padInfo.left,
    cin: info.outChannels,
    cout: info.inChannels,
    tilesH,
    tilesW,
    tiles: info.batchSize * tilesH * tilesW,
  };
}

/** Whether {@linkcode conv2DWinograd} handles these inputs: 3×3, stride 1, no dilation, NHWC, float32, Cin and Cout multiples of 4. */
export function conv2DWinogradSupports(
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DAttrs,
): boolean {
  const pair = (v: number | [number, number] | undefined) =>
    typeof v === "number" || v === undefined ? [v ?? 1, v ?? 1] : v;
  const [sh, sw] = pair(attrs.strides);
  const [dh, dw] = pair(attrs.dilations);
  return (attrs.dataFormat ?? "NHWC") === "NHWC" && x.dtype === "float32" &&
    filter.dtype === "float32" && x.shape.length === 4 && filter.shape[0] === 3 &&
    filter.shape[1] === 3 && filter.shape[2] % 4 === 0 && filter.shape[3] % 4 === 0 &&
    filter.shape[3] >= 4 * winogradTile(filter.shape[3]).tc && sh === 1 && sw === 1 &&
    dh === 1 && dw === 1;
}

/**
 * The fewest output channels for which `auto` and `fast` may run the Winograd variant: the
 * numerics gate. Forced onto every 3×3 stride-1 conv, core/parity_test.ts's ResNet-18 step failed
 * its conv1-gradient bound (1.8e-2 against 5e-3, and the eval logits after the step 1.4e-4
 * against 1e-4), although the kernel is closer to float64 than the direct conv (ResNet shapes,
 * batch 1, cli/bench_winograd.ts: max error relative to the output's largest value 2.6e-7–1.1e-6
 * against 4.5e-7–1.8e-6 for the direct conv) and ResNet-50's 224 px eval logits moved 1.30e-6 →
 * 1.23e-6 from PyTorch's. With both Winograd variants (forward and dX) forced onto every 3×3
 * stride-1 conv of layer2–4 (Cout = Cin ≥ 128, any tile count) all four parity tests (parity,
 * train_step, frozen_bn, ResNet-50) pass at their bounds (conv1 gradient 1.64e-3, as with the
 * direct kernels). Also for dX (the same check): Cin ≥ 128. The
 * conv1 gradient is a knife edge: on layer1 alone it failed (1.8e-2) with the output transform
 * summed left to right and passed (1.5e-3) with (m1 + m2) summed first — ReLU decisions that
 * float32 differences of ~1e-7 flip, not the kernel's accuracy. Layer1 stays on the direct conv.
 */
export const WINOGRAD_MIN_CHANNELS = 128;

/**
 * The fewest tiles (2×2 output blocks: batch · ⌈H/2⌉ · ⌈W/2⌉) for which the variant is offered:
 * the filter transform costs the same at any batch (16·Cin·Cout floats written, then copied to a
 * texture), so small problems lose. CPU time, interleaved with the direct `texture` variant in one
 * process (cli/bench_winograd.ts --cpu), batch 16: 64 px layer2 (256 tiles) 1.36×, layer3 (64)
 * 0.89×, layer4 (16) 0.49×; 224 px layer2 (3136) 1.35×, layer3 (784) 1.64×, layer4 (256) 2.29×;
 * batch 2 at 64 px, 0.30–0.61× on layer2–4.
 */
export const WINOGRAD_MIN_TILES = 256;

/**
 * Whether `auto` and `fast` may run the Winograd variant for this call: it handles it
 * ({@linkcode conv2DWinogradSupports}), it passed the numerics gate for the channel count
 * ({@linkcode WINOGRAD_MIN_CHANNELS}) and it has enough tiles to win ({@linkcode WINOGRAD_MIN_TILES}).
 * (An `eval` forward's folded conv, whose filter transform is made once per fold, runs
 * F(4×4, 3×3) instead where it may: conv2d_winograd4.ts. Its F(2×2) with U made once,
 * {@linkcode conv2DWinogradTransformed}, won from 64 tiles, layer3 3×3/1 at 64 px 1.21× and
 * 1.62×, but F(4×4) beat it there and wherever else both apply, see `WINOGRAD4_MIN_TILES`.)
 *
 * @example
 * ```ts ignore
 * conv2DWinogradPreferred(x, filter, attrs); // x [16, 28, 28, 128], filter [3, 3, 128, 128]: true
 * ```
 */
export function conv2DWinogradPreferred(
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DAttrs,
): boolean {
  return conv2DWinogradSupports(x, filter, attrs) && filter.shape[3] >= WINOGRAD_MIN_CHANNELS &&
    geometry(x, filter, attrs).tiles >= WINOGRAD_MIN_TILES;
}

/**
 * A transform pass: one invocation per vec4 of its output (`n4` of them, {@linkcode FLAT_WG} per
 * workgroup), whose WGSL is {@linkcode WinogradTransformProgram.bodyLines} run with `j`, the
 * invocation's vec4. Past the end an invocation redoes the last element (same value, same place)
 * rather than return. The F(2×2) and F(4×4) passes (conv2d_winograd4.ts) and dW's
 * (conv2d_backprop_filter_winograd.ts) differ only in their bodies.
 */
export abstract class WinogradTransformProgram extends WebtuneProgram {
  override workgroupSize: [number, number, number] = [FLAT_WG, 1, 1];

  constructor(outShape: number[], n4: number, key: string) {
    super(outShape, { x: [0] }, dispatch2D(Math.ceil(n4 / FLAT_WG)), key);
  }

  /** The WGSL statements of the pass, given `j`. */
  protected abstract bodyLines(): string[];

  getUserCode(): string {
    return `
    ${flatMain(true, FLAT_WG)}
      let j = min(i, uniforms.n4 - 1);
      ${this.bodyLines().join("\n      ")}
    }`;
  }
}

/**
 * WGSL binding, from `j` (a vec4 of a [tiles, channels] tensor with `channels4` vec4s per row),
 * the tile `t`, the channel vec4 `channel`, the image `n` and the tile's row `ty` and column `tx`.
 */
function tileIndexLines(channels4: string, channel: string): string[] {
  return [
    `let t = j / uniforms.${channels4};`,
    `let ${channel} = j - t * uniforms.${channels4};`,
    "let perImage = uniforms.tilesH * uniforms.tilesW;",
    "let n = t / perImage;",
    "let ty = (t - n * perImage) / uniforms.tilesW;",
    "let tx = t - n * perImage - ty * uniforms.tilesW;",
  ];
}

/** The filter transform's uniforms (F(2×2) and F(4×4)). */
const FILTER_UNIFORMS = uniformBlock({ n4: "i32", cinCout4: "i32" });

/**
 * U = G g Gᵀ, one invocation per (ci, vec4 of Cout), for a transform of `xi` components made by
 * {@linkcode FilterTransformProgram.transform}.
 */
export abstract class FilterTransformProgram extends WinogradTransformProgram {
  variableNames = ["w"];
  uniforms = FILTER_UNIFORMS.wgsl;

  constructor(cin: number, cout: number, xi: number, key: string) {
    super([xi, cin, cout], cin * cout / 4, key);
  }

  /**
   * Appends the WGSL of U for the 3×3 taps `g(k)` (k = 3·row + column) to `lines`; returns U's
   * expressions, row-major.
   */
  protected abstract transform(lines: string[], g: (k: number) => string): string[];

  protected bodyLines(): string[] {
    const lines: string[] = [];
    for (let k = 0; k < 9; k++) lines.push(`let g${k} = ld_w(${k} * uniforms.cinCout4 + j);`);
    const u = this.transform(lines, (k) => `g${k}`);
    u.forEach((e, xi) => lines.push(`result[${xi} * uniforms.cinCout4 + j] = ${e};`));
    return lines;
  }
}

/** U = G g Gᵀ of F(2×2, 3×3). */
class WinogradFilterProgram extends FilterTransformProgram {
  constructor(cin: number, cout: number) {
    super(cin, cout, XI, "WinogradFilter");
  }

  protected transform(lines: string[], g: (k: number) => string): string[] {
    return filterTransformLines(lines, g, "");
  }
}

/**
 * Appends to `lines` the WGSL of U = G g Gᵀ for the 3×3 taps `g(k)` (k = 3·row + column), with
 * temporaries suffixed `suffix`; returns the 16 expressions of U, ξ = 4·row + column.
 */
function filterTransformLines(
  lines: string[],
  g: (k: number) => string,
  suffix: string,
): string[] {
  // t = G g (4×3), per filter column c; G = [[1,0,0],[½,½,½],[½,-½,½],[0,0,1]].
  for (let c = 0; c < 3; c++) {
    lines.push(
      `let t0${c}${suffix} = ${g(c)};`,
      `let t1${c}${suffix} = 0.5 * (${g(c)} + ${g(3 + c)} + ${g(6 + c)});`,
      `let t2${c}${suffix} = 0.5 * (${g(c)} - ${g(3 + c)} + ${g(6 + c)});`,
      `let t3${c}${suffix} = ${g(6 + c)};`,
    );
  }
  // U = t Gᵀ (4×4), per row a.
  const u: string[] = [];
  for (let a = 0; a < 4; a++) {
    const t = (c: number) => `t${a}${c}${suffix}`;
    u.push(
      t(0),
      `0.5 * (${t(0)} + ${t(1)} + ${t(2)})`,
      `0.5 * (${t(0)} - ${t(1)} + ${t(2)})`,
      t(2),
    );
  }
  return u;
}

const FLIPPED_FILTER_UNIFORMS = uniformBlock({
  n4: "i32",
  cin: "i32",
  cin4: "i32",
  cout: "i32",
  cout4: "i32",
});

/**
 * For dX: U of the filter rotated by 180° with Cin and Cout swapped, [16, Cout, Cin], one
 * invocation per 4×4 block of (Cin, Cout): it loads the block's 4 Cin rows (vec4s over Cout) of
 * every tap, transforms them, and transposes the block in registers to store vec4s over Cin.
 */
class WinogradFlippedFilterProgram extends WinogradTransformProgram {
  variableNames = ["w"];
  uniforms = FLIPPED_FILTER_UNIFORMS.wgsl;

  constructor(cin: number, cout: number) {
    super([XI, cout, cin], cin * cout / 16, "WinogradFlippedFilter");
  }

  protected bodyLines(): string[] {
    const lines = ["let ci4 = j / uniforms.cout4;", "let co4 = j - ci4 * uniforms.cout4;"];
    const us: string[][] = [];
    for (let r = 0; r < 4; r++) {
      // Tap k of the rotated filter is tap 8 − k of w.
      for (let k = 0; k < 9; k++) {
        lines.push(
          `let g${r}_${k} = ld_w(((${8 - k}) * uniforms.cin + 4 * ci4 + ${r}) * uniforms.cout4 + ` +
            `co4);`,
        );
      }
      filterTransformLines(lines, (k) => `g${r}_${k}`, `_${r}`).forEach((e, xi) =>
        lines.push(`let u${r}_${xi} = ${e};`)
      );
      us.push([...Array(XI).keys()].map((xi) => `u${r}_${xi}`));
    }
    for (let xi = 0; xi < XI; xi++) {
      for (let c = 0; c < 4; c++) {
        const lane = "xyzw"[c];
        lines.push(
          `result[(${xi} * uniforms.cout + 4 * co4 + ${c}) * uniforms.cin4 + ci4] = vec4<f32>(` +
            `(${us[0][xi]}).${lane}, (${us[1][xi]}).${lane}, (${us[2][xi]}).${lane}, ` +
            `(${us[3][xi]}).${lane});`,
        );
      }
    }
    return lines;
  }
}

/** The input transform's uniforms (F(2×2), F(4×4) and dW's input pass). */
export const INPUT_UNIFORMS = uniformBlock({
  n4: "i32",
  cin4: "i32",
  inH: "i32",
  inW: "i32",
  tilesH: "i32",
  tilesW: "i32",
  pads: "vec2<i32>",
  tiles: "i32",
});

/**
 * V = Bᵀ d B, one invocation per (tile, vec4 of Cin), for tiles whose outputs are `step` apart
 * (input tiles overlap by 2) and transforms of `xi` components.
 */
export abstract class InputTransformProgram extends WinogradTransformProgram {
  variableNames = ["x"];
  uniforms = INPUT_UNIFORMS.wgsl;

  constructor(tiles: number, cin: number, xi: number, private readonly step: number, key: string) {
    super([xi, tiles, cin], tiles * cin / 4, key);
  }

  /**
   * Appends the loads of the tile (with {@linkcode InputTransformProgram.tap}, from `y0`, `x0`)
   * and the stores of V to `lines`.
   */
  protected abstract transformLines(lines: string[]): void;

  /**
   * WGSL binding `d${r}${c}` to the tile's input vec4 at (r, c), given `iy${r}`, `ix${c}` and
   * their bounds checks `okY${r}`, `okX${c}`.
   */
  protected tap(r: number, c: number): string[] {
    // Out of the image: read element 0 (always valid), then use 0.
    return [
      `let ok${r}${c} = okY${r} & okX${c};`,
      `let d${r}${c} = select(vec4<f32>(0.0), ld_x(select(0, ` +
      `((row + iy${r}) * uniforms.inW + ix${c}) * uniforms.cin4 + ci4, ok${r}${c})), ` +
      `ok${r}${c});`,
    ];
  }

  protected bodyLines(): string[] {
    const lines = [
      ...tileIndexLines("cin4", "ci4"),
      `let y0 = ${this.step} * ty - uniforms.pads.x;`,
      `let x0 = ${this.step} * tx - uniforms.pads.y;`,
      "let row = n * uniforms.inH;",
    ];
    this.transformLines(lines);
    return lines;
  }
}

/** V = Bᵀ d B of F(2×2, 3×3). */
export class WinogradInputProgram extends InputTransformProgram {
  constructor(tiles: number, cin: number) {
    super(tiles, cin, XI, 2, "WinogradInput");
  }

  protected transformLines(lines: string[]): void {
    for (let r = 0; r < 4; r++) {
      lines.push(
        `let iy${r} = y0 + ${r};`,
        `let okY${r} = (iy${r} >= 0) & (iy${r} < uniforms.inH);`,
      );
    }
    for (let c = 0; c < 4; c++) {
      lines.push(
        `let ix${c} = x0 + ${c};`,
        `let okX${c} = (ix${c} >= 0) & (ix${c} < uniforms.inW);`,
      );
    }
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 4; c++) lines.push(...this.tap(r, c));
    }
    // s = Bᵀ d (rows), then v = s B (columns); Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]].
    const bt = (p: (k: number) => string) => [
      `${p(0)} - ${p(2)}`,
      `${p(1)} + ${p(2)}`,
      `${p(2)} - ${p(1)}`,
      `${p(1)} - ${p(3)}`,
    ];
    for (let c = 0; c < 4; c++) {
      bt((k) => `d${k}${c}`).forEach((e, a) => lines.push(`let s${a}${c} = ${e};`));
    }
    for (let a = 0; a < 4; a++) {
      bt((k) => `s${a}${k}`).forEach((e, b) =>
        lines.push(`result[(${4 * a + b} * uniforms.tiles + t) * uniforms.cin4 + ci4] = ${e};`)
      );
    }
  }
}

export const GEMM_UNIFORMS = uniformBlock({
  cin4: "i32",
  cout4: "i32",
  tiles: "i32",
  groupsCo: "i32",
  groupsM: "i32",
  groups: "i32",
});

/** M[ξ] = V[ξ] · U[ξ]: the WG invocations of a group split Cout, as in conv2d.ts. */
export class WinogradGemmProgram extends WebtuneProgram {
  variableNames = ["v", "u"];
  uniforms = GEMM_UNIFORMS.wgsl;

  constructor(outShape: number[], groups: number, private readonly tile: ConvTile) {
    super(outShape, { x: [0] }, dispatch2D(groups), `WinogradGemm_${tile.tm}_${tile.tc}`);
  }

  getUserCode(): string {
    const { tm, tc } = this.tile;
    const perPos: string[] = [];
    const loads: string[] = [];
    const fmas: string[] = [];
    const stores: string[] = [];
    const accs: string[] = [];
    for (let i = 0; i < tm; i++) {
      // Past the last tile: redo the last one.
      perPos.push(
        `let at${i} = (xi * uniforms.tiles + min(m0 + ${i}, uniforms.tiles - 1)) * uniforms.cin4;`,
      );
      loads.push(`let a${i} = ld_v(at${i} + ci4);`);
      for (let t = 0; t < tc; t++) {
        accs.push(`var acc${i}_${t} = vec4<f32>(0.0);`);
        stores.push(`result[at${i} / uniforms.cin4 * uniforms.cout4 + cc + ${t}] = acc${i}_${t};`);
      }
    }
    for (let j = 0; j < 4; j++) {
      for (let t = 0; t < tc; t++) {
        loads.push(`let b${j}_${t} = ld_u(wb + ${j} * uniforms.cout4 + ${t});`);
      }
    }
    // Accumulator-major, as in conv2d.ts (each spilled accumulator loaded and stored once).
    for (let i = 0; i < tm; i++) {
      for (let t = 0; t < tc; t++) {
        for (let j = 0; j < 4; j++) {
          fmas.push(`acc${i}_${t} = fma(vec4<f32>(a${i}.${"xyzw"[j]}), b${j}_${t}, acc${i}_${t});`);
        }
      }
    }
    return `
    fn main() {
      let group = ${LINEAR_GROUP_WGSL};
      if (group >= uniforms.groups) { return; }
      let coGroup = group % uniforms.groupsCo;
      let rest = group / uniforms.groupsCo;
      let xi = rest / uniforms.groupsM;
      let m0 = (rest - xi * uniforms.groupsM) * ${tm};
      let c0 = (coGroup * ${WG} + i32(localId.x)) * ${tc};
      // Clamp the last tile inward; overlapping tiles write identical values.
      let cc = min(c0, uniforms.cout4 - ${tc});
      ${perPos.join("\n      ")}
      ${accs.join("\n      ")}
      // U row of (ξ, ci = 0), in vec4s, plus our columns.
      var wb = xi * uniforms.cin4 * 4 * uniforms.cout4 + cc;
      for (var ci4 = 0; ci4 < uniforms.cin4; ci4++) {
        ${loads.join("\n        ")}
        ${fmas.join("\n        ")}
        wb += 4 * uniforms.cout4;
      }
      // Unconditional stores (a store under an \`if\` is a per-lane loop on llvmpipe): the lanes
      // and rows past the end computed the same values as the last ones, and store them there.
      ${stores.join("\n      ")}
    }`;
  }
}

/** The output transform's uniforms (F(2×2), F(4×4), and dW's dy pass, which reads like one). */
export const OUTPUT_UNIFORMS = uniformBlock({
  n4: "i32",
  cout4: "i32",
  outH: "i32",
  outW: "i32",
  tilesH: "i32",
  tilesW: "i32",
  tiles: "i32",
});

/**
 * WGSL binding, from `j` (a vec4 of [tiles, Cout]), the tile `t`, the channel vec4 `co4`, the
 * tile's first output row `oy` and column `ox` (tiles of `step` × `step`) and the image's first
 * row `row`.
 */
export function outputTileLines(step: number): string[] {
  return [
    ...tileIndexLines("cout4", "co4"),
    `let oy = ${step} * ty;`,
    `let ox = ${step} * tx;`,
    "let row = n * uniforms.outH;",
  ];
}

/**
 * y = Aᵀ M A, one invocation per (tile, vec4 of Cout) of tiles of `step`² outputs and transforms
 * of `xi` components; with an epilogue, + bias, + residual and ReLU in the store, in the order
 * conv2d.ts's epilogue applies them. The last row and column of tiles may be partial.
 */
export abstract class OutputTransformProgram extends WinogradTransformProgram {
  variableNames: string[];
  uniforms = OUTPUT_UNIFORMS.wgsl;

  constructor(
    outShape: number[],
    n4: number,
    private readonly epilogue: EpilogueKind | null,
    private readonly xi: number,
    private readonly step: number,
    key: string,
  ) {
    const epi = epilogue ? `_bias_${epilogue.residual}_${epilogue.relu}` : "";
    super(outShape, n4, `${key}${epi}`);
    this.variableNames = ["m", ...epilogueInputs(epilogue)];
  }

  /**
   * Appends the transform of `m0`… and its stores (made by
   * {@linkcode OutputTransformProgram.store}) to `lines`.
   */
  protected abstract transformLines(lines: string[]): void;

  /** The WGSL storing `v` at output vec4 `out` (with the epilogue), where all of `inside` hold. */
  protected store(v: string, out: string, inside: string[]): string {
    const store = `result[${out}] = ${this.epilogueOf(v, out)};`;
    return inside.length ? `if (${inside.join(" & ")}) { ${store} }` : store;
  }

  /** The value stored at output vec4 `out`: `v`, then the epilogue's steps. */
  private epilogueOf(v: string, out: string): string {
    if (!this.epilogue) return v;
    let e = `(${v} + bias)`;
    if (this.epilogue.residual) e = `(${e} + ld_residual(${out}))`;
    return this.epilogue.relu ? `max(${e}, vec4<f32>(0.0))` : e;
  }

  protected bodyLines(): string[] {
    const lines = [
      ...outputTileLines(this.step),
      this.epilogue ? "let bias = ld_bias(co4);" : "",
    ];
    for (let k = 0; k < this.xi; k++) {
      lines.push(`let m${k} = ld_m((${k} * uniforms.tiles + t) * uniforms.cout4 + co4);`);
    }
    this.transformLines(lines);
    return lines;
  }
}

/** y = Aᵀ M A of F(2×2, 3×3). */
class WinogradOutputProgram extends OutputTransformProgram {
  constructor(outShape: number[], n4: number, epilogue: EpilogueKind | null) {
    super(outShape, n4, epilogue, XI, 2, "WinogradOutput");
  }

  protected transformLines(lines: string[]): void {
    // r = Aᵀ M (rows), then y = r A (columns); Aᵀ = [[1,1,1,0],[0,1,-1,-1]].
    const at = (p: (k: number) => string) => [
      `${p(0)} + ${p(1)} + ${p(2)}`,
      `${p(1)} - ${p(2)} - ${p(3)}`,
    ];
    for (let c = 0; c < 4; c++) {
      at((k) => `m${4 * k + c}`).forEach((e, a) => lines.push(`let r${a}${c} = ${e};`));
    }
    for (let a = 0; a < 2; a++) {
      at((k) => `r${a}${k}`).forEach((e, b) => {
        const oy = a === 0 ? "oy" : "oy + 1", ox = b === 0 ? "ox" : "ox + 1";
        const inside = [
          a === 1 ? "(oy + 1 < uniforms.outH)" : "",
          b === 1 ? "(ox + 1 < uniforms.outW)" : "",
        ]
          .filter((s) => s);
        const out = `((row + ${oy}) * uniforms.outW + ${ox}) * uniforms.cout4 + co4`;
        lines.push(this.store(e, out, inside));
      });
    }
  }
}

/** Floats of the intermediate tensors, for the texture-size check. */
function intermediates(g: Geometry): tf.TensorInfo[] {
  const info = (shape: number[]) => ({ shape, dtype: "float32", dataId: {} }) as tf.TensorInfo;
  return [info([XI, g.tiles, g.cin]), info([XI, g.cin, g.cout]), info([XI, g.tiles, g.cout])];
}

/** Whether the operands and intermediates of this call fit the device's textures. */
export function conv2DWinogradFits(
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DAttrs,
  backend: WebGPUBackend,
): boolean {
  return texturesFit(backend, [x, filter, ...intermediates(geometry(x, filter, attrs))]);
}

/**
 * U = G g Gᵀ for a [3, 3, Cin, Cout] filter: [16, Cin, Cout], component ξ = 4·row + column of
 * the transformed 4×4 tile. Run per call (the weights change every step); it writes 16/9 of the
 * filter's floats, so on small problems it is most of the variant's time (see
 * {@linkcode WINOGRAD_MIN_TILES}).
 *
 * @returns a new float32 tensor, owned by the caller.
 */
export function winogradFilterTransform(
  filter: tf.TensorInfo,
  backend: WebGPUBackend,
  textures: true | TextureKind = true,
): tf.TensorInfo {
  const [, , cin, cout] = filter.shape;
  return runFilterTransform(new WinogradFilterProgram(cin, cout), filter, backend, textures);
}

/** Runs a filter transform `program` made for `filter`'s Cin and Cout (F(2×2) or F(4×4)). */
export function runFilterTransform(
  program: FilterTransformProgram,
  filter: tf.TensorInfo,
  backend: WebGPUBackend,
  textures: true | TextureKind,
): tf.TensorInfo {
  const n4 = filter.shape[2] * filter.shape[3] / 4;
  const uniforms = FILTER_UNIFORMS.data({ n4, cinCout4: n4 });
  return runWithOperands(backend, program, [filter], uniforms, textures, [SLOTS.filter]);
}

/**
 * The forward conv by Winograd F(2×2, 3×3). Callers check {@linkcode conv2DWinogradSupports}
 * and {@linkcode conv2DWinogradFits} first.
 *
 * @param textures the kind of texture operands: `true` for the fastest this WebGPU allows.
 * @param epilogue bias, residual and ReLU applied in the output transform's store (the `eval`
 *   BatchNorm folded into the conv, as conv2d.ts's `conv2DGemm` takes it).
 * @returns a new float32 NHWC tensor, owned by the caller.
 *
 * @example
 * ```ts ignore
 * if (conv2DWinogradSupports(x, w, attrs) && conv2DWinogradFits(x, w, attrs, backend)) {
 *   return conv2DWinograd(x, w, attrs, backend);
 * }
 * ```
 */
export function conv2DWinograd(
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DAttrs,
  backend: WebGPUBackend,
  tile: ConvTile = winogradTile(filter.shape[3]),
  textures: true | TextureKind = true,
  epilogue?: Conv2DEpilogue,
): tf.TensorInfo {
  const u = winogradFilterTransform(filter, backend, textures);
  const y = winogradStages(x, u, geometry(x, filter, attrs), backend, tile, textures, epilogue);
  disposeAll(backend, [u]);
  return y;
}

/**
 * {@linkcode conv2DWinograd} with U = {@linkcode winogradFilterTransform} of the filter given:
 * for a filter that stays the same across calls (an `eval` forward's folded conv), whose
 * transform can then be made once.
 *
 * @param u [16, Cin, Cout], the transform of a [3, 3, Cin, Cout] filter.
 * @returns a new float32 NHWC tensor, owned by the caller.
 */
export function conv2DWinogradTransformed(
  x: tf.TensorInfo,
  u: tf.TensorInfo,
  attrs: Conv2DAttrs,
  backend: WebGPUBackend,
  tile: ConvTile = winogradTile(u.shape[2]),
  textures: true | TextureKind = true,
  epilogue?: Conv2DEpilogue,
): tf.TensorInfo {
  const [, cin, cout] = u.shape;
  const filter = { shape: [3, 3, cin, cout], dtype: "float32", dataId: {} } as tf.TensorInfo;
  return winogradStages(x, u, geometry(x, filter, attrs), backend, tile, textures, epilogue);
}

/** One Winograd F(m×m, 3×3): its transforms' component count and its input and output passes. */
export interface WinogradPasses {
  xi: number;
  input(tiles: number, cin: number): WebtuneProgram;
  output(outShape: number[], n4: number, epilogue: EpilogueKind | null): WebtuneProgram;
}

/** F(2×2, 3×3)'s passes. */
const F2_PASSES: WinogradPasses = {
  xi: XI,
  input: (tiles, cin) => new WinogradInputProgram(tiles, cin),
  output: (outShape, n4, epilogue) => new WinogradOutputProgram(outShape, n4, epilogue),
};

/**
 * The input transform, the GEMMs (one per component) and the output transform, given U; of
 * F(2×2) unless `passes` says otherwise (conv2d_winograd4.ts).
 */
export function winogradStages(
  x: tf.TensorInfo,
  u: tf.TensorInfo,
  g: Geometry,
  backend: WebGPUBackend,
  tile: ConvTile,
  textures: true | TextureKind,
  epilogue?: Conv2DEpilogue,
  passes: WinogradPasses = F2_PASSES,
): tf.TensorInfo {
  const cin4 = g.cin / 4, cout4 = g.cout / 4;

  const inN4 = g.tiles * cin4;
  const v = runWithOperands(
    backend,
    passes.input(g.tiles, g.cin),
    [x],
    INPUT_UNIFORMS.data({
      n4: inN4,
      cin4,
      inH: g.inH,
      inW: g.inW,
      tilesH: g.tilesH,
      tilesW: g.tilesW,
      pads: [g.padTop, g.padLeft],
      tiles: g.tiles,
    }),
    textures,
    [SLOTS.input],
  );

  const groupsCo = Math.ceil(cout4 / tile.tc / WG);
  const groupsM = Math.ceil(g.tiles / tile.tm);
  const groups = passes.xi * groupsM * groupsCo;
  const m = runWithOperands(
    backend,
    new WinogradGemmProgram([passes.xi, g.tiles, g.cout], groups, tile),
    [v, u],
    GEMM_UNIFORMS.data({ cin4, cout4, tiles: g.tiles, groupsCo, groupsM, groups }),
    textures,
    [SLOTS.v, SLOTS.u],
  );

  const outN4 = g.tiles * cout4;
  const epilogueKind = epilogue
    ? { residual: epilogue.residual !== undefined, relu: epilogue.relu }
    : null;
  const y = runWithOperands(
    backend,
    passes.output([g.n, g.outH, g.outW, g.cout], outN4, epilogueKind),
    [m, ...(epilogue ? [epilogue.bias] : []), ...(epilogue?.residual ? [epilogue.residual] : [])],
    OUTPUT_UNIFORMS.data({
      n4: outN4,
      cout4,
      outH: g.outH,
      outW: g.outW,
      tilesH: g.tilesH,
      tilesW: g.tilesW,
      tiles: g.tiles,
    }),
    textures,
    [SLOTS.m],
  );
  disposeAll(backend, [v, m]);
  return y;
}

/** Whether {@linkcode conv2DBackpropInputWinograd} handles these inputs: dX of a conv {@linkcode conv2DWinogradSupports} handles. */
export function derInputWinogradSupports(
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
): boolean {
  const x = { shape: attrs.inputShape, dtype: dy.dtype, dataId: {} } as tf.TensorInfo;
  const forward = { strides: attrs.strides, pad: attrs.pad, dataFormat: attrs.dataFormat };
  // dX's GEMM makes Cin columns: the tile needs as many as the forward's does of Cout.
  return conv2DWinogradSupports(x, filter, forward) && dy.shape.length === 4 &&
    filter.shape[2] >= 4 * winogradTile(filter.shape[2]).tc;
}

/**
 * {@linkcode WINOGRAD_MIN_TILES} for dX, whose direct kernel (texture-fma) is slower: CPU time
 * interleaved with it in one process (cli/bench_winograd.ts --dx --cpu), batch 16: 64 px layer1
 * (1024 tiles) 1.26×, layer2 (256) 1.93×, layer3 (64) 1.33×, layer4 (16) 0.47×; 224 px layer1
 * 1.08×, layer2 1.61×, layer3 2.43×, layer4 (256) 1.59×.
 */
export const DER_INPUT_MIN_TILES = 64;

/**
 * Whether `auto` and `fast` may run the Winograd dX: as {@linkcode conv2DWinogradPreferred}, with
 * Cin for Cout (dX's output channels) and {@linkcode DER_INPUT_MIN_TILES} of dX's tiles.
 */
export function derInputWinogradPreferred(
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
): boolean {
  return derInputWinogradSupports(dy, filter, attrs) &&
    filter.shape[2] >= WINOGRAD_MIN_CHANNELS &&
    derInputGeometry(filter, attrs).tiles >= DER_INPUT_MIN_TILES;
}

/** Whether the operands and intermediates of this dX fit the device's textures. */
export function derInputWinogradFits(
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
  backend: WebGPUBackend,
): boolean {
  return texturesFit(backend, [dy, filter, ...intermediates(derInputGeometry(filter, attrs))]);
}

/**
 * dX of a 3×3 stride-1 conv by Winograd F(2×2, 3×3): the forward algorithm on dy with the
 * filter rotated by 180° and Cin, Cout swapped (both folded into the filter transform). Callers
 * check {@linkcode derInputWinogradSupports} and {@linkcode derInputWinogradFits} first.
 *
 * @returns a new float32 NHWC tensor of `attrs.inputShape`, owned by the caller.
 *
 * @example
 * ```ts ignore
 * if (derInputWinogradSupports(dy, w, attrs) && derInputWinogradFits(dy, w, attrs, backend)) {
 *   return conv2DBackpropInputWinograd(dy, w, attrs, backend);
 * }
 * ```
 */
export function conv2DBackpropInputWinograd(
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
  backend: WebGPUBackend,
  tile: ConvTile = winogradTile(filter.shape[2]),
  textures: true | TextureKind = true,
): tf.TensorInfo {
  const [, , cin, cout] = filter.shape;
  const n4 = cin * cout / 16;
  const u = runWithOperands(
    backend,
    new WinogradFlippedFilterProgram(cin, cout),
    [filter],
    FLIPPED_FILTER_UNIFORMS.data({ n4, cin, cin4: cin / 4, cout, cout4: cout / 4 }),
    textures,
    [SLOTS.filter],
  );
  const dx = winogradStages(dy, u, derInputGeometry(filter, attrs), backend, tile, textures);
  disposeAll(backend, [u]);
  return dx;
}
