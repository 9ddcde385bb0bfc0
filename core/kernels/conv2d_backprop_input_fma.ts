/**
 * `Conv2DBackpropInput` (dX) in the forward conv's form: vec4 FMAs into accumulators of Cin,
 * with no control flow around the loads. NHWC only.
 *
 * dx[n, iy, ix, ci] = Σ_{r, c, co} dy[n, oy, ox, co] · W[r, c, ci, co] with oy·s = iy + pt − r
 * (likewise ox). Each invocation holds TM input positions × TC vec4s of Cin (the WG invocations
 * of a workgroup split Cin). Per (tap, 4 channels co) it loads TM vec4s of dy and, for each of
 * its 4·TC channels, W's vec4 of those 4 co; the transposes of those 4×4 blocks are free
 * (llvmpipe keeps every vector component in its own SIMD register), so the work is 4·TM·TC
 * `fma(vec4(a.x), b, acc)` as in conv2d.ts.
 *
 * Why not conv2d_backprop_input.ts's kernel (kept as a variant): it makes scalar dot products
 * (a multiply and an add more per 4 multiply-adds), wraps the channel loop in an `if` over the
 * tile's taps (so every accumulator update runs under a mask on llvmpipe), and strided convs
 * visited every tap to find the ones of a tile's parity. Here a tile's positions all share one
 * sub-pixel (py, px) (each sub-pixel's positions are padded to whole tiles), so the tap loops
 * start at the first tap that reaches it and step by the stride: no condition, and 3/4 of the
 * taps of a stride-2 conv are never visited. Measured on llvmpipe vs the dot-product kernel
 * (batch 16, CPU time of both interleaved in one process, `cli/bench_dx.ts --cpu`, a loaded
 * machine): at 64 px stride-1 3×3 1.0–1.3× (layer1) and 1.1–2.1× (layer2–4), 3×3/2 1.3–2.2×,
 * 1×1/2 2.5–10×, a step's dX 1.3–1.45×; at 224 px about even (0.98–1.03× a step's dX; layer2's
 * 3×3/1 0.70–0.96×, layer4's 1.18–1.34×, 1×1/2 1.2–1.6×). `auto` picks per shape.
 *
 * dy and W are read from `rgba32float` textures when they fit (texture_operands.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  allOf,
  dispatch2D,
  LINEAR_GROUP_WGSL,
  uniformBlock,
  WebtuneProgram,
  WG,
} from "./kernel_util.ts";
import { operandRead, runWithOperands, type TextureKind, texturesFit } from "./texture_operands.ts";
import type { Conv2DBackpropInputAttrs } from "./conv2d_backprop_input.ts";

/** Register tile of one invocation: input positions × vec4s of input channels. */
export interface DerInputFmaTile {
  tm: number;
  tc: number;
}

/**
 * The tile of every dX shape (and the one the support check is made against), measured on
 * llvmpipe with `cli/bench_dx.ts --cpu` (batch 16, ResNet-18's dX shapes, CPU time of the
 * candidates interleaved in one process), with read-only storage-texture operands: tm 16 × tc 2
 * vs the former 32 × 2 (32 × 4 on stride-1 convs with Cin ≥ 256): a 64 px step's dX 437 → 388 ms
 * (1.0–1.9× per shape), 224 px 5086 → 4182 ms (layer1 1.22×, layer2 1.26×, layer3 1.35×,
 * layer4 1.06×); 16 × 4 and 8 × 2 lost at 224 px (6482, 4729 ms), 16 × 1 won at 64 px (363 ms)
 * but only on the small maps. With sampled textures (before storage ones) 32 × 2 had won: a
 * texel fetch was a call that spilled the accumulators, so more FMAs per fetch paid; inlined
 * loads make the spills of a big tile the cost.
 * tm 32 × tc 4 vs 32 × 2 with sampled textures (64 px): 1.03–1.33× on the stride-1 convs with Cin
 * 256 and 512, 0.85–1.15× on Cin 128, 0.7–1.0× on the strided ones, 0.46–0.57× on Cin 64 (half
 * of the WG lanes idle). tm 48 × tc 4, 64 × 2, 24 × 8 and 16 × 8 lost on most shapes, as did
 * 16 × 4 and 32 × 4 with 4 invocations on Cin and 2 on positions (Cin 64), and a sliding-window
 * stride-1 kernel that fetches each dy texel once for all 3 filter columns (0.7–1.15×: its
 * window and filter columns spill).
 * Why it saturates: with the loads replaced by constants the kernel ran 7–10× faster, with only
 * dy's loads replaced 3.4–4.5×: texel fetches (TM of dy and 4·TC of W per 4·TM·TC FMAs) and the
 * spills of their values and of the accumulators set the speed.
 */
export const DER_INPUT_FMA_TILE: DerInputFmaTile = { tm: 16, tc: 2 };

/**
 * The tile {@linkcode conv2DBackpropInputFma} uses by default: {@linkcode DER_INPUT_FMA_TILE}
 * for every shape (a function, as the variant table's tile choosers are).
 *
 * @example
 * ```ts
 * derInputFmaTile(); // { tm: 16, tc: 2 }
 * ```
 */
