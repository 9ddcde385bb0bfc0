/**
 * Winograd F(3×3, 2×2) for the weight gradient (dW, `Conv2DBackpropFilter`) of 3×3, stride-1
 * NHWC convs: dW[ky, kx, ci, co] = Σ_{n, y, x} x[n, y + ky − pad, x + kx − pad, ci] ·
 * dy[n, y, x, co].
 *
 * Why: on llvmpipe the direct dW kernel (conv2d_backprop_filter.ts) is bound by texel fetches;
 * as for the forward conv (conv2d_winograd.ts), Winograd does the same reduction with 2.25× fewer
 * multiplies per fetched operand pair. dy's positions are cut into 2×2 tiles; each tile reads the
 * same 4×4 input patch (stride 2) as the forward F(2×2, 3×3) input transform of that conv, and
 * the 1-D identity behind it is the forward's transposed: with F(2×2, 3×3)'s Bᵀ (4×4), G (4×3)
 * and A (4×2), w_j = Σ_i d_{i+j} e_i (j < 3, i < 2) equals Gᵀ [(Bᵀ d) ⊙ (A e)]. Four passes:
 *
 * 1. input transform of x, P = Bᵀ d B per 4×4 patch d: conv2d_winograd.ts's own pass, reused →
 *    [16, tiles, Cin];
 * 2. dy transform, Q = A e Aᵀ per 2×2 tile e of dy (zeros past dy's edge), with the ½ of G
 *    moved here (exact in float32) → [16, tiles, Cout];
 * 3. 16 GEMMs with a long reduction, M[ξ] = P[ξ]ᵀ · Q[ξ] ([Cin, Cout], K = tiles),
 *    register-blocked like the direct dW kernel (TK Cin rows × TC vec4s of Cout per invocation),
 *    split over the tiles only where needed (see {@linkcode derFilterWinogradSplits});
 * 4. output transform, dW = G′ᵀ M G′ per (ci, vec4 of Cout), adding the splits' partial sums
 *    first → [3, 3, Cin, Cout].
 *
 * Its coefficients (0, ±1, ±½) are exact in float32, so it rounds only in the sums, in a
 * different order from the direct kernel; see {@linkcode DER_FILTER_WINOGRAD_MIN_CHANNELS} and
 * {@linkcode DER_FILTER_WINOGRAD_MIN_TILES} for where it runs and why.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  dispatch2D,
  disposeAll,
  LINEAR_GROUP_WGSL,
  uniformBlock,
  WebtuneProgram,
  WG,
} from "./kernel_util.ts";
import type { Conv2DAttrs } from "./conv2d.ts";
import { type Conv2DBackpropFilterAttrs, LOOP_STEP_BUDGET } from "./conv2d_backprop_filter.ts";
import {
  conv2DWinogradSupports,
  type Geometry,
  geometry,
  INPUT_UNIFORMS,
  OUTPUT_UNIFORMS,
  outputTileLines,
  SLOTS,
  WinogradInputProgram,
  WinogradTransformProgram,
  XI,
} from "./conv2d_winograd.ts";
import { runWithOperands, type TextureKind, texturesFit } from "./texture_operands.ts";

/** The GEMM stage's register tile: TK rows of Cin × TC vec4s of Cout per invocation. */
export interface DerFilterWinogradTile {
  tk: number;
  tc: number;
  /** Tiles per step of the reduction loop (default 1). */
  tt?: number;
}

/**
 * The GEMM tile for a filter of `cin` × `cout` channels: the direct texture dW kernel's tiles
 * (conv2d_backprop_filter.ts `derFilterTextureTile`), whose loads per FMA are the same.
 *
 * @example
 * ```ts
 * derFilterWinogradTile(128, 128); // { tk: 16, tc: 4 }
 * ```
 */
export function derFilterWinogradTile(cin: number, cout: number): DerFilterWinogradTile {
  return { tk: cin % 16 === 0 ? 16 : 8, tc: cout >= 4 * 4 * WG ? 4 : 2 };
}

