/**
 * A fast `Conv2DBackpropInput` (dX) kernel for tfjs-backend-webgpu, NHWC only.
 *
 * Why hand-written WGSL: tfjs-webgpu 4.22 runs dX with a naive direct loop by default
 * (`WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE`); its tiled alternative (flag false) measured slower on
 * llvmpipe for most ResNet-18 shapes (0.01 GFLOP/s on the stem, 0.14 on layer4). Both ran at
 * ≤1.6 GFLOP/s here.
 *
 * dx[n, iy, ix, ci] = Σ_{r, c, co} dy[n, oy, ox, co] · W[r, c, ci, co] with oy·s = iy + pt − r
 * (likewise ox). Each invocation holds TM input positions × TCI input channels of dx and, per
 * (tap, 4 output channels), loads TM vec4s of dy and TCI vec4s of W (W's rows are contiguous in
 * Cout) for TM·TCI vec4 dot products.
 *
 * Strided convs: positions are enumerated sub-pixel-major, (py, px, n, iy / s, ix / s), so a
 * tile's positions share the parity of (iy, ix) and the taps that can never reach them are
 * skipped as a whole (3/4 of them for stride 2) instead of being masked position by position.
 *
 * The registered variant reads dy and W from `rgba32float` textures (`textures`, see
 * texture_operands.ts), several times faster on llvmpipe; the storage-buffer variant remains for
 * tensors too large for the device's textures (and as a candidate for other adapters). The
 * register-tile sweeps recorded below were made with storage buffers.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  allOf,
  anyOf,
  dispatch2D,
  LINEAR_GROUP_WGSL,
  uniformBlock,
  WebtuneProgram,
  WG,
} from "./kernel_util.ts";
import { operandRead, runWithTextureOperands, texturesFit } from "./texture_operands.ts";

/** Register tile of one invocation: positions × input channels (a multiple of 4). */
export interface DerInputTile {
  tm: number;
  tci: number;
}

/** The tile for Cin < 128 (and the one the support check is made against). */
export const DER_INPUT_TILE: DerInputTile = { tm: 16, tci: 8 };

/**
 * The tile for `cin` input channels, measured with cli/sweep_tiles.ts (batch 16, 64 px, ResNet-18
 * shapes, one process):
 * vs the former { tm: 8, tci: 8 }: Cin 64 { tm: 16, tci: 8 }: layer1 1.71×, layer2 3×3/2 1.39×,
 * 1×1/2 1.68× (tm 24: 1.47×, 1.73×, 2.17×); Cin ≥ 128 { tm: 16, tci: 16 }: layer2 3×3/1 2.24×,
 * layer3 2.11×, layer4 2.27×; then { tm: 32, tci: 16 } vs { tm: 16, tci: 16 }: 0.94×, 1.63×,
 * 1.45× (tm 32 × tci 8 on layer1: 1.02×; tci 32: 0.4–1.8×, not used). Smaller tiles (tm 4 × tci 4–8) were 0.26–0.61× on layer1
 * and layer2.
 * Bigger tiles win on llvmpipe although their accumulators spill: each storage load is a per-lane
 * gather there, so dot products per load set the speed. tci stays at 8 below Cin 128 so that all
 * WG invocations of a workgroup get channels.
 *
 * With texture operands (`textures`, cheaper loads) every Cin takes { tm: 16, tci: 8 }: vs
 * { tm: 32, tci: 16 } with textures 1.39× on layer2 3×3/1, 1.15× layer3, 1.84× layer4 (tm 8 ×
 * tci 16: 1.46×, 0.98×, 1.28×; tm 16 × tci 16: 1.20×, 0.93×, 1.35×; `sweep_tiles --textures`,
 * one run on a loaded machine). *
 * @example
 * ```ts
 * derInputTile(64); // { tm: 16, tci: 8 }
 * derInputTile(256, true); // { tm: 16, tci: 8 }
 * ```
 */
export function derInputTile(cin: number, textures = false): DerInputTile {
  if (cin < 16 * WG || cin % 16 !== 0) return DER_INPUT_TILE;
  return textures ? DER_INPUT_TILE : { tm: 32, tci: 16 };
}

