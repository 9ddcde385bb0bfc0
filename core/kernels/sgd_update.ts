/**
 * One-dispatch SGD update for tfjs-backend-webgpu: p − lr·(g + wd·p).
 *
 * Why a kernel: as tfjs ops the update is four full-size dispatches per parameter (mul, add,
 * mul, sub), 248 per ResNet-18 step; this is one. The arithmetic is the ops', in the same order
 * (a shader compiler may fuse a multiply-add: at most 1 ulp of the parameter apart).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { dispatch2D, uniformBlock, WebtuneProgram } from "./kernel_util.ts";

/** The kernel name webtune registers for webgpu (cpu/webgl have none: callers use ops there). */
export const SGD_UPDATE_KERNEL = "WebtuneSgdUpdate";

/** Attrs of {@linkcode SGD_UPDATE_KERNEL}. */
export interface SgdUpdateAttrs {
  lr: number;
  weightDecay: number;
}

const UNIFORMS = uniformBlock({ n4: "i32", lr: "f32", weightDecay: "f32" });
const PER_INVOCATION = 64;

class SgdUpdateProgram extends WebtuneProgram {
  variableNames = ["param", "grad"];
  uniforms = UNIFORMS.wgsl;
  override workgroupSize: [number, number, number] = [PER_INVOCATION, 1, 1];

  constructor(shape: number[], private readonly decay: boolean) {
    const n4 = tf.util.sizeFromShape(shape) / 4;
    // A flat layout: the prelude calls main(globalIndex).
    super(shape, { x: [0] }, dispatch2D(Math.ceil(n4 / PER_INVOCATION)), `SgdUpdate_${decay}`);
  }

  getUserCode(): string {
    // Same operations in the same order as tf.sub(p, tf.mul(tf.add(g, tf.mul(p, wd)), lr)).
    const d = this.decay ? "grad[i] + p * uniforms.weightDecay" : "grad[i]";
    return `
    fn main(i : i32) {
      if (i >= uniforms.n4) { return; }
      let p = param[i];
      let d = ${d};
      result[i] = p - d * uniforms.lr;
    }`;
  }
}

/** Whether {@linkcode sgdUpdate} handles these tensors. */
export function sgdUpdateSupports(param: tf.TensorInfo, grad: tf.TensorInfo): boolean {
  return param.dtype === "float32" && grad.dtype === "float32" &&
    tf.util.arraysEqual(param.shape, grad.shape) && tf.util.sizeFromShape(param.shape) % 4 === 0;
}

/** The updated parameter, a new tensor owned by the caller. */
export function sgdUpdate(
  param: tf.TensorInfo,
  grad: tf.TensorInfo,
  attrs: SgdUpdateAttrs,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const n4 = tf.util.sizeFromShape(param.shape) / 4;
  const program = new SgdUpdateProgram(param.shape, attrs.weightDecay !== 0);
  return backend.runWebGPUProgram(
    program,
    [param, grad],
    "float32",
    UNIFORMS.data({ n4, lr: attrs.lr, weightDecay: attrs.weightDecay }),
  );
}
