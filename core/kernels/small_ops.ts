/**
 * Small element-wise `Add`, `Sub`, `Multiply`, `RealDiv`, `Equal` (any broadcast of rank ≤ 4),
 * `Exp`, `Log`, `Neg`, `Rsqrt` and `OneHot`: one pipeline for all of them, with the operation
 * and the shapes in uniforms.
 *
 * Why: tfjs-webgpu compiles a pipeline per operation, input rank, broadcast pattern and dtype
 * mix, and llvmpipe generates each one's machine code at its first dispatch. A ResNet-18 training
 * step's loss, accuracy, classifier-bias and per-channel (BatchNorm parameter, SGD) arithmetic
 * made 22 such pipelines, 20–80 ms of code generation each with a cold shader cache
 * (cli/bench_pipelines.ts), for tensors of a few hundred floats whose run time is nothing. Here
 * every call computes all operations and selects one: no branch on the operation, so lavapipe
 * has nothing to inline per value, and the uniforms go through texture_operands.ts's opaque copy
 * (the `buffer` operand kind: storage buffers, no texture copies). A unary operation reads its
 * input as both operands; `OneHot` compares its indices (broadcast along the last axis) with the
 * last coordinate.
 *
 * Only float32 tensors (stored as such, see `storedAsFloat32`, or for the binary ones as int32
 * or bool, converted as tfjs does) of fewer than {@linkcode MIN_TEXTURE_FLOATS} output elements, on the GPU:
 * larger ones keep their faster kernels (vec4, textures), and tensors tfjs would compute on the
 * CPU (small and never uploaded) stay there. Each operation is the same IEEE operation tfjs's
 * WGSL does (`Log` of a negative number is NaN, as tfjs's `uniforms.NAN`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { ScalarProgram, storedAsFloat32, uniformBlock, unravel4Wgsl } from "./kernel_util.ts";
import { MIN_TEXTURE_FLOATS, runWithTextureOperands } from "./texture_operands.ts";

/** The binary operations, by tfjs kernel name, with their code (the `op` uniform). */
const BINARY = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, Equal: 4 } as const;
/** The unary operations, by tfjs kernel name, with their code. */
const UNARY = { Exp: 5, Log: 6, Neg: 7, Rsqrt: 8 } as const;
/** The code of `OneHot`. */
const ONE_HOT = 9;

/** Kernel names {@linkcode smallBinary} handles. */
export type SmallBinaryOp = keyof typeof BINARY;
/** Kernel names {@linkcode smallUnary} handles. */
export type SmallUnaryOp = keyof typeof UNARY;

/** The kernel names of this module's operations. */
export const SMALL_BINARY_OPS = Object.keys(BINARY) as SmallBinaryOp[];
export const SMALL_UNARY_OPS = Object.keys(UNARY) as SmallUnaryOp[];

/** The output's dims 1–3 (of 4, padded in front) and each input's strides over them. */
const UNIFORMS = uniformBlock({
  op: "i32",
  n: "i32",
  d1: "i32",
  d2: "i32",
  d3: "i32",
  a0: "i32",
  a1: "i32",
  a2: "i32",
  a3: "i32",
  b0: "i32",
  b1: "i32",
  b2: "i32",
  b3: "i32",
  /** 1 where that input's GPU data holds integers (int32, bool: a float32 relabelled by Cast). */
  aInt: "i32",
  bInt: "i32",
  /** 1: the output is int32 or bool data (integer bits, as tfjs stores them). */
  outInt: "i32",
  /** tfjs's `uniforms.NAN` (a NaN literal is not valid WGSL for Chrome's Tint). */
  nan: "f32",
  /** OneHot's values. */
  on: "f32",
  off: "f32",
});

/** The uniforms an operation does not use. */
const NO_UNIFORMS = {
  d1: 1,
  d2: 1,
  a0: 0,
  a1: 0,
  a2: 0,
  b0: 0,
  b1: 0,
  b2: 0,
  b3: 0,
  aInt: 0,
  bInt: 0,
  outInt: 0,
  nan: NaN,
  on: 1,
  off: 0,
};