/** The conv's geometry from dW's inputs (the forward conv's; its output is dy). */
function derFilterGeometry(x: tf.TensorInfo, attrs: Conv2DBackpropFilterAttrs): Geometry {
  const filter = { shape: attrs.filterShape, dtype: "float32", dataId: {} } as tf.TensorInfo;
  return geometry(x, filter, forwardAttrs(attrs));
}

function forwardAttrs(attrs: Conv2DBackpropFilterAttrs): Conv2DAttrs {
  return {
    strides: attrs.strides,
    pad: attrs.pad,
    dataFormat: attrs.dataFormat,
    dimRoundingMode: attrs.dimRoundingMode,
  } as Conv2DAttrs;
}

/**
 * Whether {@linkcode conv2DBackpropFilterWinograd} handles these inputs: the dW of a conv
 * conv2d_winograd.ts handles (3×3, stride 1, NHWC, float32, channels multiples of 4), with at
 * least a tile's worth of channels.
 */
export function derFilterWinogradSupports(
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
): boolean {
  const filter = { shape: attrs.filterShape, dtype: "float32", dataId: {} } as tf.TensorInfo;
  const [, , cin, cout] = attrs.filterShape;
  const tile = derFilterWinogradTile(cin, cout);
  return dy.dtype === "float32" && dy.shape.length === 4 &&
    conv2DWinogradSupports(x, filter, forwardAttrs(attrs)) && cin >= tile.tk &&
    cout >= 4 * tile.tc;
}

/**
 * The fewest channels (Cin and Cout) for which `auto` and `fast` may run the Winograd dW. Not a
 * numerics gate, unlike the forward's and dX's (conv2d_winograd.ts `WINOGRAD_MIN_CHANNELS`): a
 * conv's dW feeds only its own weights' update, never another layer's gradient, so it cannot move
 * the ResNet-18 conv1 gradient's ReLU knife edge. Forced onto every 3×3 stride-1 conv (64 channels
 * included, any tile count), core/parity_test.ts, train_step_test.ts and frozen_bn_test.ts pass
 * unchanged (conv1 gradient 1.64e-3 of its 5e-3 bound, as with the direct kernel), and
 * resnet50_parity_test.ts with it on every 3×3 stride-1 conv of ≥ 128 channels. Against a
 * float64 reference (cli/bench_winograd.ts --dw, batch 1) its error is 0.7–1.9× the
 * direct kernel's (1.4e-7–1.3e-6 of the largest value). 128 is for speed: on layer1 (64
 * channels) it was no steady win, CPU time interleaved with the direct `texture` variant in one
 * process, batch 16, four runs on the shared machine: 224 px 0.62–1.21×, 64 px 0.70–1.19×.
 */
export const DER_FILTER_WINOGRAD_MIN_CHANNELS = 128;

/**
 * The fewest tiles (batch · ⌈Ho/2⌉ · ⌈Wo/2⌉) for which the variant is offered: the output
 * transform and M's 16·Cin·Cout floats cost the same at any batch. CPU time interleaved with the
 * direct `texture` variant in one process (cli/bench_winograd.ts --dw --cpu, batch 16, three
 * runs on the shared 2-core machine, so ranges): 64 px layer2 (256 tiles) 1.10–1.26×, layer3
 * (64) 0.97–1.68×, layer4 (16) 0.58–0.64× (one outlier run 1.74×); 224 px layer2 (3136)
 * 0.96–1.55×, layer3 (784) 1.57–2.47×, layer4 (256) 1.12–3.02×. `auto` times it against the
 * direct kernels where it is offered and picked it on all five such shapes of a 64 and 224 px
 * ResNet-18 step (batch 16).
 */
export const DER_FILTER_WINOGRAD_MIN_TILES = 64;

