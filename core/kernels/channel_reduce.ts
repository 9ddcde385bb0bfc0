/**
 * Fast `Sum` and `Mean` over a run of axes that ends just before the last (NHWC → per channel,
 * for BatchNorm; or per image and channel over H and W, the global average pool).
 *
 * Why hand-written WGSL: tfjs-webgpu 4.22 reduces only over innermost axes, so for axes [0,1,2]
 * of an NHWC tensor it first transposes the whole tensor (a full-size copy), then runs one
 * workgroup per channel. BatchNorm needs four such reductions per layer and training step, and
 * they cost more than a quarter of a ResNet-18 step on llvmpipe.
 *
 * Here the tensor is read as outer × rows × C: each invocation sums one vec4 of channels over a
 * block of rows (contiguous, coalesced loads, no transpose), and a second small program adds the
 * blocks and scales by 1/rows for `Mean` (one block: the first program scales, no second one).
 * Large inputs are read from textures (see texture_operands.ts: on llvmpipe every storage-buffer
 * load is a per-lane scalar loop).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { uniformBlock, WebtuneProgram, WG } from "./kernel_util.ts";
import {
  MIN_TEXTURE_FLOATS,
  operandRead,
  runWithOperands,
  sharedSlots,
  texturesFit,
} from "./texture_operands.ts";

/** A layout with a y: tfjs's prelude calls `main()` and the shaders index with globalId. */
const NON_FLAT = { x: [1], y: [0] };

/**
 * Rows one invocation of the first pass adds (then the blocks are added by the second). 1024 ran
 * the BatchNorm variance and gradient sums plus the channel Sum of a 64 px ResNet-18 step's BN
 * layers 1.41× faster than 128 (1.17× with the stem's 32 × 32 layer among them; about 2% of the
 * step), interleaved in one process, but its longer sequential sums round worse: the ResNet-50
 * step's fc gradient then missed core/resnet50_parity_test.ts's bound (relative 1.5e-4). So 128.
 * (A model loaded from files no longer runs its [C] BatchNorm ops on the CPU, `placeOnDevice`,
 * so the page-vs-files check does not depend on this number.)
 */
export const ROWS_PER_BLOCK = 128;

/** The texture slot of the second pass's input (the blocks' sums). */
export const PARTIAL_SLOT = ["partial sums"];

const BLOCK_UNIFORMS = uniformBlock({
  c4: "i32",
  rows: "i32",
  rowsPerBlock: "i32",
  divisor: "f32",
});

/**
 * partial[o, b, c] = Σ rows of block b of x[o, rows, C] / divisor, per vec4 of channels (the
 * divisor is 1 unless this is the only pass).
 */
class ChannelBlockSumProgram extends WebtuneProgram {
  variableNames = ["x"];
  uniforms = BLOCK_UNIFORMS.wgsl;

  constructor(
    outShape: number[],
    blocks: number,
    outer: number,
    c: number,
    private readonly textures: boolean,
  ) {
    super(
      outShape,
      NON_FLAT,
      [Math.ceil(c / 4 / WG), blocks, outer],
      `ChannelBlockSum_${textures}`,
    );
  }

  getUserCode(): string {
    const read = operandRead(this.textures);
    return `
    fn main() {
      // Past the last column: redo the last one (same values, same place) rather than return.
      let col = min(i32(globalId.x), uniforms.c4 - 1);
      let block = i32(globalId.y);
      let o = i32(globalId.z);
      let start = block * uniforms.rowsPerBlock;
      let end = min(start + uniforms.rowsPerBlock, uniforms.rows);
      let base = o * uniforms.rows * uniforms.c4 + col;
      var s = vec4<f32>(0.0);
      for (var r = start; r < end; r++) { s += ${read("x", "base + r * uniforms.c4")}; }
      result[(o * i32(numWorkgroups.y) + block) * uniforms.c4 + col] = s / uniforms.divisor;
    }`;
  }
}

/** Uniforms of {@linkcode ChannelFinishProgram}. */
export const FINISH_UNIFORMS = uniformBlock({ c4: "i32", blocks: "i32", divisor: "f32" });

/** out[o, c] = Σ_b partial[o, b, c] / divisor (tfjs's Mean divides the sum too). */
export class ChannelFinishProgram extends WebtuneProgram {
  variableNames = ["partial"];
  uniforms = FINISH_UNIFORMS.wgsl;