class SmallElementwiseProgram extends ScalarProgram {
  variableNames = ["a", "b"];
  uniforms = UNIFORMS.wgsl;

  constructor(shape: number[], dtype: tf.DataType) {
    super(shape, "SmallElementwise");
    this.outputDtype = dtype;
  }

  getUserCode(): string {
    return `
    ${this.mainStart("n")}
      ${unravel4Wgsl("j", "uniforms.d", "c", "t").join("\n      ")}
      let ar = ld_a(c0 * uniforms.a0 + c1 * uniforms.a1 + c2 * uniforms.a2 + c3 * uniforms.a3);
      let br = ld_b(c0 * uniforms.b0 + c1 * uniforms.b1 + c2 * uniforms.b2 + c3 * uniforms.b3);
      // Integer data converted as tfjs's programs do (f32(i32)).
      let a = select(ar, f32(bitcast<i32>(ar)), uniforms.aInt != 0);
      let b = select(br, f32(bitcast<i32>(br)), uniforms.bInt != 0);
      let op = uniforms.op;
      let binary = select(select(select(select(a + b, a - b, op == 1), a * b, op == 2), a / b,
        op == 3), select(0.0, 1.0, a == b), op == 4);
      // tfjs: LOG is "if (a < 0.0) { return uniforms.NAN; } return log(a);".
      let logA = select(log(a), uniforms.nan, a < 0.0);
      let unary = select(select(select(exp(a), logA, op == 6), -a, op == 7), inverseSqrt(a),
        op == 8);
      // tfjs's OneHot: mix(off, on, f32(i32(round(index)) == coordinate)).
      let oneHot = select(uniforms.off, uniforms.on, i32(round(a)) == c3);
      let v = select(select(binary, unary, op >= 5), oneHot, op == ${ONE_HOT});
      // int32 and bool outputs are stored as integers (tfjs: i32(value)).
      result[j] = select(v, bitcast<f32>(i32(v)), uniforms.outInt != 0);
    }`;
  }
}

/** The dtype `t`'s GPU data is stored as (see `storedAsFloat32`). */
function storedDtype(backend: WebGPUBackend, t: tf.TensorInfo): string | undefined {
  return (backend as unknown as { tensorMap: { get(id: unknown): { dtype: string } } })
    .tensorMap.get(t.dataId)?.dtype;
}

/**
 * Whether these float32 tensors, with an output of `size` elements, are this module's; with
 * `integers`, one stored as int32 or bool (relabelled by Cast) is too.
 */
function eligible(
  backend: WebGPUBackend,
  inputs: tf.TensorInfo[],
  size: number,
  integers = false,
): boolean {
  const stored = (t: tf.TensorInfo) =>
    storedAsFloat32(backend, t) ||
    (integers && t.dtype === "float32" && ["int32", "bool"].includes(storedDtype(backend, t)!));
  return size > 0 && size < MIN_TEXTURE_FLOATS &&
    inputs.every((t) => stored(t) && t.shape.length <= 4) &&
    // tfjs computes small never-uploaded tensors on the CPU; leave those to it.
    !backend.shouldExecuteOnCPU(inputs);
}

/** Strides of `shape` over a rank-4 output `out` (both padded in front), 0 where broadcast. */
function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const padded = [...new Array(4 - shape.length).fill(1), ...shape];
  const strides = [0, 0, 0, 0];
  let stride = 1;
  for (let d = 3; d >= 0; d--) {
    strides[d] = padded[d] === 1 && out[d] !== 1 ? 0 : stride;
    stride *= padded[d];
  }
  return strides;
}

/**
 * `a op b` with tfjs's broadcasting, for small float32 tensors (see the module docs); null
 * otherwise (the caller runs another kernel).
 *
 * @example
 * ```ts ignore
 * const out = smallBinary("Add", { a, b }, backend) ?? stockAdd({ a, b });
 * ```
 */
