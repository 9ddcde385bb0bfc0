/**
 * Winograd F(4×4, 3×3) for the `eval` forward's folded 3×3 stride-1 NHWC convs: each 4×4 block
 * of outputs from a 6×6 input tile, with 36 multiplies per (input, output) channel pair where
 * the direct conv needs 144 (F(2×2, 3×3), conv2d_winograd.ts: 16 per 2×2 block, i.e. 64 per
 * 4×4). Per output it also writes and reads fewer transformed floats: 36 per 16 outputs where
 * F(2×2) has 16 per 4, which matters on llvmpipe, where the passes between the GEMMs are copies
 * of activation-sized tensors into textures. The same four passes as conv2d_winograd.ts (its
 * GEMM program, with 36 components), with U = G g Gᵀ made once per fold
 * ({@linkcode winograd4FilterTransform}, kept by models/conv_bn.ts) and never per call: the
 * variant runs only where a fold gave it U, so never in training, whose summation order it
 * would change.
 *
 * The matrices are the standard ones (Lavin & Gray 2015, points 0, ±1, ±2, ∞); Bᵀ's and Aᵀ's
 * coefficients (0, ±1, ±2, ±4, ±5, ±8) are exact in float32, G's (¼, ⅙, 1/12, 1/24) are not,
 * and the larger coefficients amplify rounding: it is less accurate than F(2×2) (see
 * {@linkcode WINOGRAD4_MIN_TILES} for the numbers against float64).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import type { Conv2DAttrs, Conv2DEpilogue, ConvTile, EpilogueKind } from "./conv2d.ts";
import {
  conv2DWinogradSupports,
  FilterTransformProgram,
  type Geometry,
  geometry,
  InputTransformProgram,
  OutputTransformProgram,
  runFilterTransform,
  type WinogradPasses,
  winogradStages,
  winogradTile,
} from "./conv2d_winograd.ts";
import { type TextureKind, texturesFit } from "./texture_operands.ts";

/** Winograd components of F(4×4, 3×3): a 6×6 transformed tile. */
export const XI4 = 36;

/** G (6×3): U = G g Gᵀ. */
const G = [
  [1 / 4, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6],
  [1 / 24, -1 / 12, 1 / 6],
  [0, 0, 1],
];
/** Bᵀ (6×6): V = Bᵀ d B. */
const BT = [
  [4, 0, -5, 0, 1, 0],
  [0, -4, -4, 1, 1, 0],
  [0, 4, -4, -1, 1, 0],
  [0, -2, -1, 2, 1, 0],
  [0, 2, -1, -2, 1, 0],
  [0, 4, 0, -5, 0, 1],
];
/** Aᵀ (4×6): y = Aᵀ M A. */
const AT = [
  [1, 1, 1, 1, 1, 0],
  [0, 1, -1, 2, -2, 0],
  [0, 1, 1, 4, 4, 0],
  [0, 1, -1, 8, -8, 1],
];

/** WGSL of Σ coeffs[k]·terms[k] over the nonzero coefficients (±1 without a multiply). */
function combination(coeffs: readonly number[], terms: readonly string[]): string {
  let e = "";
  coeffs.forEach((a, k) => {
    if (a === 0) return;
    const mag = Math.abs(a);
    const term = mag === 1 ? terms[k] : `${wgslFloat(mag)} * ${terms[k]}`;
    e = e === "" ? (a < 0 ? `-${term}` : term) : `${e} ${a < 0 ? "-" : "+"} ${term}`;
  });
  return `(${e})`;
}

/** A WGSL f32 literal of `v` (enough digits to round to the nearest float32). */
function wgslFloat(v: number): string {
  return Number.isInteger(v) ? `${v}.0` : `${Math.fround(v).toPrecision(9)}`;
}

/**
 * Appends the WGSL of P = L X Lᵀ' for a 2-D tile: `rows` (p × q) applied down the columns of X
 * (q × q' named by `x(row, col)`), then `cols` (p' × q') along its rows; returns the names of
 * P's p × p' entries, row-major. `name` prefixes the temporaries.
 */
function transform2D(
  lines: string[],
  rows: readonly (readonly number[])[],
  cols: readonly (readonly number[])[],
  x: (row: number, col: number) => string,
  name: string,
): string[] {
  const q = rows[0].length, qc = cols[0].length;
  for (let c = 0; c < qc; c++) {
    const column = [...Array(q).keys()].map((k) => x(k, c));
    rows.forEach((coeffs, a) =>
      lines.push(`let ${name}s${a}_${c} = ${combination(coeffs, column)};`)
    );
  }
  const out: string[] = [];
  for (let a = 0; a < rows.length; a++) {
    const row = [...Array(qc).keys()].map((k) => `${name}s${a}_${k}`);
    cols.forEach((coeffs, b) => {
      lines.push(`let ${name}p${a}_${b} = ${combination(coeffs, row)};`);
      out.push(`${name}p${a}_${b}`);
    });
  }
  return out;
}