/**
 * Whether `auto` and `fast` may run the Winograd dW for this call: it handles it, it has
 * {@linkcode DER_FILTER_WINOGRAD_MIN_CHANNELS} channels and
 * {@linkcode DER_FILTER_WINOGRAD_MIN_TILES} tiles.
 *
 * @example
 * ```ts ignore
 * derFilterWinogradPreferred(x, dy, attrs); // x [16, 28, 28, 128], 3×3 128 → 128, pad 1: true
 * ```
 */
export function derFilterWinogradPreferred(
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
): boolean {
  const [, , cin, cout] = attrs.filterShape;
  return derFilterWinogradSupports(x, dy, attrs) &&
    Math.min(cin, cout) >= DER_FILTER_WINOGRAD_MIN_CHANNELS &&
    derFilterGeometry(x, attrs).tiles >= DER_FILTER_WINOGRAD_MIN_TILES;
}

/** Floats of M's partial sums one call may hold (64 MiB). */
const MAX_PARTIAL_FLOATS = 16 << 20;
/** Split the tiles until there are about this many workgroups (2 cores, some slack). */
const TARGET_WORKGROUPS = 32;

/**
 * Into how many parts the GEMMs' reduction over `tiles` is split: enough for each invocation to
 * stay within llvmpipe's {@linkcode LOOP_STEP_BUDGET} (one loop step per tile) and for about
 * {@linkcode TARGET_WORKGROUPS} workgroups, at most 64 MiB of partial sums.
 *
 * @throws if the loop budget needs more partial sums than that.
 * @example
 * ```ts
 * derFilterWinogradSplits(3136, 128, 128, { tk: 16, tc: 4 }); // 1 (128 workgroups already)
 * ```
 */
export function derFilterWinogradSplits(
  tiles: number,
  cin: number,
  cout: number,
  tile: DerFilterWinogradTile,
): number {
  const workgroups = XI * Math.ceil(cin / tile.tk) * Math.ceil(cout / 4 / tile.tc / WG);
  const needed = Math.ceil(tiles / (LOOP_STEP_BUDGET - 1));
  const maxSplits = Math.floor(MAX_PARTIAL_FLOATS / (XI * cin * cout));
  if (needed > maxSplits) {
    throw new Error(
      `Conv2DBackpropFilter (Winograd): ${tiles} tiles need more loop steps than llvmpipe ` +
        `allows per invocation (${LOOP_STEP_BUDGET}) within ${maxSplits} splits`,
    );
  }
  const wanted = Math.ceil(TARGET_WORKGROUPS / workgroups);
  const splits = Math.max(1, Math.min(Math.max(wanted, needed), tiles, maxSplits));
  // No empty split.
  return Math.ceil(tiles / Math.ceil(tiles / splits));
}

/**
 * Q = A′ e A′ᵀ, one invocation per (tile, vec4 of Cout), with A′ = [[1, 0], [½, ½], [½, −½],
 * [0, −1]]: F(2×2, 3×3)'s A with G's ½ moved in (rows 1 and 2), so the output transform adds only.
 */
class DerFilterWinogradDyProgram extends WinogradTransformProgram {
  variableNames = ["dy"];
  // dy is read as the forward's output transform writes y: the same uniforms and tile indexing.
  uniforms = OUTPUT_UNIFORMS.wgsl;

  constructor(tiles: number, cout: number) {
    super([XI, tiles, cout], tiles * cout / 4, "WinogradDwDy");
  }