export function smallBinary(
  name: SmallBinaryOp,
  inputs: tf.NamedTensorInfoMap,
  backend: WebGPUBackend,
): tf.TensorInfo | null {
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  if (a.shape.length > 4 || b.shape.length > 4) return null;
  const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  if (!eligible(backend, [a, b], tf.util.sizeFromShape(shape), true)) return null;
  const out4 = [...new Array(4 - shape.length).fill(1), ...shape];
  const [a0, a1, a2, a3] = broadcastStrides(a.shape, out4);
  const [b0, b1, b2, b3] = broadcastStrides(b.shape, out4);
  const equal = name === "Equal";
  const uniforms = UNIFORMS.data({
    ...NO_UNIFORMS,
    op: BINARY[name],
    n: tf.util.sizeFromShape(shape),
    d1: out4[1],
    d2: out4[2],
    d3: out4[3],
    a0,
    a1,
    a2,
    a3,
    b0,
    b1,
    b2,
    b3,
    aInt: storedAsFloat32(backend, a) ? 0 : 1,
    bInt: storedAsFloat32(backend, b) ? 0 : 1,
    outInt: equal ? 1 : 0,
  });
  const program = new SmallElementwiseProgram(shape, equal ? "bool" : "float32");
  return runWithTextureOperands(backend, program, [a, b], uniforms, "buffer");
}

/**
 * `op(x)` for a small float32 tensor (see the module docs); null otherwise.
 *
 * @example
 * ```ts ignore
 * const out = smallUnary("Exp", { x }, backend) ?? stockExp({ x });
 * ```
 */
export function smallUnary(
  name: SmallUnaryOp,
  inputs: tf.NamedTensorInfoMap,
  backend: WebGPUBackend,
): tf.TensorInfo | null {
  const { x } = inputs as { x: tf.TensorInfo };
  if (!eligible(backend, [x], tf.util.sizeFromShape(x.shape))) return null;
  const n = tf.util.sizeFromShape(x.shape);
  const uniforms = UNIFORMS.data({
    ...NO_UNIFORMS,
    op: UNARY[name],
    n,
    d3: n,
    a3: 1,
    b3: 1,
  });
  const program = new SmallElementwiseProgram(x.shape, "float32");
  return runWithTextureOperands(backend, program, [x, x], uniforms, "buffer");
}

/**
 * tfjs's `OneHot` (attrs `depth`, `onValue`, `offValue`, `dtype`) of small int32 indices, as
 * tfjs's program computes it (on the GPU, as tfjs's kernel does even for indices it holds on the
 * CPU); null otherwise (the caller runs tfjs's kernel).
 *
 * @example
 * ```ts ignore
 * const out = smallOneHot({ indices }, { depth: 2, onValue: 1, offValue: 0, dtype: "int32" }, be);
 * ```
 */
export function smallOneHot(
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
  backend: WebGPUBackend,
): tf.TensorInfo | null {
  const { indices } = inputs as { indices: tf.TensorInfo };
  const depth = attrs.depth as number;
  const dtype = attrs.dtype as tf.DataType;
  const shape = [...indices.shape, depth];
  const size = tf.util.sizeFromShape(shape);
  if (
    shape.length > 4 || size === 0 || size >= MIN_TEXTURE_FLOATS ||
    indices.dtype !== "int32" || storedDtype(backend, indices) !== "int32" ||
    !["int32", "float32"].includes(dtype)
  ) {
    return null;
  }
  const out4 = [...new Array(4 - shape.length).fill(1), ...shape];
  // The indices broadcast along the last axis.
  const [a0, a1, a2, a3] = broadcastStrides([...indices.shape, 1], out4);
  const uniforms = UNIFORMS.data({
    ...NO_UNIFORMS,
    op: ONE_HOT,
    n: size,
    d1: out4[1],
    d2: out4[2],
    d3: out4[3],
    a0,
    a1,
    a2,
    a3,
    aInt: 1,
    outInt: dtype === "int32" ? 1 : 0,
    on: attrs.onValue as number,
    off: attrs.offValue as number,
  });
  const program = new SmallElementwiseProgram(shape, dtype);
  return runWithTextureOperands(backend, program, [indices, indices], uniforms, "buffer");
}
