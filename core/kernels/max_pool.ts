/**
 * `MaxPool` and `MaxPoolGrad` (NHWC, vec4 channels) for tfjs-backend-webgpu, routing the gradient
 * as PyTorch does.
 *
 * Why: tfjs's versions loop over the window with `continue` for padding and read storage buffers
 * inside that loop, which llvmpipe turns into a per-lane scalar loop per load: the gradient of
 * ResNet's 3×3/2 stem pool took 104 ms per 64 px batch-16 step, the forward 25 ms. Here the
 * window is unrolled, padding is a mask (indices are clamped, so every load is unconditional), and
 * large inputs are read from textures (see texture_operands.ts).
 *
 * Which input gets a window's gradient: like PyTorch's `max_pool2d`, the first maximum in the
 * window's row-major scan order (ties, common after a ReLU where windows are all zeros, go to
 * the earliest position; a NaN wins over any number), padding never, and a window whose values
 * are all −∞ routes to its first in-bounds position. (tfjs's stock kernels give ties to the last
 * maximum instead; after a ReLU that makes no difference downstream, since the tied zeros' ReLU
 * gradient is zero.) Each input adds its windows' gradients in PyTorch's order too: windows in
 * row-major output order.
 *
 * The gradient takes two passes: the argmax of every window (its position in the window), then
 * per input element the sum of dy over the at most ⌈kh/sh⌉·⌈kw/sw⌉ windows that contain it
 * and chose it (a gather: WGSL has no float atomics to scatter with).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { allOf, anyOf, dispatch2D, flatMain, uniformBlock, WebtuneProgram } from "./kernel_util.ts";
import {
  MIN_TEXTURE_FLOATS,
  operandRead,
  runWithOperands,
  sharedSlots,
  texturesFit,
} from "./texture_operands.ts";

/** The attrs tfjs passes to `MaxPool` and `MaxPoolGrad`. */
export type MaxPoolAttrs = tf.MaxPoolAttrs;

/** Largest window unrolled (taps per output); larger ones run the stock kernels. */
const MAX_TAPS = 49;

const UNIFORMS = uniformBlock({
  n: "i32",
  c4: "i32",
  inSize: "vec2<i32>",
  outSize: "vec2<i32>",
  strides: "vec2<i32>",
  pads: "vec2<i32>",
  lowest: "f32",
  argmax: "i32",
});
const PER_INVOCATION = 64;

/** WGSL: the flat vec4 index `j` of an NHWC tensor of spatial size `size` as b, row, col, c. */
function coordinates(size: string): string {
  return `let c = j % uniforms.c4;
      let pixel = j / uniforms.c4;
      let col = pixel % ${size}.y;
      let row = (pixel / ${size}.y) % ${size}.x;
      let b = pixel / (${size}.x * ${size}.y);`;
}

/**
 * Per output: the window's maximum (`value`) or its position in the window (`argmax`), chosen by
 * a uniform: one pipeline for the forward and the gradient's first pass (each took 0.1–0.2 s of
 * llvmpipe code generation in a cold first step, cli/bench_pipelines.ts; the forward's extra
 * position tracking is a few selects).
 */
class MaxPoolProgram extends WebtuneProgram {
  variableNames = ["x"];
  uniforms = UNIFORMS.wgsl;
  override workgroupSize: [number, number, number] = [PER_INVOCATION, 1, 1];

  constructor(
    private readonly info: tf.backend_util.Conv2DInfo,
    private readonly textures: boolean,
  ) {
    const n4 = tf.util.sizeFromShape(info.outShape) / 4;
    super(
      info.outShape,
      { x: [0] },
      dispatch2D(Math.ceil(n4 / PER_INVOCATION)),
      `MaxPool_${info.filterHeight}x${info.filterWidth}_${textures}`,
    );
  }