const UNIFORMS = uniformBlock({
  batch: "i32",
  cin: "i32",
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
  positions: "i32",
  groupsCi: "i32",
  groups: "i32",
});

/** The dX program; the WG invocations of a group split Cin. */
class Conv2DDerInputGemmProgram extends WebtuneProgram {
  variableNames = ["dy", "w"];
  uniforms = UNIFORMS.wgsl;

  constructor(
    outShape: number[],
    groups: number,
    private readonly strides: [number, number],
    private readonly tile: DerInputTile,
    private readonly textures = false,
  ) {
    // The strides are baked in (llvmpipe has no SIMD integer division; a constant divisor
    // becomes a shift or nothing), so they are part of the key.
    const key = `Conv2DDerInputGemm_${tile.tm}_${tile.tci}_${strides.join("_")}_${textures}`;
    super(outShape, { x: [3], y: [0] }, dispatch2D(groups), key);
  }

  getUserCode(): string {
    const { tm, tci } = this.tile;
    const read = operandRead(this.textures);
    const [sy, sx] = this.strides;
    const perPos: string[] = [];
    const perTap: string[] = [];
    const loads: string[] = [];
    const dots: string[] = [];
    const accs: string[] = [];
    const stores: string[] = [];
    const anyOk: string[] = [];
    for (let i = 0; i < tm; i++) {
      perPos.push(
        `let p${i} = min(m0 + ${i}, uniforms.positions - 1);`,
        `let jx${i} = p${i} % uniforms.subW;`,
        `let t${i}a = p${i} / uniforms.subW;`,
        `let jy${i} = t${i}a % uniforms.subH;`,
        `let t${i}b = t${i}a / uniforms.subH;`,
        `let n${i} = t${i}b % uniforms.batch;`,
        `let par${i} = t${i}b / uniforms.batch;`,
        `let iy${i} = jy${i} * SY + par${i} / SX;`,
        `let ix${i} = jx${i} * SX + par${i} % SX;`,
        `let in${i} = ${
          allOf(`m0 + ${i} < uniforms.positions`, `iy${i} < uniforms.inH`, `ix${i} < uniforms.inW`)
        };`,
      );
      perTap.push(
        `let ty${i} = iy${i} + uniforms.pads.x - r;`,
        `let tx${i} = ix${i} + uniforms.pads.y - c;`,
        `let oy${i} = ty${i} / SY;`,
        `let ox${i} = tx${i} / SX;`,
        `let ok${i} = ${
          allOf(
            `in${i}`,
            `ty${i} >= 0`,
            `tx${i} >= 0`,
            `oy${i} * SY == ty${i}`,
            `ox${i} * SX == tx${i}`,
            `oy${i} < uniforms.outH`,
            `ox${i} < uniforms.outW`,
          )
        };`,
        `let at${i} = select(0, ((n${i} * uniforms.outH + oy${i}) * uniforms.outW + ox${i}) * ` +
          `uniforms.cout4, ok${i});`,
      );
      anyOk.push(`ok${i}`);
      loads.push(`let a${i} = select(vec4<f32>(0.0), ${read("dy", `at${i} + co4`)}, ok${i});`);
      for (let j = 0; j < tci; j++) {
        accs.push(`var acc${i}_${j} = 0.0;`);
        dots.push(`acc${i}_${j} += dot(a${i}, b${j});`);
      }
      for (let q = 0; q < tci / 4; q++) {
        const v = [0, 1, 2, 3].map((k) => `acc${i}_${q * 4 + k}`).join(", ");
        stores.push(
          `if (in${i}) { result[((n${i} * uniforms.inH + iy${i}) * uniforms.inW + ix${i}) * ` +
            `cin4 + ci0 / 4 + ${q}] = vec4<f32>(${v}); }`,
        );
      }
    }
    for (let j = 0; j < tci; j++) {
      loads.push(`let b${j} = ${read("w", `wb + ${j} * uniforms.cout4 + co4`)};`);
    }
    return `
    const SY = ${sy};
    const SX = ${sx};
    fn main() {
      let group = ${LINEAR_GROUP_WGSL};
      if (group >= uniforms.groups) { return; }
      let ciGroup = group % uniforms.groupsCi;
      let m0 = (group / uniforms.groupsCi) * ${tm};
      let cin4 = uniforms.cin / 4;
      // Clamp the last tile inward; overlapping tiles write identical values.
      let ci0 = min((ciGroup * ${WG} + i32(localId.x)) * ${tci}, uniforms.cin - ${tci});
      let live = (ciGroup * ${WG} + i32(localId.x)) * ${tci} < uniforms.cin;
      ${perPos.join("\n      ")}
      ${accs.join("\n      ")}
      for (var r = 0; r < uniforms.kh; r++) {
        for (var c = 0; c < uniforms.kw; c++) {
          ${perTap.join("\n          ")}
          if (${anyOf(...anyOk)}) {
            // W row of (r, c, ci0), in vec4s of Cout.
            let wb = ((r * uniforms.kw + c) * uniforms.cin + ci0) * uniforms.cout4;
            for (var co4 = 0; co4 < uniforms.cout4; co4++) {
              ${loads.join("\n              ")}
              ${dots.join("\n              ")}
            }
          }
        }
      }
      if (live) {
        ${stores.join("\n        ")}
      }
    }`;
  }
}

