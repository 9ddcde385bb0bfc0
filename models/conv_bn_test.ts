import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { assert, assertEquals } from "@std/assert";
import { batchNorm, type BatchNormVariables } from "./batch_norm.ts";
import {
  CONV_PREPARE_FILTER_KERNEL,
  convBiasAct,
  foldBatchNorm,
  FoldedConvCache,
} from "./conv_bn.ts";

await tf.setBackend("cpu");

function bnOf(c: number, seed: number): BatchNormVariables {
  const r = (shift: number) => tf.randomUniform([c], shift, shift + 1, "float32", seed++);
  return {
    weight: tf.variable(r(0.5)),
    bias: tf.variable(r(-0.5)),
    runningMean: tf.variable(r(-0.5), false),
    runningVar: tf.variable(r(0.5), false),
  };
}

function maxRelError(a: Float32Array, b: Float32Array): number {
  let err = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}

Deno.test("a conv with eval BatchNorm folded in matches conv → eval BatchNorm → + residual → ReLU", async () => {
  const x = tf.randomNormal([2, 9, 9, 8], 0, 1, "float32", 1) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 8, 12], 0, 0.3, "float32", 2) as tf.Tensor4D;
  const residual = tf.randomNormal([2, 5, 5, 12], 0, 1, "float32", 3) as tf.Tensor4D;
  const bn = bnOf(12, 4);
  const epilogue = { residual, relu: true };
  const folded = foldBatchNorm(w, bn);
  const got = await convBiasAct(x, folded, 2, 1, epilogue).data() as Float32Array;
  const want = await batchNorm(tf.conv2d(x, w, 2, 1), bn, "eval", epilogue).data() as Float32Array;
  assert(want.some((v) => v === 0) && want.some((v) => v > 0), "ReLU tested");
  // Products with W·scale instead of the sum times scale: float32 rounding apart, no more.
  const err = maxRelError(got, want);
  assert(err < 1e-6, `relative error ${err}`);
});

Deno.test("FoldedConvCache folds once and again only after a parameter or statistic changes", async () => {
  const w = tf.variable(tf.randomNormal([3, 3, 4, 8], 0, 1, "float32", 5));
  const bn = bnOf(8, 6);
  const cache = new FoldedConvCache();
  const first = cache.get("conv", w, bn);
  assert(cache.get("conv", w, bn) === first, "the same fold while nothing changed");
  bn.runningVar.assign(tf.tidy(() => tf.add(bn.runningVar, 1)));
  const before = tf.memory().numTensors;
  const second = cache.get("conv", w, bn);
  assert(second !== first, "a new fold after running_var changed");
  assert(first.filter.isDisposed && first.bias.isDisposed, "the old fold was freed");
  assertEquals(tf.memory().numTensors, before, "nothing else kept");
  const fresh = foldBatchNorm(w as tf.Tensor4D, bn);
  assertEquals(await second.filter.data(), await fresh.filter.data());
  assertEquals(await second.bias.data(), await fresh.bias.data());
  w.assign(tf.mul(w, 2));
  assert(cache.get("conv", w, bn) !== second, "a new fold after the conv weight changed");
  cache.dispose();
  assert(second.filter.isDisposed, "dispose frees the folds");
});

Deno.test("FoldedConvCache keeps what the backend prepares of a folded filter, and frees it with the fold", async () => {
  // A stand-in for a backend's preparation: 2·filter for stride-1 convs, nothing (size 0) else.
  const seen: unknown[] = [];
  tf.registerKernel({
    kernelName: CONV_PREPARE_FILTER_KERNEL,
    backendName: "cpu",
    kernelFunc: ({ inputs, attrs, backend }) => {
      seen.push(attrs!.strides);
      const { filter } = inputs as { filter: tf.TensorInfo };
      const cpu = backend as unknown as {
        readSync(id: unknown): Float32Array;
        makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
      };
      if (attrs!.strides !== 1) return cpu.makeTensorInfo([0], "float32", new Float32Array(0));
      const doubled = cpu.readSync(filter.dataId).map((v) => 2 * v);
      return cpu.makeTensorInfo(filter.shape, "float32", doubled);
    },
  });
  try {
    const w = tf.variable(tf.randomNormal([3, 3, 4, 8], 0, 1, "float32", 7));
    const bn = bnOf(8, 8);
    const cache = new FoldedConvCache();
    const before = tf.memory().numTensors;
    assertEquals(cache.get("strided", w, bn, { stride: 2, pad: 1 }).prepared, undefined);
    assertEquals(tf.memory().numTensors, before + 2, "filter and bias, no empty preparation");
    const folded = cache.get("conv", w, bn, { stride: 1, pad: 1 });
    assert(folded.prepared !== undefined, "prepared for a stride-1 conv");
    assertEquals(await folded.prepared.data(), (await folded.filter.data()).map((v) => 2 * v));
    assertEquals(seen, [2, 1], "prepared once per fold, with the conv's stride");
    assert(cache.get("conv", w, bn, { stride: 1, pad: 1 }) === folded, "kept with the fold");
    assertEquals(seen.length, 2);
    // The fold without a geometry (e.g. a caller that does not know it) prepares nothing.
    const bare = new FoldedConvCache();
    assertEquals(bare.get("other", w, bn).prepared, undefined);
    bare.dispose();
    bn.runningMean.assign(tf.tidy(() => tf.add(bn.runningMean, 1)));
    const refolded = cache.get("conv", w, bn, { stride: 1, pad: 1 });
    assert(folded.prepared.isDisposed, "a new fold frees the old preparation");
    cache.dispose();
    assert(refolded.prepared!.isDisposed, "dispose frees the preparations");
  } finally {
    tf.unregisterKernel(CONV_PREPARE_FILTER_KERNEL, "cpu");
  }
});