  getUserCode(): string {
    const read = operandRead(this.textures);
    const { filterHeight: kh, filterWidth: kw } = this.info;
    const taps: string[] = [];
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const k = ky * kw + kx;
        taps.push(`{
        let iy = y0 + ${ky};
        let ix = x0 + ${kx};
        let inside = ${
          allOf("iy >= 0", "iy < uniforms.inSize.x", "ix >= 0", "ix < uniforms.inSize.y")
        };
        let at = ((b * uniforms.inSize.x + clamp(iy, 0, uniforms.inSize.x - 1)) * uniforms.inSize.y +
          clamp(ix, 0, uniforms.inSize.y - 1)) * uniforms.c4 + c;
        let v = ${read("x", "at")};
        let isNan = (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
        let take = (${anyOf("v > m", "isNan")}) & vec4<bool>(inside);
        m = select(m, v, take);
        pos = select(pos, vec4<f32>(${k}.0), take);
      }`);
      }
    }
    return `
    ${flatMain(this.textures, PER_INVOCATION)}
      // Past the end: redo the last element (same value, same place) rather than return.
      let j = min(i, uniforms.n - 1);
      ${coordinates("uniforms.outSize")}
      let y0 = row * uniforms.strides.x - uniforms.pads.x;
      let x0 = col * uniforms.strides.y - uniforms.pads.y;
      // −∞ comes as a uniform: Chrome's Tint rejects a constant expression that is infinite.
      var m = vec4<f32>(uniforms.lowest);
      // PyTorch's start: the first in-bounds position, should every value be -inf.
      var pos = vec4<f32>(f32(max(0, -y0) * ${kw} + max(0, -x0)));
      ${taps.join("\n      ")}
      result[j] = select(m, pos, uniforms.argmax != 0);
    }`;
  }
}

/** Uniforms of {@linkcode MaxPoolGradInputProgram}: `n` counts blocks × vec4 channels. */
const GRAD_UNIFORMS = uniformBlock({
  n: "i32",
  c4: "i32",
  inSize: "vec2<i32>",
  outSize: "vec2<i32>",
  blocks: "vec2<i32>",
});

/**
 * The output rows (or columns) whose windows can contain an input row of block `by`, i.e. rows
 * [by·s, by·s + s): by + first … by + last (compile-time offsets for kernel k, stride s, pad p).
 */
function windowRange(k: number, s: number, p: number): { first: number; last: number } {
  return { first: Math.ceil((p - k + 1) / s), last: Math.floor((s - 1 + p) / s) };
}

/**
 * dx: per input element, Σ dy over the windows whose argmax it is (in output order). One
 * invocation handles a block of sh × sw input pixels (one vec4 of channels), which share their
 * candidate windows: for 3×3/2 pooling, 4 windows' argmax and dy serve 4 pixels (2 loads per
 * pixel instead of 8).
 */
class MaxPoolGradInputProgram extends WebtuneProgram {
  variableNames = ["dy", "argmax"];
  uniforms = GRAD_UNIFORMS.wgsl;
  override workgroupSize: [number, number, number] = [PER_INVOCATION, 1, 1];

  constructor(
    private readonly info: tf.backend_util.Conv2DInfo,
    private readonly textures: boolean,
  ) {
    const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
    const { top, left } = info.padInfo;
    super(
      info.inShape,
      { x: [0] },
      dispatch2D(Math.ceil(gradBlocks(info) / PER_INVOCATION)),
      `MaxPoolGradInput_${kh}x${kw}_${sh}x${sw}_${top}x${left}_${textures}`,
    );
  }

