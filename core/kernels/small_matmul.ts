/**
 * `BatchMatMul` where tfjs-webgpu would run its small-output program
 * (`MatMulSmallOutputSizeProgram`) or, for outputs of at most 128 elements, its
 * `MatMulReduceProgram`: one pipeline for every transpose combination and both, with the
 * transposes, the shapes and the summation order in uniforms, computing each output as tfjs's
 * program does (the same sums in the same order, so the same numbers).
 *
 * Why: a ResNet classifier's backward pass makes two small-output calls (dX = dy·Wᵀ and
 * dW = xᵀ·dy) and its forward one reduce call (logits = x·W: 16 × 2 outputs at batch 16), and
 * tfjs bakes the transposes and the program into the WGSL: three pipelines. Its small-output
 * program tiles k through workgroup memory with two barriers per tile, which llvmpipe compiles
 * as a coroutine per invocation: 0.45–0.6 s of code generation each with a cold shader cache
 * (cli/bench_pipelines.ts, 64 px first step), for matmuls that run in 10–20 ms; the reduce
 * program cost 90 ms. This program has no workgroup memory and no barrier.
 *
 * Numerics: tfjs's small-output program sums `acc = acc + a * b` over k = 0, 1, …, K − 1 (then
 * adds products of the zeros it reads past K, which leave a sum that starts at +0 unchanged);
 * its reduce program makes 256 such partial sums (partial t over k = t, t + 256, …) and adds
 * them pairwise (t and t + 128, then t and t + 64, …); so does this one.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { ScalarProgram, storedAsFloat32, uniformBlock } from "./kernel_util.ts";
import { runWithTextureOperands } from "./texture_operands.ts";
import { pairwiseTreeWgsl } from "./small_reduce.ts";

/**
 * Longest k this program takes: each invocation loops k times, and llvmpipe stops an
 * invocation's loops after 65,535 steps in total (see `LOOP_STEP_BUDGET`).
 */
const MAX_INNER = 16384;

/** Output [batch, m, n]; A's and B's strides per row, k and column, and their batch counts. */
const UNIFORMS = uniformBlock({
  size: "i32",
  m: "i32",
  n: "i32",
  k: "i32",
  aBatches: "i32",
  bBatches: "i32",
  aRow: "i32",
  aK: "i32",
  bK: "i32",
  bCol: "i32",
  /** 1: tfjs's small-output order; {@linkcode TFJS_REDUCE_LANES}: its `MatMulReduceProgram`'s. */
  lanes: "i32",
  log2Lanes: "i32",
});

/** Invocations per output of tfjs's `MatMulReduceProgram` (its partial sums). */
const TFJS_REDUCE_LANES = 256;

class SmallMatMulProgram extends ScalarProgram {
  variableNames = ["a", "b"];
  uniforms = UNIFORMS.wgsl;

  constructor(shape: number[]) {
    super(shape, "SmallMatMul");
  }

  getUserCode(): string {
    return `
    ${this.mainStart("size")}
      let col = j % uniforms.n;
      let t = j / uniforms.n;
      let row = t % uniforms.m;
      let batch = t / uniforms.m;
      let aBase = (batch % uniforms.aBatches) * uniforms.m * uniforms.k + row * uniforms.aRow;
      let bBase = (batch % uniforms.bBatches) * uniforms.k * uniforms.n + col * uniforms.bCol;
      ${
      pairwiseTreeWgsl(
        "uniforms.lanes",
        "uniforms.log2Lanes",
        `var ai = aBase + t * uniforms.aK;
        var bi = bBase + t * uniforms.bK;
        var acc = 0.0;
        for (var kk = t; kk < uniforms.k; kk += uniforms.lanes) {
          acc = acc + ld_a(ai) * ld_b(bi);
          ai += uniforms.aK * uniforms.lanes;
          bi += uniforms.bK * uniforms.lanes;
        }
        let leaf = acc;`,
        (a, b) => `${a} + ${b}`,
      )
    }
      result[j] = tree;
    }`;
  }
}