  /**
   * @param c values per outer index (channels, or 2 × channels for two sums)
   * @param width floats per element: 4 (vec4, C % 4 == 0) or 1.
   * @param textures read `partial` from a texture (width 4 only).
   * @param outer how many independent reductions (images); `outShape` holds outer × c values.
   */
  constructor(
    outShape: number[],
    c: number,
    width = 4,
    private readonly textures = false,
    outer = 1,
  ) {
    const key = `ChannelFinish_${width}_${textures}`;
    super(outShape, NON_FLAT, [Math.ceil(c / width / WG), outer, 1], key);
    this.components = width;
  }

  getUserCode(): string {
    const t = this.components === 4 ? "vec4<f32>" : "f32";
    const read = operandRead(this.textures);
    return `
    fn main() {
      let col = min(i32(globalId.x), uniforms.c4 - 1);
      let o = i32(globalId.y);
      let base = o * uniforms.blocks * uniforms.c4 + col;
      var s = ${t}(0.0);
      for (var b = 0; b < uniforms.blocks; b++) { s += ${
      read("partial", "base + b * uniforms.c4")
    }; }
      result[o * uniforms.c4 + col] = s / uniforms.divisor;
    }`;
  }
}

/** The attrs tfjs passes to Sum and Mean. */
export interface ReduceAttrs {
  axis: number | number[];
  keepDims: boolean;
}

/** The first reduced axis, or -1 unless the axes are a run ending before the last (vec4 C). */
function firstAxis(x: tf.TensorInfo, attrs: ReduceAttrs): number {
  const rank = x.shape.length;
  if (x.dtype !== "float32" || rank < 2 || x.shape[rank - 1] % 4 !== 0) return -1;
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape).slice().sort((a, b) => a - b);
  const first = rank - 1 - axes.length;
  const run = axes.length > 0 && axes.every((a, i) => a === first + i);
  return run ? first : -1;
}

/** Whether {@linkcode channelReduce} handles this reduction (else the stock kernel). */
export function channelReduceSupports(x: tf.TensorInfo, attrs: ReduceAttrs): boolean {
  return firstAxis(x, attrs) >= 0;
}

/**
 * Sums (or averages) `x` over a run of axes ending before the last. Callers check
 * {@linkcode channelReduceSupports} first.
 *
 * @returns a new float32 tensor, `x`'s shape without the reduced axes (or with them 1 with
 *   keepDims), owned by the caller.
 */
export function channelReduce(
  x: tf.TensorInfo,
  attrs: ReduceAttrs,
  mean: boolean,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const rank = x.shape.length;
  const first = firstAxis(x, attrs);
  const c = x.shape[rank - 1];
  const outer = tf.util.sizeFromShape(x.shape.slice(0, first));
  const rows = tf.util.sizeFromShape(x.shape.slice(first, rank - 1));
  const blocks = Math.max(1, Math.ceil(rows / ROWS_PER_BLOCK));
  const reduced = (i: number) => i >= first && i < rank - 1;
  const outShape = attrs.keepDims
    ? x.shape.map((d, i) => reduced(i) ? 1 : d)
    : x.shape.filter((_, i) => !reduced(i));
  const divisor = mean ? rows : 1;
  const textures = tf.util.sizeFromShape(x.shape) >= MIN_TEXTURE_FLOATS &&
    texturesFit(backend, [x]);
  const partial = runWithOperands(
    backend,
    new ChannelBlockSumProgram(
      blocks === 1 ? outShape : [outer, blocks, c],
      blocks,
      outer,
      c,
      textures,
    ),
    [x],
    BLOCK_UNIFORMS.data({
      c4: c / 4,
      rows,
      rowsPerBlock: ROWS_PER_BLOCK,
      divisor: blocks === 1 ? divisor : 1,
    }),
    textures,
    sharedSlots(["large"]),
  );
  if (blocks === 1) return partial;
  const finishTextures = textures && texturesFit(backend, [partial]);
  const out = runWithOperands(
    backend,
    new ChannelFinishProgram(outShape, c, 4, finishTextures, outer),
    [partial],
    FINISH_UNIFORMS.data({ c4: c / 4, blocks, divisor }),
    finishTextures,
    PARTIAL_SLOT,
  );
  backend.disposeData(partial.dataId);
  return out;
}