  protected bodyLines(): string[] {
    const lines = outputTileLines(2);
    for (let r = 0; r < 2; r++) {
      for (let c = 0; c < 2; c++) {
        // Past dy's edge (odd sizes): read element 0 (always valid), then use 0.
        const ok = [
          r === 1 ? "(oy + 1 < uniforms.outH)" : "",
          c === 1 ? "(ox + 1 < uniforms.outW)" : "",
        ]
          .filter((s) => s);
        const at = `((row + oy + ${r}) * uniforms.outW + ox + ${c}) * uniforms.cout4 + co4`;
        if (ok.length === 0) {
          lines.push(`let e${r}${c} = ld_dy(${at});`);
        } else {
          const cond = ok.join(" & ");
          lines.push(
            `let e${r}${c} = select(vec4<f32>(0.0), ld_dy(select(0, ${at}, ${cond})), ${cond});`,
          );
        }
      }
    }
    const a = (p: (k: number) => string) => [
      p(0),
      `0.5 * (${p(0)} + ${p(1)})`,
      `0.5 * (${p(0)} - ${p(1)})`,
      `-${p(1)}`,
    ];
    for (let c = 0; c < 2; c++) {
      a((k) => `e${k}${c}`).forEach((e, r) => lines.push(`let s${r}${c} = ${e};`));
    }
    for (let r = 0; r < 4; r++) {
      a((k) => `s${r}${k}`).forEach((e, c) =>
        lines.push(`result[(${4 * r + c} * uniforms.tiles + t) * uniforms.cout4 + co4] = ${e};`)
      );
    }
    return lines;
  }
}

const GEMM_UNIFORMS = uniformBlock({
  cin: "i32",
  cin4: "i32",
  cout4: "i32",
  tiles: "i32",
  tilesPerSplit: "i32",
  groupsCo: "i32",
  groupsCi: "i32",
  groups: "i32",
});

/**
 * M[s, ξ] = Σ_{t in split s} P[ξ, t]ᵀ · Q[ξ, t]: [splits, 16, Cin, Cout]. The WG invocations of
 * a workgroup split Cout, as in conv2d_winograd.ts's GEMM.
 */
class DerFilterWinogradGemmProgram extends WebtuneProgram {
  variableNames = ["p", "q"];
  uniforms = GEMM_UNIFORMS.wgsl;

  constructor(
    outShape: number[],
    groups: number,
    private readonly tile: DerFilterWinogradTile,
  ) {
    super(
      outShape,
      { x: [0] },
      dispatch2D(groups),
      `WinogradDwGemm_${tile.tk}_${tile.tc}_${tile.tt ?? 1}`,
    );
  }

  getUserCode(): string {
    const { tk, tc } = this.tile;
    // TT tiles per step: each accumulator takes TT updates in a row (loaded and stored once
    // when spilled), the loop runs TT times fewer steps. Tiles past the split's end read zeros.
    const tt = this.tile.tt ?? 1;
    const loads: string[] = [];
    const fmas: string[] = [];
    const accs: string[] = [];
    const stores: string[] = [];
    for (let u = 0; u < tt; u++) {
      const guard = (e: string) => u > 0 ? `select(vec4<f32>(0.0), ${e}, t + ${u} < t1)` : e;
      for (let q = 0; q < tk / 4; q++) {
        loads.push(`let a${u}_${q} = ${guard(`ld_p(pb + ${u} * uniforms.cin4 + ${q})`)};`);
      }
      for (let j = 0; j < tc; j++) {
        loads.push(`let b${u}_${j} = ${guard(`ld_q(qb + ${u} * uniforms.cout4 + ${j})`)};`);
      }
    }
    // Accumulator-major (each spilled accumulator loaded and stored once per step).
    for (let i = 0; i < tk; i++) {
      for (let j = 0; j < tc; j++) {
        accs.push(`var acc${i}_${j} = vec4<f32>(0.0);`);
        for (let u = 0; u < tt; u++) {
          fmas.push(
            `acc${i}_${j} = fma(vec4<f32>(a${u}_${i >> 2}.${"xyzw"[i & 3]}), b${u}_${j}, ` +
              `acc${i}_${j});`,
          );
        }
        stores.push(
          `result[(out0 + ${i}) * uniforms.cout4 + cc + ${j}] = acc${i}_${j};`,
        );
      }
    }
    return `
    fn main() {
      let group = ${LINEAR_GROUP_WGSL};
      if (group >= uniforms.groups) { return; }
      let coGroup = group % uniforms.groupsCo;
      let rest = group / uniforms.groupsCo;
      let ciGroup = rest % uniforms.groupsCi;
      let rest2 = rest / uniforms.groupsCi;
      let xi = rest2 % ${XI};
      let split = rest2 / ${XI};
      let c0 = (coGroup * ${WG} + i32(localId.x)) * ${tc};
      // Clamp the last tiles inward; overlapping tiles write identical values.
      let cc = min(c0, uniforms.cout4 - ${tc});
      let ci4 = min(ciGroup * ${tk / 4}, uniforms.cin4 - ${tk / 4});
      ${accs.join("\n      ")}
      let t0 = split * uniforms.tilesPerSplit;
      let t1 = min(t0 + uniforms.tilesPerSplit, uniforms.tiles);
      var pb = (xi * uniforms.tiles + t0) * uniforms.cin4 + ci4;
      var qb = (xi * uniforms.tiles + t0) * uniforms.cout4 + cc;
      for (var t = t0; t < t1; t += ${tt}) {
        ${loads.join("\n        ")}
        ${fmas.join("\n        ")}
        pb += ${tt} * uniforms.cin4;
        qb += ${tt} * uniforms.cout4;
      }
      let out0 = (split * ${XI} + xi) * uniforms.cin + 4 * ci4;
      // Unconditional stores (a store under an \`if\` is a per-lane loop on llvmpipe): the lanes
      // past the end computed the same values as the last ones, and store them there.
      ${stores.join("\n      ")}
    }`;
  }
}

