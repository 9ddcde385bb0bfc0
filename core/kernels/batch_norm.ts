/**
 * BatchNorm in few passes for tfjs-backend-webgpu: the kernels named in
 * `BATCH_NORM_KERNELS` of `@webtune/models` (which documents their contract and runs the same
 * arithmetic as tfjs ops on backends without them).
 *
 * Why: as tfjs ops, one BatchNorm + residual + ReLU costs ~8 full-size passes forward and ~9
 * backward, each a dispatch reading and writing the whole activation. Here: variance 1 pass,
 * normalise + residual + ReLU 1 pass; backward: the two channel sums 1 pass, dx 1 pass, and the
 * residual's gradient (dy masked by the ReLU) 1 pass. In `eval` mode (running statistics folded
 * into a per-channel scale and shift by tiny ops) the forward is 1 pass instead of 3–4.
 *
 * Each kernel reads [C] vectors per column and full-size tensors as rows × C. Vec4 columns when
 * C % 4 == 0, else scalars. With vec4 columns the inputs are read from textures (see
 * texture_operands.ts: on llvmpipe every storage-buffer load is a per-lane scalar loop, and these
 * kernels are all loads), and the element-wise passes clamp out-of-range invocations to the last
 * element rather than returning early, so no load or store sits under divergent control flow.
 * (No input may be named `out`: tfjs declares a uniform `<name>Shape` per input, which would
 * collide with the output's `outShape`.)
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  dispatch2D,
  flatMain,
  storedAsFloat32,
  uniformBlock,
  WebtuneProgram,
  WG,
} from "./kernel_util.ts";
import {
  ChannelFinishProgram,
  FINISH_UNIFORMS,
  PARTIAL_SLOT,
  ROWS_PER_BLOCK,
} from "./channel_reduce.ts";
import {
  MIN_TEXTURE_FLOATS,
  operandRead,
  runWithOperands,
  sharedSlots,
  texturesFit,
} from "./texture_operands.ts";

const ROWS_UNIFORMS = uniformBlock({
  cc: "i32",
  rows: "i32",
  rowsPerBlock: "i32",
  divisor: "f32",
  relu: "i32",
});
/**
 * `relu` (1 or 0) is a uniform of every kernel rather than part of its WGSL: one pipeline serves
 * the BatchNorms with and without a ReLU after them, each of which took ~0.1 s of llvmpipe code
 * generation in a cold first step (cli/bench_pipelines.ts). The backward kernels then always
 * take `y` (the ReLU's output, for its mask); without a ReLU they get dy there, which
 * runWithTextureOperands binds once. A `select`, not a branch, so lavapipe has no
 * uniform-dependent control flow to inline.
 *
 * `residual` (1 or 0) likewise: the forward kernels (`apply`, `affine`) always take a residual
 * input, x again when there is none (bound once), and add it only where the uniform says so
 * (a select, so without one the value is exactly that of a program without the addition). One
 * pipeline for a step's BatchNorms with and without a residual: the second cost 0.1 s of code
 * generation in a cold first step (cli/bench_pipelines.ts).
 */
const FLAT_UNIFORMS = uniformBlock({
  cc: "i32",
  n: "i32",
  count: "f32",
  relu: "i32",
  residual: "i32",
});

/** Floats per WGSL element for C channels. */
function widthFor(c: number): number {
  return c % 4 === 0 ? 4 : 1;
}

function vecType(width: number): string {
  return width === 4 ? "vec4<f32>" : "f32";
}

/** The output shape of a Σ-over-rows kernel: [C] (variance) or [2, C] (gradSums). */
function statsShape(kind: "variance" | "gradSums", c: number): number[] {
  return kind === "variance" ? [c] : [2, c];
}

/** The inputs of the Σ-over-rows kernels, in binding order. */
function blockSumsInputs(kind: "variance" | "gradSums"): string[] {
  if (kind === "variance") return ["x", "mean"];
  // Without a ReLU, `y` is dy again (bound once; see FLAT_UNIFORMS).
  return ["dy", "x", "mean", "invStd", "y"];
}

/** The element-wise kernels: forward (train, eval), dx, the ReLU-masked dy (residual gradient). */
type ElementwiseKind = "apply" | "gradInput" | "reluGrad" | "affine";

