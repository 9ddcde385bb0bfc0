/**
 * Training-mode BatchNorm in few passes for tfjs-backend-webgpu: the kernels named in
 * `BATCH_NORM_KERNELS` of `@webtune/models` (which documents their contract and runs the same
 * arithmetic as tfjs ops on backends without them).
 *
 * Why: as tfjs ops, one BatchNorm + residual + ReLU costs ~8 full-size passes forward and ~9
 * backward, each a dispatch reading and writing the whole activation. Here: variance 1 pass,
 * normalise + residual + ReLU 1 pass; backward: the two channel sums 1 pass, dx 1 pass.
 *
 * Each kernel reads [C] vectors per column and full-size tensors as rows × C. Vec4 columns when
 * C % 4 == 0, else scalars. (No input may be named `out`: tfjs declares a uniform `<name>Shape`
 * per input, which would collide with the output's `outShape`.)
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { ChannelFinishProgram, FINISH_UNIFORMS, ROWS_PER_BLOCK } from "./channel_reduce.ts";
import { dispatch2D, uniformBlock, WebtuneProgram, WG } from "./kernel_util.ts";

const ROWS_UNIFORMS = uniformBlock({ cc: "i32", rows: "i32", rowsPerBlock: "i32" });
const FLAT_UNIFORMS = uniformBlock({ cc: "i32", n: "i32", count: "f32" });

/** Floats per WGSL element for C channels. */
function widthFor(c: number): number {
  return c % 4 === 0 ? 4 : 1;
}

function vecType(width: number): string {
  return width === 4 ? "vec4<f32>" : "f32";
}

/**
 * Per block of rows and column: Σ (x − mean)² (variance), or Σg and Σg·x̂ (gradSums; two
 * outputs per column, at [block, 0 | 1, column]).
 */
class BlockSumsProgram extends WebtuneProgram {
  variableNames: string[];
  uniforms = ROWS_UNIFORMS.wgsl;

  constructor(
    private readonly kind: "variance" | "gradSums",
    private readonly relu: boolean,
    blocks: number,
    c: number,
    width: number,
  ) {
    const outputs = kind === "variance" ? 1 : 2;
    const cc = c / width;
    super(
      [blocks, outputs * c],
      { x: [1], y: [0] },
      [Math.ceil(cc / WG), blocks, 1],
      `BatchNormBlockSums_${kind}_${relu}_${width}`,
    );
    this.components = width;
    this.variableNames = kind === "variance"
      ? ["x", "mean"]
      : relu
      ? ["dy", "x", "mean", "invStd", "y"]
      : ["dy", "x", "mean", "invStd"];
  }

  getUserCode(): string {
    const t = vecType(this.components);
    const variance = this.kind === "variance";
    const g = this.relu ? `select(${t}(0.0), dy[at], y[at] > ${t}(0.0))` : "dy[at]";
    const body = variance ? "let d = x[at] - m; s0 += d * d;" : `let g = ${g};
        s0 += g;
        s1 += g * ((x[at] - m) * invStd[col]);`;
    const store = variance
      ? "result[block * uniforms.cc + col] = s0;"
      : `result[(block * 2) * uniforms.cc + col] = s0;
      result[(block * 2 + 1) * uniforms.cc + col] = s1;`;
    return `
    fn main() {
      let col = i32(globalId.x);
      let block = i32(globalId.y);
      if (col >= uniforms.cc) { return; }
      let start = block * uniforms.rowsPerBlock;
      let end = min(start + uniforms.rowsPerBlock, uniforms.rows);
      let m = mean[col];
      var s0 = ${t}(0.0);
      var s1 = ${t}(0.0);
      for (var r = start; r < end; r++) {
        let at = r * uniforms.cc + col;
        ${body}
      }
      ${store}
    }`;
  }
}

/** One flat pass over x: apply (normalise + residual + ReLU) or gradInput (dx). */
class ElementwiseProgram extends WebtuneProgram {
  variableNames: string[];
  uniforms = FLAT_UNIFORMS.wgsl;
  override workgroupSize: [number, number, number] = [64, 1, 1];

