/**
 * Large same-shape `Add`, `Sub` and `Multiply` with texture operands.
 *
 * Why: tfjs's binary kernels read both operands from storage buffers, which llvmpipe turns into
 * a per-lane scalar loop per load (see texture_operands.ts). In a ResNet training step these are
 * the gradient accumulations (a block's input feeds its conv and its shortcut, so tfjs adds the
 * two gradients) and some of the loss's arithmetic. The result is the same IEEE operation.
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
} from "./kernel_util.ts";
import {
  MIN_TEXTURE_FLOATS,
  runWithTextureOperands,
  sharedSlots,
  textureKindFor,
  texturesFit,
} from "./texture_operands.ts";

/** The WGSL of each operation webtune runs this way. */
const OPERATIONS = { Add: "a + b", Sub: "a - b", Multiply: "a * b" } as const;
type Operation = keyof typeof OPERATIONS;

const UNIFORMS = uniformBlock({ n4: "i32" });
const PER_INVOCATION = 64;
const SLOTS = sharedSlots(["large", "large"]);

/** Whether kernel `name` is one {@linkcode sameShapeBinary} may run. */
export function isSameShapeOp(name: string): name is Operation {
  return name in OPERATIONS;
}

class SameShapeBinaryProgram extends WebtuneProgram {
  variableNames = ["a", "b"];
  uniforms = UNIFORMS.wgsl;
  override workgroupSize: [number, number, number] = [PER_INVOCATION, 1, 1];

  constructor(shape: number[], private readonly operation: Operation) {
    const n4 = tf.util.sizeFromShape(shape) / 4;
    super(shape, { x: [0] }, dispatch2D(Math.ceil(n4 / PER_INVOCATION)), `Binary_${operation}`);
  }

  getUserCode(): string {
    // Past the end: redo the last element (same value, same place) rather than return.
    return `
    ${flatMain(true, PER_INVOCATION)}
      let j = min(i, uniforms.n4 - 1);
      let a = ld_a(j);
      let b = ld_b(j);
      result[j] = ${OPERATIONS[this.operation]};
    }`;
  }
}

/**
 * `a op b` for float32 operands of one shape with at least MIN_TEXTURE_FLOATS elements (a
 * multiple of 4); null otherwise (the caller runs another kernel).
 */
export function sameShapeBinary(
  name: Operation,
  inputs: tf.NamedTensorInfoMap,
  backend: WebGPUBackend,
): tf.TensorInfo | null {
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const size = tf.util.sizeFromShape(a.shape);
  const eligible = storedAsFloat32(backend, a) && storedAsFloat32(backend, b) &&
    tf.util.arraysEqual(a.shape, b.shape) && size >= MIN_TEXTURE_FLOATS &&
    texturesFit(backend, [a, b]);
  if (!eligible) return null;
  const program = new SameShapeBinaryProgram(a.shape, name);
  return runWithTextureOperands(
    backend,
    program,
    [a, b],
    UNIFORMS.data({ n4: size / 4 }),
    textureKindFor(true),
    SLOTS,
  );
}