/** The inputs of the element-wise kernels, in binding order. */
function elementwiseInputs(kind: ElementwiseKind): string[] {
  if (kind === "reluGrad") return ["dy", "y"];
  // Without a residual, `residual` is x again (bound once; see FLAT_UNIFORMS).
  if (kind === "affine") return ["x", "scale", "shift", "residual"];
  return kind === "apply"
    ? ["x", "mean", "invStd", "weight", "bias", "residual"]
    : ["dy", "x", "mean", "invStd", "weight", "sums", "y"];
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
    blocks: number,
    c: number,
    width: number,
    private readonly textures: boolean,
  ) {
    const outputs = kind === "variance" ? 1 : 2;
    const cc = c / width;
    super(
      blocks === 1 ? statsShape(kind, c) : [blocks, outputs * c],
      { x: [1], y: [0] },
      [Math.ceil(cc / WG), blocks, 1],
      `BatchNormBlockSums_${kind}_${width}_${textures}`,
    );
    this.components = width;
    this.variableNames = blockSumsInputs(kind);
  }

  getUserCode(): string {
    const t = vecType(this.components);
    const read = operandRead(this.textures);
    const variance = this.kind === "variance";
    const dy = read("dy", "at");
    const g = `select(${dy}, select(${t}(0.0), ${dy}, ${read("y", "at")} > ${t}(0.0)), ` +
      "uniforms.relu != 0)";
    const body = variance ? `let d = ${read("x", "at")} - m; s0 += d * d;` : `let g = ${g};
        s0 += g;
        s1 += g * ((${read("x", "at")} - m) * sd);`;
    const store = variance
      ? "result[block * uniforms.cc + col] = s0 / uniforms.divisor;"
      : `result[(block * 2) * uniforms.cc + col] = s0 / uniforms.divisor;
      result[(block * 2 + 1) * uniforms.cc + col] = s1 / uniforms.divisor;`;
    return `
    fn main() {
      // Past the last column: redo the last one (same values, same place) rather than return.
      let col = min(i32(globalId.x), uniforms.cc - 1);
      let block = i32(globalId.y);
      let start = block * uniforms.rowsPerBlock;
      let end = min(start + uniforms.rowsPerBlock, uniforms.rows);
      let m = ${read("mean", "col")};
      ${variance ? "" : `let sd = ${read("invStd", "col")};`}
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

/** Rows of one column an invocation of the element-wise passes handles (its [C] loads shared). */
const ROWS_PER_INVOCATION = 4;

/**
 * One pass over x: apply (normalise + residual + ReLU), affine (the same with precomputed
 * scale and shift, `eval`), gradInput (dx) or reluGrad (dy masked by y > 0; x is dy there). Each invocation loads its column's statistics once and handles
 * {@linkcode ROWS_PER_INVOCATION} rows of it: the per-channel loads were most of the loads.
 */
class ElementwiseProgram extends WebtuneProgram {
  variableNames: string[];
  uniforms = FLAT_UNIFORMS.wgsl;
  override workgroupSize: [number, number, number] = [64, 1, 1];

  constructor(
    private readonly kind: ElementwiseKind,
    shape: number[],
    width: number,
    private readonly textures: boolean,
  ) {
    const c = shape[shape.length - 1];
    const rows = tf.util.sizeFromShape(shape) / c;
    const invocations = Math.ceil(rows / ROWS_PER_INVOCATION) * (c / width);
    // Flat: the prelude calls main(globalIndex).
    super(
      shape,
      { x: [0, 1, 2, 3].slice(0, shape.length) },
      dispatch2D(Math.ceil(invocations / 64)),
      `BatchNorm_${kind}_${width}_${textures}`,
    );
    this.components = width;
    this.variableNames = elementwiseInputs(kind);
  }

  getUserCode(): string {
    const t = vecType(this.components);
    const read = operandRead(this.textures);
    const at = (name: string) => read(name, "j");
    const perColumn = (name: string) => read(name, "col");
    let columnValues: string, body: string;
    if (this.kind === "apply") {
      columnValues = `let meanC = ${perColumn("mean")};
      let invStdC = ${perColumn("invStd")};
      let weightC = ${perColumn("weight")};
      let biasC = ${perColumn("bias")};`;
      // The ops' order: ((x − mean)·invStd)·weight + bias, then + residual, then ReLU.
      body = `var v = ((${at("x")} - meanC) * invStdC) * weightC + biasC;
        v = select(v, v + ${at("residual")}, uniforms.residual != 0);
        v = select(v, max(v, ${t}(0.0)), uniforms.relu != 0);
        result[j] = v;`;
    } else if (this.kind === "affine") {
      columnValues = `let scaleC = ${perColumn("scale")};
      let shiftC = ${perColumn("shift")};`;
      // The ops' order: x·scale + shift, then + residual, then ReLU.
      body = `var v = ${at("x")} * scaleC + shiftC;
        v = select(v, v + ${at("residual")}, uniforms.residual != 0);
        v = select(v, max(v, ${t}(0.0)), uniforms.relu != 0);
        result[j] = v;`;
    } else if (this.kind === "reluGrad") {
      columnValues = "";
      body = `result[j] = select(${t}(0.0), ${at("dy")}, ${at("y")} > ${t}(0.0));`;
    } else {
      columnValues = `let invStdC = ${perColumn("invStd")};
      let meanC = ${perColumn("mean")};
      let sumG = ${perColumn("sums")} / uniforms.count;
      let sumGXHat = ${read("sums", "uniforms.cc + col")} / uniforms.count;
      let scale = ${perColumn("weight")} * invStdC;`;
      const g = `select(${at("dy")}, select(${t}(0.0), ${at("dy")}, ${at("y")} > ${t}(0.0)), ` +
        "uniforms.relu != 0)";
      body = `let g = ${g};
        let xHat = (${at("x")} - meanC) * invStdC;
        result[j] = ((g - sumG) - xHat * sumGXHat) * scale;`;
    }
    const rows: string[] = [];
    for (let k = 0; k < ROWS_PER_INVOCATION; k++) {
      // Past the last row: redo the last one (same value, same place) rather than return.
      rows.push(`{
        let j = min(first + ${k}, lastRow) * uniforms.cc + col;
        ${body}
      }`);
    }
    return `
    ${flatMain(this.textures, 64)}
      let col = i % uniforms.cc;
      let first = (i / uniforms.cc) * ${ROWS_PER_INVOCATION};
      let lastRow = uniforms.n / uniforms.cc - 1;
      ${columnValues}
      ${rows.join("\n      ")}
    }`;
  }
}

type Inputs = Record<string, tf.TensorInfo | undefined>;

/**
 * Whether a kernel over `x` reads its inputs from textures: vec4 columns, large enough to repay
 * the copies, and every input fits.
 */
function useTextures(
  x: tf.TensorInfo,
  width: number,
  inputs: tf.TensorInfo[],
  backend: WebGPUBackend,
) {
  return width === 4 && tf.util.sizeFromShape(x.shape) >= MIN_TEXTURE_FLOATS &&
    texturesFit(backend, inputs);
}

/** The shared texture slots of `inputs`: full-size ones (x's size) and per-channel vectors. */
function slotsOf(x: tf.TensorInfo, inputs: tf.TensorInfo[]): string[] {
  const size = tf.util.sizeFromShape(x.shape);
  return sharedSlots(
    inputs.map((t) => tf.util.sizeFromShape(t.shape) === size ? "large" : "small"),
  );
}

/**
 * reluGrad's slots for (dy, y): those gradSums and gradInput used for them just before (dy, x,
 * y → large 0, 1, 2), so both copies are skipped (see `sharedSlots`).
 */
const RELU_GRAD_SLOTS = ((s) => [s[0], s[2]])(sharedSlots(["large", "large", "large"]));

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
  const operands = blockSumsInputs(kind).map((name) => inputs[name] ?? inputs.dy!);
  const textures = useTextures(x, width, operands, backend);
  const program = new BlockSumsProgram(kind, blocks, c, width, textures);
  // The variance is a mean; the gradient sums are sums. With one block there is no second pass.
  const divisor = kind === "variance" ? rows : 1;
  const partial = runWithOperands(
    backend,
    program,
    operands,
    ROWS_UNIFORMS.data({
      cc: c / width,
      rows,
      rowsPerBlock: ROWS_PER_BLOCK,
      divisor: blocks === 1 ? divisor : 1,
      relu: relu ? 1 : 0,
    }),
    textures,
    slotsOf(x, operands),
  );
  if (blocks === 1) return partial;
  const outputs = kind === "variance" ? 1 : 2;
  const finishTextures = textures && texturesFit(backend, [partial]);
  const finish = new ChannelFinishProgram(statsShape(kind, c), outputs * c, width, finishTextures);
  const out = runWithOperands(
    backend,
    finish,
    [partial],
    FINISH_UNIFORMS.data({ c4: outputs * c / width, blocks, divisor }),
    finishTextures,
    PARTIAL_SLOT,
  );
  backend.disposeData(partial.dataId);
  return out;
}

const CHANNEL_UNIFORMS = uniformBlock({ n: "i32", mode: "i32", keep: "f32", take: "f32" });

/**
 * Per-channel statistics arithmetic, one pipeline for both roles (`mode` a uniform, selected
 * rather than branched on): the running average a·keep + b·take (mode 0) and
 * rsqrt(a + keep) (mode 1, b unused). Each product and sum is rounded as the separate tfjs ops
 * round it: llvmpipe does not contract `a * keep + b * take` into a fused multiply-add (even
 * WGSL's `fma` is rounded twice there), and the tests compare with those ops bit for bit.
 */
class ChannelStatsProgram extends WebtuneProgram {
  variableNames = ["a", "b"];
  uniforms = CHANNEL_UNIFORMS.wgsl;
  override components = 1;
  override workgroupSize: [number, number, number] = [64, 1, 1];

  constructor(shape: number[]) {
    const n = tf.util.sizeFromShape(shape);
    super(shape, { x: [0] }, dispatch2D(Math.ceil(n / 64)), "BatchNormChannelStats");
  }

  getUserCode(): string {
    // Past the end: redo the last element (same value, same place) rather than return.
    return `
    ${flatMain(true, 64)}
      let j = min(i, uniforms.n - 1);
      let a = ld_a(j);
      let b = ld_b(j);
      result[j] = select(a * uniforms.keep + b * uniforms.take, inverseSqrt(a + uniforms.keep),
        uniforms.mode == 1);
    }`;
  }
}

/** {@linkcode ChannelStatsProgram} on [C] tensors (storage buffers: a few hundred floats). */
function channelStats(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  mode: 0 | 1,
  keep: number,
  take: number,
  backend: WebGPUBackend,
): tf.TensorInfo {
  if (!tf.util.arraysEqual(a.shape, b.shape) || ![a, b].every((t) => storedAsFloat32(backend, t))) {
    throw new Error(
      `BatchNorm statistics: expected two float32 [C] tensors, got [${a.shape}], [${b.shape}]`,
    );
  }
  const uniforms = CHANNEL_UNIFORMS.data({ n: tf.util.sizeFromShape(a.shape), mode, keep, take });
  return runWithOperands(backend, new ChannelStatsProgram(a.shape), [a, b], uniforms, "buffer");
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
  affine: (inputs: Inputs, relu: boolean, backend: WebGPUBackend): tf.TensorInfo =>
    elementwise("affine", inputs, relu, 0, backend),
  reluGrad: (inputs: Inputs, backend: WebGPUBackend): tf.TensorInfo =>
    elementwise("reluGrad", { ...inputs, x: inputs.dy }, true, 0, backend),
  invStd: (inputs: Inputs, eps: number, backend: WebGPUBackend): tf.TensorInfo =>
    channelStats(inputs.variance!, inputs.variance!, 1, eps, 0, backend),
  runningAverage: (inputs: Inputs, keep: number, take: number, backend: WebGPUBackend) =>
    channelStats(inputs.running!, inputs.batch!, 0, keep, take, backend),
};

function elementwise(
  kind: ElementwiseKind,
  inputs: Inputs,
  relu: boolean,
  count: number,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const x = inputs.x!;
  const c = x.shape[x.shape.length - 1];
  const width = widthFor(c);
  const n = tf.util.sizeFromShape(x.shape) / width;
  const residual = inputs.residual !== undefined;
  const operands = elementwiseInputs(kind).map((name) =>
    inputs[name] ?? (name === "residual" ? x : inputs.dy!)
  );
  const textures = useTextures(x, width, operands, backend);
  const program = new ElementwiseProgram(kind, x.shape, width, textures);
  return runWithOperands(
    backend,
    program,
    operands,
    FLAT_UNIFORMS.data({
      cc: c / width,
      n,
      count,
      relu: relu ? 1 : 0,
      residual: residual ? 1 : 0,
    }),
    textures,
    kind === "reluGrad" ? RELU_GRAD_SLOTS : slotsOf(x, operands),
  );
}