export function derInputFmaTile(): DerInputFmaTile {
  return DER_INPUT_FMA_TILE;
}

const UNIFORMS = uniformBlock({
  batch: "i32",
  cin4: "i32",
  cout4: "i32",
  inH: "i32",
  inW: "i32",
  outH: "i32",
  outW: "i32",
  kh: "i32",
  kw: "i32",
  pads: "vec2<i32>",
  subH: "i32",
  subW: "i32",
  perPar: "i32",
  /** Read by programs with the strides in uniforms only (`anyStride`). */
  strides: "vec2<i32>",
  groupsCi: "i32",
  groups: "i32",
});

/** The dX program; the WG invocations of a group split Cin. */
class Conv2DDerInputFmaProgram extends WebtuneProgram {
  variableNames = ["dy", "w"];
  uniforms = UNIFORMS.wgsl;

  constructor(
    outShape: number[],
    groups: number,
    private readonly strides: [number, number],
    private readonly tile: DerInputFmaTile,
    private readonly textures: boolean,
    private readonly anyStride = false,
  ) {
    // The strides are baked in (llvmpipe has no SIMD integer division; a constant divisor
    // becomes a shift or nothing), so they are part of the key, unless `anyStride`.
    const stridesKey = anyStride ? "anyStride" : strides.join("_");
    const key = `Conv2DDerInputFma_${tile.tm}_${tile.tc}_${stridesKey}_${textures}`;
    super(outShape, { x: [3], y: [0] }, dispatch2D(groups), key);
  }

  getUserCode(): string {
    const { tm, tc } = this.tile;
    const read = operandRead(this.textures);
    const [sy, sx] = this.strides;
    const perPos: string[] = [];
    const perTap: string[] = [];
    const loads: string[] = [];
    const fmas: string[] = [];
    const accs: string[] = [];
    const stores: string[] = [];
    for (let i = 0; i < tm; i++) {
      perPos.push(
        `let q${i} = m0 - parBase + ${i};`,
        `let jx${i} = q${i} % uniforms.subW;`,
        `let t${i} = q${i} / uniforms.subW;`,
        `let jy${i} = t${i} % uniforms.subH;`,
        `let n${i} = t${i} / uniforms.subH;`,
        `let iy${i} = jy${i} * SY + py;`,
        `let ix${i} = jx${i} * SX + px;`,
        `let in${i} = ${
          allOf(`n${i} < uniforms.batch`, `iy${i} < uniforms.inH`, `ix${i} < uniforms.inW`)
        };`,
        `let tyb${i} = iy${i} + uniforms.pads.x;`,
        `let txb${i} = ix${i} + uniforms.pads.y;`,
      );
      perTap.push(
        // ty ≡ 0 (mod SY) by the tap loop's start and step: the division is exact.
        `let ty${i} = tyb${i} - r;`,
        `let tx${i} = txb${i} - c;`,
        `let oy${i} = ty${i} / SY;`,
        `let ox${i} = tx${i} / SX;`,
        `let ok${i} = ${
          allOf(
            `in${i}`,
            `ty${i} >= 0`,
            `tx${i} >= 0`,
            `oy${i} < uniforms.outH`,
            `ox${i} < uniforms.outW`,
          )
        };`,
        `let at${i} = select(0, ((n${i} * uniforms.outH + oy${i}) * uniforms.outW + ox${i}) * ` +
          `uniforms.cout4, ok${i});`,
      );
      loads.push(`let a${i} = select(vec4<f32>(0.0), ${read("dy", `at${i} + co4`)}, ok${i});`);
      for (let t = 0; t < tc; t++) {
        accs.push(`var acc${i}_${t} = vec4<f32>(0.0);`);
        stores.push(
          `if (in${i}) { result[((n${i} * uniforms.inH + iy${i}) * uniforms.inW + ix${i}) * ` +
            `uniforms.cin4 + cc + ${t}] = acc${i}_${t}; }`,
        );
      }
    }
    // W's vec4 of (4 co) for channel 4·(cc + t) + k, then b{j}_{t}: the 4 channels' values
    // for co = 4·co4 + j.
    for (let t = 0; t < tc; t++) {
      for (let k = 0; k < 4; k++) {
        loads.push(`let w${k}_${t} = ${read("w", `wb + ${4 * t + k} * uniforms.cout4`)};`);
      }
    }
    for (let j = 0; j < 4; j++) {
      for (let t = 0; t < tc; t++) {
        const parts = [0, 1, 2, 3].map((k) => `w${k}_${t}.${"xyzw"[j]}`).join(", ");
        loads.push(`let b${j}_${t} = vec4<f32>(${parts});`);
      }
    }
    for (let i = 0; i < tm; i++) {
      for (let j = 0; j < 4; j++) {
        for (let t = 0; t < tc; t++) {
          fmas.push(`acc${i}_${t} = fma(vec4<f32>(a${i}.${"xyzw"[j]}), b${j}_${t}, acc${i}_${t});`);
        }
      }
    }
    const strideConsts = this.anyStride ? "" : `const SY = ${sy};
    const SX = ${sx};`;
    const strideLets = this.anyStride
      ? `let SY = uniforms.strides.x;
      let SX = uniforms.strides.y;`
      : "";
    return `
    ${strideConsts}
    fn main() {
      ${strideLets}
      let group = ${LINEAR_GROUP_WGSL};
      if (group >= uniforms.groups) { return; }
      let ciGroup = group % uniforms.groupsCi;
      let m0 = (group / uniforms.groupsCi) * ${tm};
      let c0 = (ciGroup * ${WG} + i32(localId.x)) * ${tc};
      // Clamp the last tile inward; overlapping tiles write identical values.
      let cc = min(c0, uniforms.cin4 - ${tc});
      // The tile's sub-pixel (py, px): every position of a tile has it, so only the taps
      // r ≡ py + pt (mod SY) reach them (likewise c), and the tap loops step over the others.
      let par = m0 / uniforms.perPar;
      let parBase = par * uniforms.perPar;
      let py = par / SX;
      let px = par % SX;
      ${perPos.join("\n      ")}
      ${accs.join("\n      ")}
      for (var r = (py + uniforms.pads.x) % SY; r < uniforms.kh; r += SY) {
        for (var c = (px + uniforms.pads.y) % SX; c < uniforms.kw; c += SX) {
          ${perTap.join("\n          ")}
          // W row of (r, c, ci = 4·cc, co = 0), in vec4s of Cout.
          var wb = ((r * uniforms.kw + c) * uniforms.cin4 + cc) * 4 * uniforms.cout4;
          for (var co4 = 0; co4 < uniforms.cout4; co4++) {
            ${loads.join("\n            ")}
            ${fmas.join("\n            ")}
            wb += 1;
          }
        }
      }
      if (c0 < uniforms.cin4) {
        ${stores.join("\n        ")}
      }
    }`;
  }
}