/** U = G g Gᵀ of F(4×4, 3×3). */
class Winograd4FilterProgram extends FilterTransformProgram {
  constructor(cin: number, cout: number) {
    super(cin, cout, XI4, "Winograd4Filter");
  }

  protected transform(lines: string[], g: (k: number) => string): string[] {
    return transform2D(lines, G, G, (r, c) => g(3 * r + c), "");
  }
}

/** V = Bᵀ d B of F(4×4, 3×3): 6×6 tiles overlapping by 2. */
class Winograd4InputProgram extends InputTransformProgram {
  constructor(tiles: number, cin: number) {
    super(tiles, cin, XI4, 4, "Winograd4Input");
  }

  protected transformLines(lines: string[]): void {
    for (let r = 0; r < 6; r++) {
      lines.push(
        `let iy${r} = y0 + ${r};`,
        `let okY${r} = (iy${r} >= 0) & (iy${r} < uniforms.inH);`,
      );
      lines.push(
        `let ix${r} = x0 + ${r};`,
        `let okX${r} = (ix${r} >= 0) & (ix${r} < uniforms.inW);`,
      );
    }
    for (let r = 0; r < 6; r++) {
      for (let c = 0; c < 6; c++) lines.push(...this.tap(r, c));
    }
    const v = transform2D(lines, BT, BT, (r, c) => `d${r}${c}`, "");
    v.forEach((e, xi) =>
      lines.push(`result[(${xi} * uniforms.tiles + t) * uniforms.cin4 + ci4] = ${e};`)
    );
  }
}

/** y = Aᵀ M A of F(4×4, 3×3). */
class Winograd4OutputProgram extends OutputTransformProgram {
  constructor(outShape: number[], n4: number, epilogue: EpilogueKind | null) {
    super(outShape, n4, epilogue, XI4, 4, "Winograd4Output");
  }

  protected transformLines(lines: string[]): void {
    const y = transform2D(lines, AT, AT, (r, c) => `m${6 * r + c}`, "");
    y.forEach((e, k) => {
      const a = k >> 2, b = k & 3;
      const inside = [
        a > 0 ? `(oy + ${a} < uniforms.outH)` : "",
        b > 0 ? `(ox + ${b} < uniforms.outW)` : "",
      ].filter((s) => s);
      const out = `((row + oy + ${a}) * uniforms.outW + ox + ${b}) * uniforms.cout4 + co4`;
      lines.push(this.store(e, out, inside));
    });
  }
}

/** The passes' sizes for conv(x, a 3×3 filter of `cout` outputs) by F(4×4, 3×3). */
function geometry4(x: tf.TensorInfo, cout: number, attrs: Conv2DAttrs): Geometry {
  const filter = { shape: [3, 3, x.shape[3], cout], dtype: "float32", dataId: {} };
  return geometry(x, filter as tf.TensorInfo, attrs, 4);
}

/** F(4×4, 3×3)'s passes. */
const F4_PASSES: WinogradPasses = {
  xi: XI4,
  input: (tiles, cin) => new Winograd4InputProgram(tiles, cin),
  output: (outShape, n4, epilogue) => new Winograd4OutputProgram(outShape, n4, epilogue),
};

/**
 * The fewest 4×4 output blocks (batch · ⌈H/4⌉ · ⌈W/4⌉) for which the variant is offered. CPU time
 * interleaved with the direct `texture` kernel and F(2×2) given its U (`winograd-u`) in one
 * process (cli/bench_infer.ts --cpu, batch 16, with the folded epilogue; medians of 3–5 rounds'
 * ratios to texture on the loaded shared machine): 64 px layer1 (256 tiles) 1.17× and 1.35×,
 * layer2 (64) 1.39–1.40×, layer3 (16 tiles of 4×4 maps) 1.66–1.67× (F(2×2) 1.21–1.30×);
 * 224 px layer1 (3136) 1.08× and 1.13×, layer2 (784) 1.60–1.70×, layer3 (256) 1.83× and 2.67×,
 * layer4 (64) 3.05× and 3.10× (F(2×2) 1.61× and 2.74×).
 */
export const WINOGRAD4_MIN_TILES = 16;

/**
 * The smallest output map side for which the variant is offered: on 2×2 maps (64 px layer4) a
 * tile computes 16 outputs of which 4 are kept, and it ran 0.40–0.41× the direct kernel.
 */
export const WINOGRAD4_MIN_MAP = 4;

