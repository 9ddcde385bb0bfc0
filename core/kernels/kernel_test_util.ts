/**
 * Test helpers for core/kernels: run a kernel on webgpu with our kernels registered and on the
 * tfjs cpu backend, and compare.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals } from "@std/assert";
import { setupBackend } from "../backend.ts";
import { registerFastKernels } from "./mod.ts";

/** A named input: shape plus deterministic pseudo-random data in [-1, 1). */
export interface HostInput {
  shape: number[];
  data: Float32Array;
}

/** Deterministic pseudo-random data (an LCG), so failures reproduce. */
export function hostInput(shape: number[], seed: number): HostInput {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return { shape, data };
}

/** Sets up webgpu (once) with our kernels registered. */
export async function useWebGPU(): Promise<void> {
  await setupBackend({ backend: "webgpu" });
  if (tf.getBackend() !== "webgpu") await tf.setBackend("webgpu");
  registerFastKernels();
}

/** Runs kernel `name` on the active backend and returns its output's data. */
async function run(
  name: string,
  inputs: Record<string, HostInput>,
  attrs: Record<string, unknown>,
): Promise<Float32Array> {
  const tensors: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) tensors[k] = tf.tensor(v.data, v.shape);
  const out = tf.engine().runKernel(name, tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
  const data = await out.data() as Float32Array;
  tf.dispose([out, ...Object.values(tensors)]);
  return data;
}

/** Runs kernel `name` on the tfjs cpu backend (the reference), then switches back to webgpu. */
export async function runOnCpu(
  name: string,
  inputs: Record<string, HostInput>,
  attrs: Record<string, unknown>,
): Promise<Float32Array> {
  await tf.setBackend("cpu");
  try {
    return await run(name, inputs, attrs);
  } finally {
    await tf.setBackend("webgpu");
  }
}

/**
 * Runs kernel `name` on webgpu twice; asserts no WebGPU validation error, no leaked tensors or
 * backend buffers on the second run, and that both runs agree. Returns the output's data.
 */
export async function runOnWebGPU(
  name: string,
  inputs: Record<string, HostInput>,
  attrs: Record<string, unknown>,
): Promise<Float32Array> {
  const backend = tf.backend() as unknown as { device: GPUDevice; numDataIds(): number };
  backend.device.pushErrorScope("validation");
  const first = await run(name, inputs, attrs);
  const tensorsBefore = tf.memory().numTensors;
  const buffersBefore = backend.numDataIds();
  const second = await run(name, inputs, attrs);
  const error = await backend.device.popErrorScope();
  assertEquals(error, null, `WebGPU validation error: ${error?.message}`);
  assertEquals(tf.memory().numTensors, tensorsBefore, "tensors leaked");
  assertEquals(backend.numDataIds(), buffersBefore, "backend buffers leaked");
  assertEquals(second, first, "two runs differ");
  return first;
}

/** Asserts max |got − want| ≤ `tol` · max |want| (and equal lengths). Returns the relative error. */
export function assertClose(got: Float32Array, want: Float32Array, tol = 1e-4): number {
  assertEquals(got.length, want.length, "output sizes differ");
  let maxAbs = 0, maxErr = 0;
  for (let i = 0; i < want.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(want[i]));
    const err = Math.abs(got[i] - want[i]);
    maxErr = Number.isNaN(err) ? Infinity : Math.max(maxErr, err);
  }
  assert(maxAbs > 0, "reference is all zeros");
  const rel = maxErr / maxAbs;
  assert(rel <= tol, `relative error ${rel.toExponential(2)} > ${tol}`);
  return rel;
}

/** One ResNet-18 conv shape class, at batch 2 and the sizes a 32 px image gives (or odd ones). */
export interface ConvCase {
  name: string;
  x: [number, number, number, number];
  k: number;
  cout: number;
  stride: number;
  /** PyTorch-style symmetric pad (explicit in tfjs), or a tfjs pad string. */
  pad: number | "same" | "valid";
}