const DW_UNIFORMS = uniformBlock({ n4: "i32", splits: "i32", splitStride: "i32" });

/**
 * dW = G′ᵀ M G′ per (ci, vec4 of Cout), with G′ᵀ = [[1, 1, 1, 0], [0, 1, −1, 0], [0, 1, 1, 1]]
 * (F(2×2, 3×3)'s Gᵀ without its ½, moved into the dy transform), after adding the splits.
 */
class DerFilterWinogradOutputProgram extends WinogradTransformProgram {
  variableNames = ["m"];
  uniforms = DW_UNIFORMS.wgsl;

  constructor(cin: number, cout: number) {
    super([3, 3, cin, cout], cin * cout / 4, "WinogradDwOutput");
  }

  protected bodyLines(): string[] {
    const lines: string[] = [];
    for (let k = 0; k < XI; k++) {
      lines.push(`var m${k} = ld_m(${k} * uniforms.n4 + j);`);
    }
    const sums: string[] = [];
    for (let k = 0; k < XI; k++) sums.push(`m${k} += ld_m(at + ${k} * uniforms.n4);`);
    const gt = (p: (k: number) => string) => [
      `${p(0)} + ${p(1)} + ${p(2)}`,
      `${p(1)} - ${p(2)}`,
      `${p(1)} + ${p(2)} + ${p(3)}`,
    ];
    for (let c = 0; c < 4; c++) {
      gt((k) => `m${4 * k + c}`).forEach((e, r) => lines.push(`let r${r}${c} = ${e};`));
    }
    const stores: string[] = [];
    for (let r = 0; r < 3; r++) {
      gt((k) => `r${r}${k}`).forEach((e, c) =>
        stores.push(`result[${3 * r + c} * uniforms.n4 + j] = ${e};`)
      );
    }
    return [
      ...lines.slice(0, XI),
      `for (var s = 1; s < uniforms.splits; s++) {
        let at = s * uniforms.splitStride + j;
        ${sums.join("\n        ")}
      }`,
      ...lines.slice(XI),
      ...stores,
    ];
  }
}

/** The intermediates of a call, for the texture-size check. */
function intermediates(g: Geometry, splits: number): tf.TensorInfo[] {
  const info = (shape: number[]) => ({ shape, dtype: "float32", dataId: {} }) as tf.TensorInfo;
  return [
    info([XI, g.tiles, g.cin]),
    info([XI, g.tiles, g.cout]),
    info([splits, XI, g.cin, g.cout]),
  ];
}

