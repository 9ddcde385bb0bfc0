/**
 * `Slice`, `Unpack` and `PadV2` of float32 tensors (rank ≤ 4) as one program: each output
 * element is x's element at its coordinates plus a shift, or the pad value where that falls
 * outside x. One pipeline for all three, with the shapes, the shift and the pad value in
 * uniforms.
 *
 * Why: tfjs-webgpu compiles a pipeline per operation and rank, and llvmpipe generates each one's
 * machine code at its first dispatch. A ResNet-18 training step made three such pipelines
 * (BatchNorm's backward unstacks its two channel sums: rank-2 slices; the stem's dW pads x and
 * slices its filter rows: rank 4), 20–120 ms of code generation each with a cold shader cache
 * (cli/bench_pipelines.ts). Copies, so the numbers are x's (and the pad value).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { ScalarProgram, storedAsFloat32, uniformBlock, unravel4Wgsl } from "./kernel_util.ts";
import { runWithTextureOperands } from "./texture_operands.ts";

/** The output's dims 1–3 (of 4, padded in front), x's dims and strides, the shift, the pad. */
const UNIFORMS = uniformBlock({
  size: "i32",
  d1: "i32",
  d2: "i32",
  d3: "i32",
  x0: "i32",
  x1: "i32",
  x2: "i32",
  x3: "i32",
  s0: "i32",
  s1: "i32",
  s2: "i32",
  s3: "i32",
  shift0: "i32",
  shift1: "i32",
  shift2: "i32",
  shift3: "i32",
  value: "f32",
});

class StridedCopyProgram extends ScalarProgram {
  variableNames = ["x"];
  uniforms = UNIFORMS.wgsl;

  constructor(shape: number[]) {
    super(shape, "StridedCopy");
  }

  getUserCode(): string {
    return `
    ${this.mainStart("size")}
      ${unravel4Wgsl("j", "uniforms.d", "y", "q", "uniforms.shift").join("\n      ")}
      let inside = all(vec4<i32>(y0, y1, y2, y3) >= vec4<i32>(0)) &
        all(vec4<i32>(y0, y1, y2, y3) < vec4<i32>(uniforms.x0, uniforms.x1, uniforms.x2,
          uniforms.x3));
      let at = select(0, y0 * uniforms.s0 + y1 * uniforms.s1 + y2 * uniforms.s2 +
        y3 * uniforms.s3, inside);
      result[j] = select(uniforms.value, ld_x(at), inside);
    }`;
  }
}

/** `values` padded in front to 4 with `fill`. */
function to4(values: readonly number[], fill: number): number[] {
  return [...new Array(4 - values.length).fill(fill), ...values];
}

/**
 * The copy of `x` into a tensor of `shape` whose element at coordinates c is x's at c + `shift`
 * (per axis), or `value` outside x; `outShape` (same size as `shape`) is the tensor's shape.
 */
function stridedCopy(
  x: tf.TensorInfo,
  shape: readonly number[],
  shift: readonly number[],
  value: number,
  backend: WebGPUBackend,
  outShape: number[] = [...shape],
): tf.TensorInfo {
  const dims = to4(shape, 1), xDims = to4(x.shape, 1), shifts = to4(shift, 0);
  const strides = [1, 1, 1, 1];
  for (let d = 2; d >= 0; d--) strides[d] = strides[d + 1] * xDims[d + 1];
  const uniforms = UNIFORMS.data({
    size: tf.util.sizeFromShape([...shape]),
    d1: dims[1],
    d2: dims[2],
    d3: dims[3],
    x0: xDims[0],
    x1: xDims[1],
    x2: xDims[2],
    x3: xDims[3],
    s0: strides[0],
    s1: strides[1],
    s2: strides[2],
    s3: strides[3],
    shift0: shifts[0],
    shift1: shifts[1],
    shift2: shifts[2],
    shift3: shifts[3],
    value,
  });
  return runWithTextureOperands(backend, new StridedCopyProgram(outShape), [x], uniforms, "buffer");
}

/**
 * Whether this module copies `x`: float32 data of rank 1–4 with elements; for a slice, on the
 * GPU (tfjs slices small never-uploaded tensors on the CPU; those stay there; it pads on the GPU
 * whatever the input).
 */
function eligible(x: tf.TensorInfo, backend: WebGPUBackend, cpuSlice = true): boolean {
  return x.shape.length >= 1 && x.shape.length <= 4 && tf.util.sizeFromShape(x.shape) > 0 &&
    storedAsFloat32(backend, x) && !(cpuSlice && backend.shouldExecuteOnCPU([x]));
}

/**
 * tfjs's `Slice` (attrs `begin`, `size`); null where this module does not take the call.
 *
 * @example
 * ```ts ignore
 * const out = slice({ x }, { begin: [0, 1], size: [2, -1] }, backend) ?? stockSlice(…);
 * ```
 */
export function slice(
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
  backend: WebGPUBackend,
): tf.TensorInfo | null {
  const { x } = inputs as { x: tf.TensorInfo };
  if (!eligible(x, backend)) return null;
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as tf.Tensor,
    attrs.begin as number | number[],
    attrs.size as number | number[] | undefined,
  );
  tf.slice_util.assertParamsValid(x as tf.Tensor, begin, size);
  if (tf.util.sizeFromShape(size) === 0) return null;
  return stridedCopy(x, size, begin, 0, backend);
}

/**
 * tfjs's `Unpack` (attr `axis`): the slices along `axis`, without it; null where this module
 * does not take the call.
 *
 * @example
 * ```ts ignore
 * const [a, b] = unpack({ value: sums }, { axis: 0 }, backend) ?? stockUnpack(…);
 * ```
 */
export function unpack(
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
  backend: WebGPUBackend,
): tf.TensorInfo[] | null {
  const { value: x } = inputs as { value: tf.TensorInfo };
  if (!eligible(x, backend)) return null;
  const rank = x.shape.length;
  const axis = (attrs.axis as number) < 0 ? (attrs.axis as number) + rank : attrs.axis as number;
  const size = x.shape.map((n, d) => d === axis ? 1 : n);
  if (tf.util.sizeFromShape(size) === 0) return null;
  const outShape = x.shape.filter((_, d) => d !== axis);
  return Array.from({ length: x.shape[axis] }, (_, i) => {
    const begin = x.shape.map((_, d) => d === axis ? i : 0);
    return stridedCopy(x, size, begin, 0, backend, outShape);
  });
}

/**
 * tfjs's `PadV2` (attrs `paddings`, `constantValue`); null where this module does not take the
 * call (and for no padding at all, which tfjs returns as the input itself).
 *
 * @example
 * ```ts ignore
 * const out = padV2({ x }, { paddings: [[0, 0], [1, 1]], constantValue: 0 }, backend) ?? …;
 * ```
 */
export function padV2(
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
  backend: WebGPUBackend,
): tf.TensorInfo | null {
  const { x } = inputs as { x: tf.TensorInfo };
  const paddings = attrs.paddings as [number, number][];
  if (!eligible(x, backend, false) || paddings.every(([a, b]) => a === 0 && b === 0)) return null;
  const shape = x.shape.map((n, d) => paddings[d][0] + n + paddings[d][1]);
  const shift = paddings.map(([before]) => -before);
  return stridedCopy(x, shape, shift, attrs.constantValue as number, backend);
}