/** The attrs tfjs passes to Conv2DBackpropInput. */
export interface Conv2DBackpropInputAttrs {
  inputShape: [number, number, number, number];
  strides: [number, number] | number;
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat?: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/** Whether {@linkcode conv2DBackpropInputGemm} handles these inputs (else the stock kernel). */
export function derInputSupports(
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
): boolean {
  const [, , cin, cout] = filter.shape;
  return (attrs.dataFormat ?? "NHWC") === "NHWC" && dy.dtype === "float32" &&
    filter.dtype === "float32" && dy.shape.length === 4 && cout % 4 === 0 &&
    cin % DER_INPUT_TILE.tci === 0;
}

/**
 * Runs dX. Callers check {@linkcode derInputSupports} first.
 *
 * @returns a new float32 tensor of shape `attrs.inputShape`, owned by the caller.
 */
export function conv2DBackpropInputGemm(
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
  backend: WebGPUBackend,
  tile: DerInputTile = derInputTile(filter.shape[2]),
  textures = false,
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
  const subH = Math.ceil(info.inHeight / sh), subW = Math.ceil(info.inWidth / sw);
  const positions = sh * sw * info.batchSize * subH * subW;
  const groupsCi = Math.ceil(cin / tile.tci / WG);
  const groups = groupsCi * Math.ceil(positions / tile.tm);
  const uniforms = UNIFORMS.data({
    batch: info.batchSize,
    cin,
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
    positions,
    groupsCi,
    groups,
  });
  const useTextures = textures && texturesFit(backend, [dy, filter]);
  const program = new Conv2DDerInputGemmProgram(
    info.inShape,
    groups,
    [sh, sw],
    tile,
    useTextures,
  );
  return useTextures
    ? runWithTextureOperands(backend, program, [dy, filter], uniforms)
    : backend.runWebGPUProgram(program, [dy, filter], "float32", uniforms);
}

/** Whether {@linkcode conv2DBackpropInputTexture} handles these inputs (as the buffer variant). */
export const derInputTextureSupports = derInputSupports;

/**
 * {@linkcode conv2DBackpropInputGemm} with dy and W read from textures (see
 * texture_operands.ts); storage buffers for tensors too large for the device's textures.
 *
 * @example
 * ```ts ignore
 * if (derInputTextureSupports(dy, filter, attrs)) {
 *   return conv2DBackpropInputTexture(dy, filter, attrs, backend);
 * }
 * ```
 */
export function conv2DBackpropInputTexture(
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const tile = derInputTile(filter.shape[2], true);
  return conv2DBackpropInputGemm(dy, filter, attrs, backend, tile, true);
}
