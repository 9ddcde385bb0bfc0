import * as tf from "@tensorflow/tfjs-core";
import { assertEquals } from "@std/assert";
import { BATCH_NORM_KERNELS, batchNorm } from "@webtune/models";
import { assertClose, hostInput, useWebGPU } from "./kernel_test_util.ts";
import { registerFastKernels, unregisterFastKernels } from "./mod.ts";

/** Output, running stats and gradients of BN(x) + residual → ReLU, summed against weights r. */
async function bnStep(shape: number[], residual: boolean): Promise<Float32Array[]> {
  const c = shape[3];
  const x = tf.variable(tf.tensor(hostInput(shape, 1).data, shape));
  const res = tf.variable(tf.tensor(hostInput(shape, 2).data, shape));
  const r = tf.tensor(hostInput(shape, 3).data, shape);
  const bn = {
    weight: tf.variable(tf.tensor(hostInput([c], 4).data)),
    bias: tf.variable(tf.tensor(hostInput([c], 5).data)),
    runningMean: tf.variable(tf.zeros([c]), false),
    runningVar: tf.variable(tf.ones([c]), false),
  };
  let y: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const out = batchNorm(x as tf.Variable<tf.Rank.R4>, bn, "train", {
      residual: residual ? res as tf.Variable<tf.Rank.R4> : undefined,
      relu: true,
    });
    y = tf.keep(out);
    return tf.sum(tf.mul(out, r)) as tf.Scalar;
  }, residual ? [x, bn.weight, bn.bias, res] : [x, bn.weight, bn.bias]);
  const all = [y!, bn.runningMean, bn.runningVar, ...Object.values(grads)];
  const data = await Promise.all(all.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose([value, x, res, r, y!, ...Object.values(bn), ...Object.values(grads)]);
  return data;
}

// 8 channels: vec4 columns; 3: scalar ones. Up to ROWS_PER_BLOCK rows ([4,4,4,8]): one block of
// the channel sums (no second pass); more: several. ≥ MIN_TEXTURE_FLOATS with vec4 columns: read
// from textures ([2,24,24,8], [2,16,16,16]); else from buffers.
const SHAPES = [
  [2, 12, 12, 8],
  [2, 24, 24, 3],
  [2, 12, 12, 3],
  [2, 24, 24, 8],
  [2, 16, 16, 16],
  [4, 4, 4, 8],
];
for (const shape of SHAPES) {
  for (const residual of [false, true]) {
    Deno.test(`fused BatchNorm kernels match tfjs ops: ${shape}, residual ${residual}`, async () => {
      await useWebGPU();
      const fast = await bnStep(shape, residual);
      unregisterFastKernels();
      try {
        const ops = await bnStep(shape, residual);
        for (let i = 0; i < ops.length; i++) assertClose(fast[i], ops[i], 1e-5);
      } finally {
        registerFastKernels();
      }
    });
  }
}

/** Eval-mode BatchNorm (running statistics) + residual → ReLU. */
async function bnEval(shape: number[], residual: boolean): Promise<Float32Array> {
  const c = shape[3];
  const bn = {
    weight: tf.variable(tf.tensor(hostInput([c], 4).data)),
    bias: tf.variable(tf.tensor(hostInput([c], 5).data)),
    runningMean: tf.variable(tf.tensor(hostInput([c], 6).data), false),
    runningVar: tf.variable(tf.add(tf.tensor(hostInput([c], 7).data), 1.5), false),
  };
  const x = tf.tensor4d(hostInput(shape, 1).data, shape as [number, number, number, number]);
  const res = tf.tensor4d(hostInput(shape, 2).data, shape as [number, number, number, number]);
  const y = batchNorm(x, bn, "eval", { residual: residual ? res : undefined, relu: true });
  const data = await y.data() as Float32Array;
  tf.dispose([x, res, y, ...Object.values(bn)]);
  return data;
}

// [2,16,16,16]: textures; [2,6,6,8]: buffers; 3 channels: scalar columns.
for (const shape of [[2, 16, 16, 16], [2, 6, 6, 8], [2, 6, 6, 3]]) {
  for (const residual of [false, true]) {
    Deno.test(`eval BatchNorm kernel matches tfjs ops: ${shape}, residual ${residual}`, async () => {
      await useWebGPU();
      const fast = await bnEval(shape, residual);
      unregisterFastKernels();
      try {
        assertClose(fast, await bnEval(shape, residual), 1e-6);
      } finally {
        registerFastKernels();
      }
    });
  }
}

/** A [C] float32 tensor whose data is on the GPU (tfjs computes small CPU-only ones there). */
function onGpu(data: Float32Array): tf.Tensor1D {
  const t = tf.tensor1d(data);
  (tf.backend() as unknown as { uploadToGPU(id: unknown): void }).uploadToGPU(t.dataId);
  return t;
}

// 64 and 512: ResNet's widths; 3 and 1000: a partial last workgroup.
for (const c of [3, 64, 512, 1000]) {
  Deno.test(`BatchNorm invStd and runningAverage equal the tfjs ops they replace bit for bit: C ${c}`, async () => {
    await useWebGPU();
    const variance = onGpu(hostInput([c], 1).data.map(Math.abs));
    const running = onGpu(hostInput([c], 2).data);
    const batch = onGpu(hostInput([c], 3).data);
    const keep = 0.9, take = (0.1 * 800) / 799;
    const kernel = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap) =>
      (tf.engine().runKernel(name, inputs, attrs) as tf.Tensor).data();
    const invStd = await kernel(BATCH_NORM_KERNELS.invStd, { variance }, { eps: 1e-5 });
    const average = await kernel(BATCH_NORM_KERNELS.runningAverage, { running, batch }, {
      keep,
      take,
    });
    // The ops on the GPU (webtune's small-op kernels).
    const ops = tf.tidy(() => [
      tf.rsqrt(tf.add(variance, 1e-5)),
      tf.add(tf.mul(running, keep), tf.mul(batch, take)),
    ]);
    assertEquals(invStd, await ops[0].data());
    assertEquals(average, await ops[1].data());
    // The running average on the cpu backend: products and sum rounded to float32 alike.
    const [r, b] = [await running.data(), await batch.data()];
    await tf.setBackend("cpu");
    const cpu = tf.tidy(() => tf.add(tf.mul(r, keep), tf.mul(b, take)).dataSync());
    await tf.setBackend("webgpu");
    assertEquals(average, cpu);
    tf.dispose([variance, running, batch, ...ops]);
  });
}