/**
 * Whether {@linkcode conv2DWinograd4} handles and may run this call: a conv whose shape F(2×2)'s
 * support check accepts (3×3, stride 1, NHWC, float32, channels in vec4s), given U [36, Cin,
 * Cout] (so only an `eval` forward's folded conv: the training path never has it), with enough
 * tiles ({@linkcode WINOGRAD4_MIN_TILES}) on maps of at least {@linkcode WINOGRAD4_MIN_MAP}, and
 * operands that fit the device's textures.
 *
 * @example
 * ```ts ignore
 * conv2DWinograd4Preferred(x, w, u, attrs, backend); // x [16, 56, 56, 64], u [36, 64, 64]: true
 * ```
 */
export function conv2DWinograd4Preferred(
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  u: tf.TensorInfo | undefined,
  attrs: Conv2DAttrs,
  backend: WebGPUBackend,
): boolean {
  return conv2DWinograd4Offered(x, filter, u, attrs) &&
    texturesFit(backend, [x, u!, ...intermediates(geometry4(x, filter.shape[3], attrs))]);
}

/**
 * {@linkcode conv2DWinograd4Preferred}'s rule by shapes alone, without the device's texture
 * limit: what a report that has no backend at hand (`describeVariant`) can tell.
 *
 * @example
 * ```ts ignore
 * conv2DWinograd4Offered(x, w, u, attrs); // x [16, 56, 56, 64], u [36, 64, 64]: true
 * ```
 */
export function conv2DWinograd4Offered(
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  u: tf.TensorInfo | undefined,
  attrs: Conv2DAttrs,
): boolean {
  if (!u || u.shape.join() !== [XI4, filter.shape[2], filter.shape[3]].join()) return false;
  if (!conv2DWinogradSupports(x, filter, attrs)) return false;
  const g = geometry4(x, filter.shape[3], attrs);
  return g.tiles >= WINOGRAD4_MIN_TILES && g.outH >= WINOGRAD4_MIN_MAP &&
    g.outW >= WINOGRAD4_MIN_MAP;
}

/** Whether a [3, 3, Cin, Cout] filter's convs can run F(4×4) and its U fits the textures. */
export function winograd4FilterWanted(
  filter: tf.TensorInfo,
  attrs: Conv2DAttrs,
  backend: WebGPUBackend,
): boolean {
  // The support check reads only x's rank and dtype of x.
  const x = { dataId: {}, shape: [1, 3, 3, filter.shape[2]], dtype: "float32" } as tf.TensorInfo;
  const u = { dataId: {}, shape: [XI4, filter.shape[2], filter.shape[3]], dtype: "float32" };
  return filter.shape.length === 4 && conv2DWinogradSupports(x, filter, attrs) &&
    texturesFit(backend, [filter, u as tf.TensorInfo]);
}

function intermediates(g: Geometry): tf.TensorInfo[] {
  const info = (shape: number[]) => ({ shape, dtype: "float32", dataId: {} }) as tf.TensorInfo;
  return [info([XI4, g.tiles, g.cin]), info([XI4, g.tiles, g.cout])];
}

/**
 * U = G g Gᵀ of a [3, 3, Cin, Cout] filter: [36, Cin, Cout], component ξ = 6·row + column.
 *
 * @returns a new float32 tensor, owned by the caller.
 */
export function winograd4FilterTransform(
  filter: tf.TensorInfo,
  backend: WebGPUBackend,
  textures: true | TextureKind = true,
): tf.TensorInfo {
  const [, , cin, cout] = filter.shape;
  return runFilterTransform(new Winograd4FilterProgram(cin, cout), filter, backend, textures);
}

/**
 * The forward conv by Winograd F(4×4, 3×3), given U = {@linkcode winograd4FilterTransform} of
 * its filter. Callers check {@linkcode conv2DWinograd4Preferred} first.
 *
 * @returns a new float32 NHWC tensor, owned by the caller.
 *
 * @example
 * ```ts ignore
 * if (conv2DWinograd4Preferred(x, w, u, attrs, backend)) y = conv2DWinograd4(x, u, attrs, backend);
 * ```
 */
export function conv2DWinograd4(
  x: tf.TensorInfo,
  u: tf.TensorInfo,
  attrs: Conv2DAttrs,
  backend: WebGPUBackend,
  tile: ConvTile = winogradTile(u.shape[2]),
  textures: true | TextureKind = true,
  epilogue?: Conv2DEpilogue,
): tf.TensorInfo {
  return winogradStages(
    x,
    u,
    geometry4(x, u.shape[2], attrs),
    backend,
    tile,
    textures,
    epilogue,
    F4_PASSES,
  );
}