/** Whether the operands and intermediates of this call fit the device's textures. */
export function derFilterWinogradFits(
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
  backend: WebGPUBackend,
): boolean {
  const g = derFilterGeometry(x, attrs);
  const tile = derFilterWinogradTile(g.cin, g.cout);
  const splits = derFilterWinogradSplits(g.tiles, g.cin, g.cout, tile);
  return texturesFit(backend, [x, dy, ...intermediates(g, splits)]);
}

/**
 * dW of a 3×3 stride-1 conv by Winograd F(3×3, 2×2) (see the module docs). Callers check
 * {@linkcode derFilterWinogradSupports} and {@linkcode derFilterWinogradFits} first.
 *
 * @param tile the GEMM's register tile (default {@linkcode derFilterWinogradTile}).
 * @param textures the kind of texture operands: `true` for the fastest this WebGPU allows.
 * @returns a new float32 tensor of shape `attrs.filterShape`, owned by the caller.
 *
 * @example
 * ```ts ignore
 * if (derFilterWinogradSupports(x, dy, attrs) && derFilterWinogradFits(x, dy, attrs, backend)) {
 *   return conv2DBackpropFilterWinograd(x, dy, attrs, backend);
 * }
 * ```
 */
export function conv2DBackpropFilterWinograd(
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
  backend: WebGPUBackend,
  tile: DerFilterWinogradTile = derFilterWinogradTile(
    attrs.filterShape[2],
    attrs.filterShape[3],
  ),
  textures: true | TextureKind = true,
): tf.TensorInfo {
  const g = derFilterGeometry(x, attrs);
  const cin4 = g.cin / 4, cout4 = g.cout / 4;

  // The same slots as the forward's passes on this conv, whose operands have the same sizes:
  // x (then dy) → input, P → V, Q → M (the forward's [16, tiles, Cout]), M → U.
  const p = runWithOperands(
    backend,
    new WinogradInputProgram(g.tiles, g.cin),
    [x],
    INPUT_UNIFORMS.data({
      n4: g.tiles * cin4,
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

  const q = runWithOperands(
    backend,
    new DerFilterWinogradDyProgram(g.tiles, g.cout),
    [dy],
    OUTPUT_UNIFORMS.data({
      n4: g.tiles * cout4,
      cout4,
      outH: g.outH,
      outW: g.outW,
      tilesH: g.tilesH,
      tilesW: g.tilesW,
      tiles: g.tiles,
    }),
    textures,
    [SLOTS.input],
  );

  const splits = derFilterWinogradSplits(g.tiles, g.cin, g.cout, tile);
  const tilesPerSplit = Math.ceil(g.tiles / splits);
  const groupsCo = Math.ceil(cout4 / tile.tc / WG);
  const groupsCi = Math.ceil(g.cin / tile.tk);
  const groups = splits * XI * groupsCi * groupsCo;
  const m = runWithOperands(
    backend,
    new DerFilterWinogradGemmProgram([splits, XI, g.cin, g.cout], groups, tile),
    [p, q],
    GEMM_UNIFORMS.data({
      cin: g.cin,
      cin4,
      cout4,
      tiles: g.tiles,
      tilesPerSplit,
      groupsCo,
      groupsCi,
      groups,
    }),
    textures,
    [SLOTS.v, SLOTS.m],
  );
  disposeAll(backend, [p, q]);

  const n4 = g.cin * cout4;
  const dw = runWithOperands(
    backend,
    new DerFilterWinogradOutputProgram(g.cin, g.cout),
    [m],
    DW_UNIFORMS.data({ n4, splits, splitStride: XI * n4 }),
    textures,
    [SLOTS.u],
  );
  disposeAll(backend, [m]);
  return dw;
}
