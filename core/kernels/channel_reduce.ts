/**
 * Fast `Sum` and `Mean` over every axis but the last (NHWC → per channel), for BatchNorm.
 *
 * Why hand-written WGSL: tfjs-webgpu 4.22 reduces only over innermost axes, so for axes [0,1,2]
 * of an NHWC tensor it first transposes the whole tensor (a full-size copy), then runs one
 * workgroup per channel. BatchNorm needs four such reductions per layer and training step, and
 * they cost more than a quarter of a ResNet-18 step on llvmpipe.
 *
 * Here the tensor is read as rows × C: each invocation sums one vec4 of channels over a block of
 * rows (contiguous, coalesced loads, no transpose), and a second small program adds the blocks
 * and scales by 1/rows for `Mean`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { uniformBlock, type Uniforms, WebtuneProgram, WG } from "./kernel_util.ts";

/** Rows one invocation of the first pass adds (then the blocks are added by the second). */
export const ROWS_PER_BLOCK = 128;

const BLOCK_UNIFORMS = uniformBlock({ c4: "i32", rows: "i32", rowsPerBlock: "i32" });

/** partial[b, c] = Σ rows of block b of x[rows, C], per vec4 of channels. */
class ChannelBlockSumProgram extends WebtuneProgram {
  variableNames = ["x"];
  uniforms = BLOCK_UNIFORMS.wgsl;

  constructor(blocks: number, c: number) {
    super([blocks, c], { x: [1], y: [0] }, [Math.ceil(c / 4 / WG), blocks, 1], "ChannelBlockSum");
  }

  getUserCode(): string {
    return `
    fn main() {
      let col = i32(globalId.x);
      let block = i32(globalId.y);
      if (col >= uniforms.c4) { return; }
      let start = block * uniforms.rowsPerBlock;
      let end = min(start + uniforms.rowsPerBlock, uniforms.rows);
      var s = vec4<f32>(0.0);
      for (var r = start; r < end; r++) { s += x[r * uniforms.c4 + col]; }
      result[block * uniforms.c4 + col] = s;
    }`;
  }
}

/** Uniforms of {@linkcode ChannelFinishProgram}. */
export const FINISH_UNIFORMS = uniformBlock({ c4: "i32", blocks: "i32", divisor: "f32" });

/** out[c] = Σ_b partial[b, c] / divisor (tfjs's Mean divides the sum too). */
export class ChannelFinishProgram extends WebtuneProgram {
  variableNames = ["partial"];
  uniforms = FINISH_UNIFORMS.wgsl;

  /** @param width floats per element: 4 (vec4, C % 4 == 0) or 1. */
  constructor(outShape: number[], c: number, width = 4) {
    const key = `ChannelFinish_${width}`;
    super(outShape, { x: [1], y: [0] }, [Math.ceil(c / width / WG), 1, 1], key);
    this.components = width;
  }

  getUserCode(): string {
    const t = this.components === 4 ? "vec4<f32>" : "f32";
    return `
    fn main() {
      let col = i32(globalId.x);
      if (col >= uniforms.c4) { return; }
      var s = ${t}(0.0);
      for (var b = 0; b < uniforms.blocks; b++) { s += partial[b * uniforms.c4 + col]; }
      result[col] = s / uniforms.divisor;
    }`;
  }
}

/** The attrs tfjs passes to Sum and Mean. */
export interface ReduceAttrs {
  axis: number | number[];
  keepDims: boolean;
}

/** Whether {@linkcode channelReduce} handles this reduction (else the stock kernel). */
export function channelReduceSupports(x: tf.TensorInfo, attrs: ReduceAttrs): boolean {
  const rank = x.shape.length;
  if (x.dtype !== "float32" || rank < 2 || x.shape[rank - 1] % 4 !== 0) return false;
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape).slice().sort((a, b) => a - b);
  return axes.length === rank - 1 && axes.every((a, i) => a === i);
}

/**
 * Sums (or averages) `x` over all axes but the last. Callers check
 * {@linkcode channelReduceSupports} first.
 *
 * @returns a new float32 tensor of shape [C] (or [1, …, 1, C] with keepDims), owned by the caller.
 */
export function channelReduce(
  x: tf.TensorInfo,
  attrs: ReduceAttrs,
  mean: boolean,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const c = x.shape[x.shape.length - 1];
  const rows = tf.util.sizeFromShape(x.shape) / c;
  const blocks = Math.max(1, Math.ceil(rows / ROWS_PER_BLOCK));
  const partial = backend.runWebGPUProgram(
    new ChannelBlockSumProgram(blocks, c),
    [x],
    "float32",
    BLOCK_UNIFORMS.data({ c4: c / 4, rows, rowsPerBlock: ROWS_PER_BLOCK }),
  );
  const outShape = attrs.keepDims ? x.shape.map((d, i) => i === x.shape.length - 1 ? d : 1) : [c];
  const uniforms: Uniforms = FINISH_UNIFORMS.data({ c4: c / 4, blocks, divisor: mean ? rows : 1 });
  const out = backend.runWebGPUProgram(
    new ChannelFinishProgram(outShape, c),
    [partial],
    "float32",
    uniforms,
  );
  backend.disposeData(partial.dataId);
  return out;
}