  constructor(
    private readonly kind: "apply" | "gradInput",
    private readonly extra: boolean,
    private readonly relu: boolean,
    shape: number[],
    width: number,
  ) {
    const n = tf.util.sizeFromShape(shape) / width;
    // Flat: the prelude calls main(globalIndex).
    super(
      shape,
      { x: [0, 1, 2, 3].slice(0, shape.length) },
      dispatch2D(Math.ceil(n / 64)),
      `BatchNorm_${kind}_${extra}_${relu}_${width}`,
    );
    this.components = width;
    this.variableNames = kind === "apply"
      ? ["x", "mean", "invStd", "weight", "bias", ...(extra ? ["residual"] : [])]
      : ["dy", "x", "mean", "invStd", "weight", "sums", ...(relu ? ["y"] : [])];
  }

  getUserCode(): string {
    const t = vecType(this.components);
    let body: string;
    if (this.kind === "apply") {
      // The ops' order: ((x − mean)·invStd)·weight + bias, then + residual, then ReLU.
      body = `var v = ((x[i] - mean[col]) * invStd[col]) * weight[col] + bias[col];
      ${this.extra ? "v = v + residual[i];" : ""}
      ${this.relu ? `v = max(v, ${t}(0.0));` : ""}
      result[i] = v;`;
    } else {
      const g = this.relu ? `select(${t}(0.0), dy[i], y[i] > ${t}(0.0))` : "dy[i]";
      body = `let g = ${g};
      let xHat = (x[i] - mean[col]) * invStd[col];
      let sumG = sums[col] / uniforms.count;
      let sumGXHat = sums[uniforms.cc + col] / uniforms.count;
      result[i] = ((g - sumG) - xHat * sumGXHat) * (weight[col] * invStd[col]);`;
    }
    return `
    fn main(i : i32) {
      if (i >= uniforms.n) { return; }
      let col = i % uniforms.cc;
      ${body}
    }`;
  }
}

type Inputs = Record<string, tf.TensorInfo | undefined>;

/** Σ-over-rows kernels: variance ([C]) and gradSums ([2, C]). */
function blockSums(
  kind: "variance" | "gradSums",
  inputs: Inputs,
  relu: boolean,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const x = inputs.x!;
  const c = x.shape[x.shape.length - 1];
  const width = widthFor(c);
  const rows = tf.util.sizeFromShape(x.shape) / c;
  const blocks = Math.max(1, Math.ceil(rows / ROWS_PER_BLOCK));
  const program = new BlockSumsProgram(kind, relu, blocks, c, width);
  const partial = backend.runWebGPUProgram(
    program,
    program.variableNames.map((name) => inputs[name]!),
    "float32",
    ROWS_UNIFORMS.data({ cc: c / width, rows, rowsPerBlock: ROWS_PER_BLOCK }),
  );
  const outputs = kind === "variance" ? 1 : 2;
  const finish = new ChannelFinishProgram(kind === "variance" ? [c] : [2, c], outputs * c, width);
  const out = backend.runWebGPUProgram(
    finish,
    [partial],
    "float32",
    FINISH_UNIFORMS.data({
      c4: outputs * c / width,
      blocks,
      divisor: kind === "variance" ? rows : 1,
    }),
  );
  backend.disposeData(partial.dataId);
  return out;
}

/** The webgpu kernel functions, by role (see `BATCH_NORM_KERNELS` in @webtune/models). */
export const batchNormKernels = {
  variance: (inputs: Inputs, backend: WebGPUBackend): tf.TensorInfo =>
    blockSums("variance", inputs, false, backend),
  gradSums: (inputs: Inputs, relu: boolean, backend: WebGPUBackend): tf.TensorInfo =>
    blockSums("gradSums", inputs, relu, backend),
  apply: (inputs: Inputs, relu: boolean, backend: WebGPUBackend): tf.TensorInfo =>
    elementwise("apply", inputs, relu, 0, backend),
  gradInput: (inputs: Inputs, relu: boolean, count: number, backend: WebGPUBackend) =>
    elementwise("gradInput", inputs, relu, count, backend),
};

function elementwise(
  kind: "apply" | "gradInput",
  inputs: Inputs,
  relu: boolean,
  count: number,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const x = inputs.x!;
  const c = x.shape[x.shape.length - 1];
  const width = widthFor(c);
  const n = tf.util.sizeFromShape(x.shape) / width;
  const program = new ElementwiseProgram(kind, inputs.residual !== undefined, relu, x.shape, width);
  return backend.runWebGPUProgram(
    program,
    program.variableNames.map((name) => inputs[name]!),
    "float32",
    FLAT_UNIFORMS.data({ cc: c / width, n, count }),
  );
}
