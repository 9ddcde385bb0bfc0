/**
 * One-dispatch SGD update for tfjs-backend-webgpu: p − lr·(g + wd·p).
 *
 * Why a kernel: as tfjs ops the update is four full-size dispatches per parameter (mul, add,
 * mul, sub), 248 per ResNet-18 step; this is one. The arithmetic is the ops', in the same order
 * (a shader compiler may fuse a multiply-add: at most 1 ulp of the parameter apart).
 *
 * It reads p and g from textures (see texture_operands.ts): on llvmpipe every storage-buffer load
 * is a per-lane scalar loop, and this kernel is nothing but loads; a 3×3×512×512 weight's update
 * ran 3.6× faster so, copies included (below {@linkcode MIN_TEXTURE_FLOATS} the copies cost more than
 * they save). Out-of-range invocations clamp their index to the last
 * element instead of returning early, so no load or store sits under divergent control flow
 * (they write the last element's value again).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { dispatch2D, flatMain, uniformBlock, WebtuneProgram } from "./kernel_util.ts";
import {
  MIN_TEXTURE_FLOATS,
  operandRead,
  runWithOperands,
  sharedSlots,
  texturesFit,
} from "./texture_operands.ts";

/** The kernel name webtune registers for webgpu (cpu/webgl have none: callers use ops there). */
export const SGD_UPDATE_KERNEL = "WebtuneSgdUpdate";

/** Attrs of {@linkcode SGD_UPDATE_KERNEL}. */
export interface SgdUpdateAttrs {
  lr: number;
  weightDecay: number;
}

const UNIFORMS = uniformBlock({ n4: "i32", lr: "f32", weightDecay: "f32" });
const PER_INVOCATION = 64;
const SLOTS = sharedSlots(["large", "large"]);

class SgdUpdateProgram extends WebtuneProgram {
  variableNames = ["param", "grad"];
  uniforms = UNIFORMS.wgsl;
  override workgroupSize: [number, number, number] = [PER_INVOCATION, 1, 1];

  /**
   * @param operands textures, or (`buffer`) the tensors' storage buffers read through
   *   runWithTextureOperands: one pipeline for parameters of every rank (tfjs's own runner keys
   *   its pipelines by the inputs' ranks too; each took ~0.1 s of llvmpipe code generation in a
   *   cold first step, cli/bench_pipelines.ts).
   */
  constructor(
    shape: number[],
    private readonly decay: boolean,
    operands: "textures" | "buffer",
  ) {
    const n4 = tf.util.sizeFromShape(shape) / 4;
    super(
      shape,
      { x: [0] },
      dispatch2D(Math.ceil(n4 / PER_INVOCATION)),
      `SgdUpdate_${decay}_${operands}`,
    );
  }

  getUserCode(): string {
    const read = operandRead(true);
    // Same operations in the same order as tf.sub(p, tf.mul(tf.add(g, tf.mul(p, wd)), lr)).
    const g = read("grad", "j");
    const d = this.decay ? `${g} + p * uniforms.weightDecay` : g;
    return `
    ${flatMain(true, PER_INVOCATION)}
      let j = min(i, uniforms.n4 - 1);
      let p = ${read("param", "j")};
      let d = ${d};
      result[j] = p - d * uniforms.lr;
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
  const textures = n4 * 4 >= MIN_TEXTURE_FLOATS && texturesFit(backend, [param, grad]);
  const program = new SgdUpdateProgram(
    param.shape,
    attrs.weightDecay !== 0,
    textures ? "textures" : "buffer",
  );
  const uniforms = UNIFORMS.data({ n4, lr: attrs.lr, weightDecay: attrs.weightDecay });
  return runWithOperands(backend, program, [param, grad], uniforms, textures || "buffer", SLOTS);
}
