/**
 * `Sum`, `Max` (over any axes) and `ArgMax` of small float32 tensors: one pipeline for all three,
 * with the operation, the axes and the shapes in uniforms, computing each output as tfjs's
 * programs do (the same operations in the same order, so the same numbers).
 *
 * Why: tfjs-webgpu compiles a pipeline per reduction type and input rank, and first transposes
 * a tensor whose reduced axes are not innermost (another pipeline); llvmpipe generates each one's
 * machine code at its first dispatch. A ResNet-18 training step's loss (log-sum-exp's maximum and
 * sum, the picked logit, the summed loss), its accuracy (the argmax) and the classifier bias's
 * gradient (a sum over the batch) made five such pipelines, 30–70 ms of code generation each with
 * a cold shader cache (cli/bench_pipelines.ts), for tensors of a few dozen floats.
 *
 * Numerics, as tfjs 4.22's programs for inputs under {@linkcode MIN_TEXTURE_FLOATS} elements:
 * - `Sum` and `Max` (`ReduceProgram`, 64 invocations per output): invocation t reduces elements
 *   t, t + 64, … in order (a sum starts at 0, a maximum at the row's first element; a NaN
 *   element makes the maximum NaN), then the first min(n, 64) partial values are combined
 *   pairwise, at each level value t with value t + ⌈size / 2⌉. Here one invocation does the same
 *   steps one after the other, for a power-of-two number of partial values (rows of 3–63
 *   elements other than 4, 8, 16 and 32 keep tfjs's kernel; see {@linkcode pairwiseTreeWgsl}).
 * - `ArgMax` (`ArgMinMaxProgram`'s plain form, rows under 32 elements): the first element
 *   strictly greater than all before it (a NaN is never taken unless it is first).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { ScalarProgram, storedAsFloat32, uniformBlock, unravel4Wgsl } from "./kernel_util.ts";
import { MIN_TEXTURE_FLOATS, runWithTextureOperands } from "./texture_operands.ts";

/** The reductions, by tfjs kernel name, with their code (the `op` uniform). */
const REDUCTIONS = { Sum: 0, Max: 1, ArgMax: 2 } as const;

/** Kernel names {@linkcode smallReduce} handles. */
export type SmallReduceOp = keyof typeof REDUCTIONS;

/** The kernel names of this module's reductions. */
export const SMALL_REDUCE_OPS = Object.keys(REDUCTIONS) as SmallReduceOp[];

/** Invocations per output of tfjs's `ReduceProgram` below 4096 elements per row. */
const TFJS_REDUCE_LANES = 64;
/** tfjs's `ArgMinMaxProgram` runs its plain (sequential) form on rows under this length. */
const TFJS_PLAIN_ARGMAX_MAX = 32;

/**
 * The output's dims 1–3 (of 4, padded in front) with x's strides over them, the reduced dims 1–3
 * with x's strides over them, the row length, the lanes of the first pass.
 */
const UNIFORMS = uniformBlock({
  op: "i32",
  size: "i32",
  o1: "i32",
  o2: "i32",
  o3: "i32",
  s0: "i32",
  s1: "i32",
  s2: "i32",
  s3: "i32",
  r1: "i32",
  r2: "i32",
  r3: "i32",
  t0: "i32",
  t1: "i32",
  t2: "i32",
  t3: "i32",
  len: "i32",
  /** tfjs's invocations per output: element k goes to partial value k % lanes. */
  lanes: "i32",
  /** The partial values tfjs combines, min(len, lanes) = 2^log2Leaves. */
  leaves: "i32",
  log2Leaves: "i32",
  /** tfjs's `uniforms.NAN` (a NaN literal is not valid WGSL for Chrome's Tint). */
  nan: "f32",
});

/** Levels of {@linkcode pairwiseTreeWgsl}'s tree: up to 2⁸ = 256 leaves. */
const TREE_LEVELS = 8;