/** The attrs of tfjs's `BatchMatMul`. */
export interface BatchMatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/** The product's rows m, inner length k and columns n (A is [m, k], B [k, n] before transposes). */
function matMulDims(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  attrs: BatchMatMulAttrs,
): { m: number; k: number; n: number } {
  const ra = a.shape.length, rb = b.shape.length;
  return {
    m: attrs.transposeA ? a.shape[ra - 1] : a.shape[ra - 2],
    k: attrs.transposeA ? a.shape[ra - 2] : a.shape[ra - 1],
    n: attrs.transposeB ? b.shape[rb - 2] : b.shape[rb - 1],
  };
}

/**
 * The program tfjs-webgpu would run `a`·`b` with (its own rule, with the workgroup threshold
 * `threshold`) where this module computes the same: its small-output program or, for outputs of
 * at most 128 elements, its `MatMulReduceProgram`; null for the others, for data not float32
 * and for k over {@linkcode MAX_INNER}.
 */
function tfjsProgram(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  attrs: BatchMatMulAttrs,
  threshold: number,
  backend: WebGPUBackend,
): "smallOutput" | "reduce" | null {
  if (tf.env().getNumber("WEBGPU_MATMUL_PROGRAM_TYPE") >= 0) return null; // forced: tfjs's
  if (a.shape.length < 2 || b.shape.length < 2) return null;
  const { m, k, n } = matMulDims(a, b, attrs);
  const batch = Math.max(
    tf.util.sizeFromShape(a.shape.slice(0, -2)),
    tf.util.sizeFromShape(b.shape.slice(0, -2)),
  );
  const tiles = batch * Math.ceil(m / 32) * Math.ceil(n / 32);
  const few = tiles <= threshold || (m <= 8 && tiles <= threshold * 2);
  const ours = few && k <= MAX_INNER && storedAsFloat32(backend, a) &&
    storedAsFloat32(backend, b) &&
    // tfjs computes small never-uploaded tensors on the CPU; leave those to it.
    !backend.shouldExecuteOnCPU([a, b]);
  if (!ours) return null;
  if (batch * m * n <= 128) return "reduce";
  return batch === 1 && k >= 2000 ? null : "smallOutput";
}

/**
 * `a`·`b` (batched, transposes as attrs) where tfjs would run its small-output or reduce program
 * with workgroup threshold `threshold` (see the module docs); null otherwise (the caller runs tfjs's
 * kernel). Batch dims broadcast as tfjs's do (one side's batch of 1 against the other's).
 *
 * @example
 * ```ts ignore
 * const out = smallMatMul({ a, b }, { transposeA: true, transposeB: false }, 64, backend) ??
 *   stockBatchMatMul({ a, b });
 * ```
 */
export function smallMatMul(
  inputs: tf.NamedTensorInfoMap,
  attrs: BatchMatMulAttrs,
  threshold: number,
  backend: WebGPUBackend,
): tf.TensorInfo | null {
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const order = tfjsProgram(a, b, attrs, threshold, backend);
  if (!order) return null;
  const { m, k, n } = matMulDims(a, b, attrs);
  const outer = tf.backend_util.assertAndGetBroadcastShape(
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  );
  const shape = [...outer, m, n];
  const uniforms = UNIFORMS.data({
    size: tf.util.sizeFromShape(shape),
    m,
    n,
    k,
    aBatches: tf.util.sizeFromShape(a.shape.slice(0, -2)),
    bBatches: tf.util.sizeFromShape(b.shape.slice(0, -2)),
    // A is [m, k] (or [k, m] transposed), B is [k, n] (or [n, k]), row-major per batch.
    aRow: attrs.transposeA ? 1 : k,
    aK: attrs.transposeA ? m : 1,
    bK: attrs.transposeB ? 1 : n,
    bCol: attrs.transposeB ? k : 1,
    lanes: order === "reduce" ? TFJS_REDUCE_LANES : 1,
    log2Lanes: order === "reduce" ? Math.log2(TFJS_REDUCE_LANES) : 0,
  });
  return runWithTextureOperands(backend, new SmallMatMulProgram(shape), [a, b], uniforms, "buffer");
}