/** Whether {@linkcode conv2DBackpropInputFma} handles these inputs (else the stock kernel). */
export function derInputFmaSupports(
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
): boolean {
  const [, , cin, cout] = filter.shape;
  return (attrs.dataFormat ?? "NHWC") === "NHWC" && dy.dtype === "float32" &&
    filter.dtype === "float32" && dy.shape.length === 4 && cout % 4 === 0 &&
    cin % 4 === 0 && cin >= 4 * DER_INPUT_FMA_TILE.tc;
}

/**
 * Runs dX. Callers check {@linkcode derInputFmaSupports} first (and that Cin / 4 ≥ `tile.tc`).
 *
 * @example
 * ```ts ignore
 * if (derInputFmaSupports(dy, filter, attrs)) {
 *   return conv2DBackpropInputFma(dy, filter, attrs, backend);
 * }
 * ```
 * @param textures read dy and W from textures where they fit (texture_operands.ts): `true` for
 *   the fastest kind this WebGPU allows, or a {@linkcode TextureKind}; `false` for storage buffers.
 * @param anyStride read the strides from uniforms instead of baking them in: one pipeline for
 *   every stride, at the price of integer divisions by a variable (scalar on llvmpipe), with the
 *   same sums in the same order. For the first-use tile, whose compile time counts more than its
 *   speed (see `FIRST_USE_VARIANT`).
 * @returns a new float32 tensor of shape `attrs.inputShape`, owned by the caller.
 */
export function conv2DBackpropInputFma(
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
  backend: WebGPUBackend,
  tile?: DerInputFmaTile,
  textures: boolean | TextureKind = true,
  anyStride = false,
): tf.TensorInfo {
  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const [kh, kw, cin, cout] = filter.shape;
  const sh = info.strideHeight, sw = info.strideWidth;
  tile ??= derInputFmaTile();
  const subH = Math.ceil(info.inHeight / sh), subW = Math.ceil(info.inWidth / sw);
  // Each sub-pixel's positions, padded to whole tiles (see the program).
  const perPar = Math.ceil(info.batchSize * subH * subW / tile.tm) * tile.tm;
  const groupsCi = Math.ceil(cin / 4 / tile.tc / WG);
  const groups = groupsCi * sh * sw * (perPar / tile.tm);
  const uniforms = UNIFORMS.data({
    batch: info.batchSize,
    cin4: cin / 4,
    cout4: cout / 4,
    inH: info.inHeight,
    inW: info.inWidth,
    outH: info.outHeight,
    outW: info.outWidth,
    kh,
    kw,
    pads: [info.padInfo.top, info.padInfo.left],
    subH,
    subW,
    perPar,
    strides: [sh, sw],
    groupsCi,
    groups,
  });
  const textured = textures !== false && texturesFit(backend, [dy, filter]);
  const program = new Conv2DDerInputFmaProgram(
    info.inShape,
    groups,
    [sh, sw],
    tile,
    textured,
    anyStride,
  );
  return runWithOperands(backend, program, [dy, filter], uniforms, textured && textures);
}