  getUserCode(): string {
    const read = operandRead(this.textures);
    const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = this.info;
    const { top, left } = this.info.padInfo;
    const ys = windowRange(kh, sh, top), xs = windowRange(kw, sw, left);
    // The candidate windows' argmax and dy, loaded once for the block (clamped, masked).
    const loads: string[] = [];
    for (let ty = ys.first; ty <= ys.last; ty++) {
      for (let tx = xs.first; tx <= xs.last; tx++) {
        const w = `${ty - ys.first}_${tx - xs.first}`;
        loads.push(`let oy_${w} = by + ${ty};
      let ox_${w} = bx + ${tx};
      let at_${w} = ((b * uniforms.outSize.x + clamp(oy_${w}, 0, uniforms.outSize.x - 1)) *
        uniforms.outSize.y + clamp(ox_${w}, 0, uniforms.outSize.y - 1)) * uniforms.c4 + c;
      let real_${w} = ${
          allOf(
            `oy_${w} >= 0`,
            `oy_${w} < uniforms.outSize.x`,
            `ox_${w} >= 0`,
            `ox_${w} < uniforms.outSize.y`,
          )
        };
      let pos_${w} = ${read("argmax", `at_${w}`)};
      let dy_${w} = ${read("dy", `at_${w}`)};`);
      }
    }
    const pixels: string[] = [];
    for (let ry = 0; ry < sh; ry++) {
      for (let rx = 0; rx < sw; rx++) {
        const adds: string[] = [];
        for (let ty = ys.first; ty <= ys.last; ty++) {
          for (let tx = xs.first; tx <= xs.last; tx++) {
            const w = `${ty - ys.first}_${tx - xs.first}`;
            // The pixel's position in window w: row + pad − oy·sh (likewise columns).
            adds.push(`{
          let wy = row + ${top} - oy_${w} * ${sh};
          let wx = col + ${left} - ox_${w} * ${sw};
          let inside = ${allOf(`real_${w}`, "wy >= 0", `wy < ${kh}`, "wx >= 0", `wx < ${kw}`)};
          let chose = (pos_${w} == vec4<f32>(f32(wy * ${kw} + wx))) & vec4<bool>(inside);
          acc = acc + select(vec4<f32>(0.0), dy_${w}, chose);
        }`);
          }
        }
        // Past the image's edge: redo the last row or column (same value, same place).
        pixels.push(`{
        let row = min(by * ${sh} + ${ry}, uniforms.inSize.x - 1);
        let col = min(bx * ${sw} + ${rx}, uniforms.inSize.y - 1);
        var acc = vec4<f32>(0.0);
        ${adds.join("\n        ")}
        result[((b * uniforms.inSize.x + row) * uniforms.inSize.y + col) * uniforms.c4 + c] = acc;
      }`);
      }
    }
    return `
    ${flatMain(this.textures, PER_INVOCATION)}
      // Past the end: redo the last block (same values, same places) rather than return.
      let j = min(i, uniforms.n - 1);
      let c = j % uniforms.c4;
      let block = j / uniforms.c4;
      let bx = block % uniforms.blocks.y;
      let by = (block / uniforms.blocks.y) % uniforms.blocks.x;
      let b = block / (uniforms.blocks.x * uniforms.blocks.y);
      ${loads.join("\n      ")}
      ${pixels.join("\n      ")}
    }`;
  }
}

/** Blocks of sh × sw input pixels per image, rows and columns. */
function blockGrid(info: tf.backend_util.Conv2DInfo): [number, number] {
  return [
    Math.ceil(info.inHeight / info.strideHeight),
    Math.ceil(info.inWidth / info.strideWidth),
  ];
}

/** Invocations of {@linkcode MaxPoolGradInputProgram}: blocks × vec4 channels. */
function gradBlocks(info: tf.backend_util.Conv2DInfo): number {
  const [rows, cols] = blockGrid(info);
  return info.batchSize * rows * cols * info.inChannels / 4;
}

/** The pooling geometry, or null when the stock kernels should run. */
function poolInfo(x: tf.TensorInfo, attrs: MaxPoolAttrs): tf.backend_util.Conv2DInfo | null {
  if (x.dtype !== "float32" || x.shape.length !== 4 || x.shape[3] % 4 !== 0) return null;
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const taps = info.filterHeight * info.filterWidth;
  const padded = info.padInfo.top < info.filterHeight && info.padInfo.left < info.filterWidth;
  return taps <= MAX_TAPS && padded && tf.util.sizeFromShape(info.outShape) > 0 ? info : null;
}

