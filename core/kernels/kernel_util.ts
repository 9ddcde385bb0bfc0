/**
 * Small helpers shared by webtune's webgpu kernels.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** Program-defined uniforms, in the order of the program's `uniforms` string. */
export type Uniforms = { type: "int32"; data: number[] }[];

/** Largest workgroup count WebGPU guarantees per dispatch dimension. */
const MAX_DISPATCH = 65535;

/**
 * Spreads `groups` workgroups over x and y (a dimension may hold at most 65535). Shaders find
 * their linear group with {@linkcode LINEAR_GROUP_WGSL} and skip ids ≥ `groups`.
 */
export function dispatch2D(groups: number): [number, number, number] {
  if (groups <= MAX_DISPATCH) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_DISPATCH);
  return [Math.ceil(groups / y), y, 1];
}

/** WGSL: the linear workgroup id for a {@linkcode dispatch2D} dispatch. */
export const LINEAR_GROUP_WGSL = "i32(workgroupId.y * numWorkgroups.x + workgroupId.x)";

/**
 * WGSL for "every one of these booleans", written `(a) & (b) & …` rather than `a && b && …`.
 *
 * Why: WGSL's `&&` and `||` short-circuit, so Tint compiles each one into a branch. A register
 * tile unrolls its per-position bounds checks into dozens of such branches inside the tap loop,
 * and SwiftShader (Chromium's software WebGPU adapter) cannot compile that: its compiler's memory
 * grows to >10 GiB over minutes until Chromium's GPU process dies (device lost). The same checks
 * with the non-short-circuit `&` compile in ~1 s and mean the same, since the operands have no
 * side effects. So webtune's WGSL never uses `&&` or `||` (`wgsl_test.ts` checks).
 *
 * @example
 * ```ts
 * import { allOf } from "./kernel_util.ts";
 * allOf("x >= 0", "x < n"); // "(x >= 0) & (x < n)"
 * ```
 */
export function allOf(...terms: string[]): string {
  return terms.map((t) => `(${t})`).join(" & ");
}

/**
 * WGSL for "any of these booleans", `(a) | (b) | …`: the non-short-circuit `||` (see
 * {@linkcode allOf} for why).
 *
 * @example
 * ```ts
 * import { anyOf } from "./kernel_util.ts";
 * anyOf("ok0", "ok1"); // "(ok0) | (ok1)"
 * ```
 */
export function anyOf(...terms: string[]): string {
  return terms.map((t) => `(${t})`).join(" | ");
}

/** Calls another registered webgpu kernel directly (we are inside a kernel, not the engine). */
export function runKernel(
  name: string,
  inputs: Record<string, tf.TensorInfo>,
  attrs: Record<string, unknown>,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const kernel = tf.getKernel(name, "webgpu");
  if (!kernel) throw new Error(`webgpu kernel ${name} is not registered`);
  return kernel.kernelFunc({ inputs, attrs, backend } as never) as tf.TensorInfo;
}

/** Zero-pads the channel axis of an NHWC tensor (or the Cin axis of a filter) to `channels`. */
export function padAxis(
  t: tf.TensorInfo,
  axis: number,
  size: number,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const paddings = t.shape.map((d, i) => [0, i === axis ? size - d : 0]);
  return runKernel("PadV2", { x: t }, { paddings, constantValue: 0 }, backend);
}

/** Releases intermediate tensors made inside a kernel. */
export function disposeAll(backend: WebGPUBackend, infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}