/**
 * WGSL for tfjs's pairwise combination of `count` = 2^`log2Count` (≤ 256) values, leaving the
 * result in `var tree : f32`: while more than one value is left, value t becomes
 * `combine(value t, value t + size / 2)`. `leaf` is WGSL that sets `let leaf : f32` to value
 * `t` (an i32).
 *
 * Why not an array: llvmpipe compiled a private array indexed by a variable into code that grows
 * with the array (a 256-float array made a small matmul's pipeline cost 1.4 s of code generation
 * instead of 50 ms). The same tree, leaf by leaf: leaves in bit-reversed order, each merged with
 * the pending subtrees of its level as a binary counter carries, left operand first.
 *
 * @example
 * ```ts
 * import { pairwiseTreeWgsl } from "./small_reduce.ts";
 * pairwiseTreeWgsl("n", "p", "let leaf = ld_x(t);", (a, b) => `${a} + ${b}`);
 * ```
 */
export function pairwiseTreeWgsl(
  count: string,
  log2Count: string,
  leaf: string,
  combine: (left: string, right: string) => string,
): string {
  const levels = [...Array(TREE_LEVELS).keys()];
  return `
      ${levels.map((l) => `var level${l} = 0.0;`).join("\n      ")}
      var tree = 0.0;
      for (var leafIndex = 0; leafIndex < ${count}; leafIndex++) {
        // Leaf t of the tree: leafIndex's log2(count) low bits reversed.
        let t = i32((reverseBits(u32(leafIndex)) >> u32(31 - ${log2Count})) >> 1u);
        ${leaf}
        var carry = leaf;
        var open = true;
        ${
    levels.map((l) =>
      `let bit${l} = ((leafIndex >> ${l}u) & 1) == 1;
        carry = select(carry, ${combine(`level${l}`, "carry")}, open & bit${l});
        level${l} = select(level${l}, carry, open & !bit${l});
        open = open & bit${l};`
    ).join("\n        ")
  }
        tree = carry;
      }`;
}

/** tfjs's NaN test (its WGSL `isnan`), on the bits. */
const IS_NAN_WGSL = `fn isNanBits(v : f32) -> bool {
      return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
    }`;

class SmallReduceProgram extends ScalarProgram {
  variableNames = ["x"];
  uniforms = UNIFORMS.wgsl;

  constructor(shape: number[], dtype: tf.DataType) {
    super(shape, "SmallReduce");
    this.outputDtype = dtype;
  }

  getUserCode(): string {
    // tfjs's max step: a NaN candidate makes the result NaN; else a larger one replaces it.
    const max = (best: string, c: string) =>
      `select(select(${best}, ${c}, !isNanBits(${best}) & (${c} > ${best})), uniforms.nan, ` +
      `isNanBits(${c}))`;
    const combine = (best: string, c: string): string =>
      `select(${best} + ${c}, ${max(best, c)}, uniforms.op == 1)`;
    return `
    ${IS_NAN_WGSL}

    /** x's offset of element k of a row (the reduced dims, row-major). */
    fn rowOffset(k : i32) -> i32 {
      ${unravel4Wgsl("k", "uniforms.r", "k", "q").join("\n      ")}
      return k0 * uniforms.t0 + k1 * uniforms.t1 + k2 * uniforms.t2 + k3 * uniforms.t3;
    }

    ${this.mainStart("size")}
      ${unravel4Wgsl("j", "uniforms.o", "c", "q").join("\n      ")}
      let base = c0 * uniforms.s0 + c1 * uniforms.s1 + c2 * uniforms.s2 + c3 * uniforms.s3;
      // Sum starts at 0; Max and ArgMax at the row's first element.
      let start = select(0.0, ld_x(base), uniforms.op != 0);
      var bestK = 0;
      ${
      pairwiseTreeWgsl(
        "uniforms.leaves",
        "uniforms.log2Leaves",
        `var best = start;
        for (var k = t; k < uniforms.len; k += uniforms.lanes) {
          let e = ld_x(base + rowOffset(k));
          let taken = e > best;
          bestK = select(bestK, k, taken & (uniforms.op == 2));
          best = select(${combine("best", "e")}, select(best, e, taken), uniforms.op == 2);
        }
        let leaf = best;`,
        combine,
      )
    }
      result[j] = select(tree, bitcast<f32>(bestK), uniforms.op == 2);
    }`;
  }
}