function uniformsOf(info: tf.backend_util.Conv2DInfo, n4: number, argmax = false) {
  return UNIFORMS.data({
    n: n4,
    c4: info.inChannels / 4,
    inSize: [info.inHeight, info.inWidth],
    outSize: [info.outHeight, info.outWidth],
    strides: [info.strideHeight, info.strideWidth],
    pads: [info.padInfo.top, info.padInfo.left],
    lowest: -Infinity,
    argmax: argmax ? 1 : 0,
  });
}

/** Whether textures pay for `x` (see MIN_TEXTURE_FLOATS) and fit. */
function useTextures(backend: WebGPUBackend, x: tf.TensorInfo, others: tf.TensorInfo[] = []) {
  return tf.util.sizeFromShape(x.shape) >= MIN_TEXTURE_FLOATS &&
    texturesFit(backend, [x, ...others]);
}

/** MaxPool's input slot (shared with the other memory-bound kernels, see `sharedSlots`). */
const POOL_SLOTS = sharedSlots(["large"]);

/**
 * MaxPoolGrad's slot for the pool's input: the one where BatchNorm's gradient sums read their
 * `y` (dy, x, y → large 0, 1, 2). In ResNet that input is the stem BatchNorm's output, whose
 * backward runs next, so its copy is skipped there.
 */
const GRAD_INPUT_SLOTS = [sharedSlots(["large", "large", "large"])[2]];

/** The window maxima or their positions (see the module doc). */
function runPool(
  x: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
  output: "value" | "argmax",
  backend: WebGPUBackend,
): tf.TensorInfo {
  const textures = useTextures(backend, x);
  const n4 = tf.util.sizeFromShape(info.outShape) / 4;
  const program = new MaxPoolProgram(info, textures);
  return runWithOperands(
    backend,
    program,
    [x],
    uniformsOf(info, n4, output === "argmax"),
    textures,
    output === "argmax" ? GRAD_INPUT_SLOTS : POOL_SLOTS,
  );
}

/**
 * tfjs's `MaxPool` (NHWC): the maximum of each window, padding excluded. Returns null (run the
 * stock kernel) unless float32 with channels a multiple of 4 and a window of at most 49 taps.
 */
export function maxPool(
  x: tf.TensorInfo,
  attrs: MaxPoolAttrs,
  backend: WebGPUBackend,
): tf.TensorInfo | null {
  const info = poolInfo(x, attrs);
  return info ? runPool(x, info, "value", backend) : null;
}

/**
 * tfjs's `MaxPoolGrad`: dx for `dy` (the gradient of MaxPool's output) and the pool's input,
 * routed as PyTorch does (see the module doc). Null where {@linkcode maxPool} is.
 */
export function maxPoolGrad(
  dy: tf.TensorInfo,
  x: tf.TensorInfo,
  attrs: MaxPoolAttrs,
  backend: WebGPUBackend,
): tf.TensorInfo | null {
  const info = poolInfo(x, attrs);
  if (!info || dy.dtype !== "float32") return null;
  const argmax = runPool(x, info, "argmax", backend);
  const textures = useTextures(backend, x, [dy, argmax]);
  const program = new MaxPoolGradInputProgram(info, textures);
  const uniforms = GRAD_UNIFORMS.data({
    n: gradBlocks(info),
    c4: info.inChannels / 4,
    inSize: [info.inHeight, info.inWidth],
    outSize: [info.outHeight, info.outWidth],
    blocks: blockGrid(info),
  });
  const dx = runWithOperands(
    backend,
    program,
    [dy, argmax],
    uniforms,
    textures,
    sharedSlots(["large", "large"]),
  );
  backend.disposeData(argmax.dataId);
  return dx;
}