/** ResNet-18's conv classes, plus odd sizes and tfjs's own pad strings. */
export const CONV_CASES: ConvCase[] = [
  { name: "stem 7x7/2 pad 3, 3 channels", x: [2, 32, 32, 3], k: 7, cout: 64, stride: 2, pad: 3 },
  { name: "stem, odd size 33", x: [2, 33, 33, 3], k: 7, cout: 64, stride: 2, pad: 3 },
  { name: "3x3/1 pad 1", x: [2, 8, 8, 64], k: 3, cout: 64, stride: 1, pad: 1 },
  { name: "3x3/2 pad 1, odd 9", x: [2, 9, 9, 64], k: 3, cout: 128, stride: 2, pad: 1 },
  { name: "1x1/2 pad 0 downsample", x: [2, 8, 8, 64], k: 1, cout: 128, stride: 2, pad: 0 },
  { name: "1x1/2 pad 0, odd 7", x: [2, 7, 7, 128], k: 1, cout: 256, stride: 2, pad: 0 },
  { name: "3x3/1 'same', odd 5", x: [2, 5, 5, 128], k: 3, cout: 128, stride: 1, pad: "same" },
  {
    name: "3x3/2 'same' (tfjs's split)",
    x: [2, 4, 4, 128],
    k: 3,
    cout: 256,
    stride: 2,
    pad: "same",
  },
  { name: "3x3 'valid'", x: [3, 7, 7, 16], k: 3, cout: 8, stride: 1, pad: "valid" },
  // Channel counts outside ResNet-18, for the kernels' other code paths.
  { name: "24 channels (8-row dW tiles)", x: [2, 6, 6, 24], k: 3, cout: 8, stride: 1, pad: 1 },
  { name: "12 channels (padded dW)", x: [2, 7, 7, 12], k: 3, cout: 16, stride: 2, pad: 1 },
  { name: "layer4 3x3/2 256->512, 2x2", x: [2, 2, 2, 256], k: 3, cout: 512, stride: 2, pad: 1 },
  { name: "layer4 3x3/1 512, 1x1", x: [2, 1, 1, 512], k: 3, cout: 512, stride: 1, pad: 1 },
];

/**
 * The cases a Winograd kernel (3×3, stride 1) takes: those of {@linkcode CONV_CASES}, plus odd
 * output sizes in both directions (partial tiles; asymmetric 'same' padding is not possible at
 * stride 1, so a non-square odd map and a 1-pixel-high one).
 */
export const WINOGRAD_CASES: ConvCase[] = [
  ...CONV_CASES.filter((c) => c.k === 3 && c.stride === 1),
  { name: "3x3/1 pad 1, 7x5 map", x: [2, 7, 5, 16], k: 3, cout: 32, stride: 1, pad: 1 },
  { name: "3x3/1 pad 1, 1x9 map", x: [1, 1, 9, 8], k: 3, cout: 16, stride: 1, pad: 1 },
];

/** tfjs's `pad` attr for a case: explicit NHWC pairs for a number, else the string. */
export function padAttr(pad: ConvCase["pad"]): unknown {
  return typeof pad === "number" ? [[0, 0], [pad, pad], [pad, pad], [0, 0]] : pad;
}

/** Conv2D's attrs (NHWC, no dilation) for a stride and a padding as {@linkcode ConvCase} has it. */
export function conv2DAttrs(stride: number, pad: ConvCase["pad"]): tf.NamedAttrMap {
  return {
    strides: [stride, stride],
    pad: padAttr(pad) as tf.NamedAttrMap[string],
    dataFormat: "NHWC",
    dilations: [1, 1],
  };
}

/** dy's shape for a case. */
export function dyShape(c: ConvCase): number[] {
  const info = tf.backend_util.computeConv2DInfo(
    c.x,
    [c.k, c.k, c.x[3], c.cout],
    c.stride,
    1,
    padAttr(c.pad) as "same",
  );
  return info.outShape;
}

/**
 * Runs `f` with webgpu's kernel `name` replaced by `variant` (which returns null to defer to
 * the kernel registered before, as webtune's kernels do), then restores that kernel. For
 * testing kernel variants that `registerFastKernels` does not pick by default.
 */
export async function withKernelVariant<T>(
  name: string,
  variant: (args: { inputs: tf.NamedTensorInfoMap; attrs: unknown; backend: unknown }) =>
    | tf.TensorInfo
    | null,
  f: () => Promise<T>,
): Promise<T> {
  const before = tf.getKernel(name, "webgpu");
  if (!before) throw new Error(`no webgpu ${name} kernel registered`);
  tf.unregisterKernel(name, "webgpu");
  tf.registerKernel({
    kernelName: name,
    backendName: "webgpu",
    kernelFunc: ((args: { inputs: tf.NamedTensorInfoMap; attrs: unknown; backend: unknown }) =>
      variant(args) ?? before.kernelFunc(args as never)) as tf.KernelFunc,
  });
  try {
    return await f();
  } finally {
    tf.unregisterKernel(name, "webgpu");
    tf.registerKernel(before);
  }
}