/** x's strides, row-major. */
function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
  return strides;
}

/** `dims` and their `strides`, padded in front to 4 (size 1, stride 0). */
function padTo4(dims: number[], strides: number[]): [number[], number[]] {
  const pad = 4 - dims.length;
  return [[...new Array(pad).fill(1), ...dims], [...new Array(pad).fill(0), ...strides]];
}

/**
 * tfjs's `Sum` (`axis`, `keepDims`), `Max` (`reductionIndices`, `keepDims`) or `ArgMax`
 * (`axis`) of a small float32 tensor, as
 * tfjs's programs compute them (see the module docs); null where this module does not take the
 * call (the caller runs tfjs's kernel): not float32 data, rank over 4, {@linkcode MIN_TEXTURE_FLOATS}
 * elements or more, an empty reduction, an `ArgMax` row of 32 or more, a row of 3–63 elements
 * but 4, 8, 16 and 32 (see below), or a `Max` tfjs would compute on the CPU.
 *
 * @example
 * ```ts ignore
 * const out = smallReduce("Sum", { x }, { axis: [0], keepDims: false }, backend) ?? stockSum(…);
 * ```
 */
export function smallReduce(
  name: SmallReduceOp,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
  backend: WebGPUBackend,
): tf.TensorInfo | null {
  const { x } = inputs as { x: tf.TensorInfo };
  const size = tf.util.sizeFromShape(x.shape);
  // tfjs computes a Max of small never-uploaded tensors on the CPU (leave those to it); its Sum
  // and ArgMax run on the GPU whatever the input.
  if (
    x.shape.length > 4 || size === 0 || size >= MIN_TEXTURE_FLOATS ||
    !storedAsFloat32(backend, x) || (name === "Max" && backend.shouldExecuteOnCPU([x]))
  ) {
    return null;
  }
  // tfjs's Max names its axes `reductionIndices`; Sum and ArgMax `axis`.
  const axis = (name === "Max" ? attrs.reductionIndices : attrs.axis) as number | number[];
  const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
  const argMax = name === "ArgMax";
  if (argMax) axes.splice(1);
  const kept = x.shape.map((_, d) => d).filter((d) => !axes.includes(d));
  const strides = stridesOf(x.shape);
  const len = axes.reduce((n, d) => n * x.shape[d], 1);
  if (len === 0 || (argMax && len >= TFJS_PLAIN_ARGMAX_MAX)) return null;
  const lanes = argMax ? 1 : TFJS_REDUCE_LANES;
  // tfjs's tree is a perfect binary one only for a power-of-two number of partial values
  // (pairwiseTreeWgsl); rows of another length under 64 keep tfjs's kernel.
  const leaves = Math.min(len, lanes);
  const log2Leaves = Math.log2(leaves);
  if (!Number.isInteger(log2Leaves)) return null;
  const [outDims, outStrides] = padTo4(kept.map((d) => x.shape[d]), kept.map((d) => strides[d]));
  const [rowDims, rowStrides] = padTo4(axes.map((d) => x.shape[d]), axes.map((d) => strides[d]));
  let shape = kept.map((d) => x.shape[d]);
  if (!argMax && attrs.keepDims) shape = x.shape.map((n, d) => axes.includes(d) ? 1 : n);
  const program = new SmallReduceProgram(shape, argMax ? "int32" : "float32");
  const uniforms = UNIFORMS.data({
    op: REDUCTIONS[name],
    size: Math.max(1, tf.util.sizeFromShape(shape)),
    o1: outDims[1],
    o2: outDims[2],
    o3: outDims[3],
    s0: outStrides[0],
    s1: outStrides[1],
    s2: outStrides[2],
    s3: outStrides[3],
    r1: rowDims[1],
    r2: rowDims[2],
    r3: rowDims[3],
    t0: rowStrides[0],
    t1: rowStrides[1],
    t2: rowStrides[2],
    t3: rowStrides[3],
    len,
    lanes,
    leaves,
    log2Leaves,
    nan: NaN,
  });
  return runWithTextureOperands(backend, program, [x], uniforms, "buffer");
}
