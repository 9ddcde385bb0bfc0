import * as tf from "@tensorflow/tfjs-core";
import { assertEquals, assertLess } from "@std/assert";
import "./gradients.ts";
import { maxErrors, seeded, useWebgpu } from "./_test_util.ts";

/** Host data for a tensor: uniform in [-1, 1). */
function randomData(
  shape: number[],
  random: () => number,
): { data: Float32Array; shape: number[] } {
  const n = shape.reduce((a, b) => a * b, 1);
  return { data: Float32Array.from({ length: n }, () => random() * 2 - 1), shape };
}
const tensor = (h: { data: Float32Array; shape: number[] }) => tf.tensor(h.data, h.shape);

/**
 * Runs `f` on the cpu backend, then on webgpu, and returns both results read back. `f` must
 * create its tensors itself: tfjs-webgpu cannot move data to another backend in Deno (its
 * synchronous read path needs a canvas).
 */
async function onBothBackends(f: () => tf.Tensor[]): Promise<[Float32Array[], Float32Array[]]> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const out = tf.tidy(f);
    const data = await Promise.all(out.map((t) => t.data() as Promise<Float32Array>));
    tf.dispose(out);
    return data;
  };
  await useWebgpu();
  const cpu = await run("cpu");
  const gpu = await run("webgpu");
  return [cpu, gpu];
}

Deno.test("every kernel of a ResNet-18 training step has a registered gradient", () => {
  const kernels = [
    "Conv2D",
    "FusedBatchNorm",
    "MaxPool",
    "Relu",
    "Add",
    "Sub",
    "Multiply",
    "RealDiv",
    "Mean",
    "Sum",
    "Max",
    "Exp",
    "Log",
    "Reshape",
    "BatchMatMul",
    "Rsqrt",
    "Square",
    "PadV2",
  ];
  for (const kernel of kernels) assertEquals(tf.getGradient(kernel)?.kernelName, kernel);
});

// ResNet-18's four convolution shapes: the 7×7/2 stem (odd and even inputs), 3×3/1, 3×3/2 and
// the 1×1/2 downsample. Explicit (numeric) padding, PyTorch's semantics.
const CONVS = [
  { k: 7, stride: 2, pad: 3, cin: 3, cout: 8, size: 33 },
  { k: 7, stride: 2, pad: 3, cin: 3, cout: 8, size: 32 },
  { k: 3, stride: 1, pad: 1, cin: 8, cout: 8, size: 9 },
  { k: 3, stride: 2, pad: 1, cin: 8, cout: 16, size: 9 },
  { k: 1, stride: 2, pad: 0, cin: 8, cout: 16, size: 9 },
];

Deno.test("conv2d with explicit padding: webgpu gradients equal cpu's and tf.pad + 'valid'", async () => {
  for (const c of CONVS) {
    const random = seeded(c.k * 100 + c.size);
    const x = randomData([2, c.size, c.size, c.cin], random);
    const w = randomData([c.k, c.k, c.cin, c.cout], random);
    const outSize = Math.floor((c.size + 2 * c.pad - c.k) / c.stride) + 1;
    const r = randomData([2, outSize, outSize, c.cout], random);
    const padded = (x: tf.Tensor4D, w: tf.Tensor4D) => {
      const p = c.pad;
      return tf.conv2d(tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]), w, c.stride, "valid");
    };
    const loss = (conv: (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D) => () =>
      tf.grads((x: tf.Tensor, w: tf.Tensor) =>
        tf.sum(tf.mul(conv(x as tf.Tensor4D, w as tf.Tensor4D), tensor(r)))
      )([tensor(x), tensor(w)]);

    const [cpu, gpu] = await onBothBackends(loss((x, w) => tf.conv2d(x, w, c.stride, c.pad)));
    const [, gpuPadded] = await onBothBackends(loss(padded));
    for (let i = 0; i < 2; i++) {
      const label = `${c.k}×${c.k}/${c.stride} pad ${c.pad} at ${c.size} px, d${i ? "w" : "x"}`;
      const { abs, scale } = maxErrors(gpu[i], cpu[i]);
      assertLess(abs, 1e-5 * Math.max(1, scale), label);
      assertLess(maxErrors(gpuPadded[i], cpu[i]).abs, 1e-5 * Math.max(1, scale), label);
    }
  }
});

Deno.test("maxPool 3×3/2 pad 1 gradient on webgpu equals cpu's", async () => {
  const random = seeded(3);
  // Distinct values: with ties the two backends may route the gradient to different maxima.
  const x = randomData([2, 9, 9, 4], random);
  const r = randomData([2, 5, 5, 4], random);
  const [cpu, gpu] = await onBothBackends(() => [
    tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(x as tf.Tensor4D, 3, 2, 1), tensor(r))))(
      tensor(x),
    ),
  ]);
  assertLess(maxErrors(gpu[0], cpu[0]).abs, 1e-6);
});

Deno.test("cross-entropy via logSumExp differentiates to softmax - onehot", async () => {
  await useWebgpu();
  const logits = tf.tensor2d([[2, 0, -1], [0.5, 0.5, 3]]);
  const onehot = tf.tensor2d([[1, 0, 0], [0, 0, 1]]);
  const loss = (l: tf.Tensor) => tf.sum(tf.sub(tf.logSumExp(l, 1), tf.sum(tf.mul(l, onehot), 1)));
  const got = tf.grad(loss)(logits);
  const want = tf.sub(tf.softmax(logits), onehot);
  assertLess(maxErrors(await got.data(), await want.data()).abs, 1e-6);
  tf.dispose([logits, onehot, got, want]);
});
