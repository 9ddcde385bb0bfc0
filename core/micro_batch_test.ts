import * as tf from "@tensorflow/tfjs-core";
import { assertEquals, assertGreater, assertLess, assertThrows } from "@std/assert";
import { createResNet18, type ResNet18 } from "@webtune/models";
import { setupBackend } from "./backend.ts";
import type { HostBatch } from "./batches.ts";
import { evaluate } from "./evaluate.ts";
import {
  accumulateGradients,
  balancedMicroBatch,
  microBatchThatFits,
  splitHostBatch,
  trainOnHostBatch,
} from "./micro_batch.ts";
import { buildParamGroups } from "./param_groups.ts";
import { Sgd } from "./sgd.ts";
import { iterate, lcg as seeded, TinyModel } from "./test_util.ts";
import { computeGradients, disposeGradients, type Gradients } from "./train_step.ts";
import { disposeBatch, toDevice } from "./batches.ts";

await setupBackend();

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** A random batch of `n` images of `size` px with labels alternating 0/1. */
function randomBatch(n: number, size: number, seed: number): HostBatch {
  const random = lcg(seed);
  const x = Float32Array.from({ length: n * size * size * 3 }, () => 2 * random() - 1);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  return { x, shape: [n, size, size, 3], labels };
}

/** Max |a − b| over every gradient, relative to the largest |b| of that gradient. */
async function maxRelativeDifference(
  a: Map<string, tf.Tensor>,
  b: Map<string, tf.Tensor>,
): Promise<number> {
  let worst = 0;
  for (const [name, tb] of b) {
    const va = await a.get(name)!.data(), vb = await tb.data();
    let abs = 0, scale = 0;
    for (let i = 0; i < vb.length; i++) {
      abs = Math.max(abs, Math.abs(va[i] - vb[i]));
      scale = Math.max(scale, Math.abs(vb[i]));
    }
    if (scale > 0) worst = Math.max(worst, abs / scale);
  }
  return worst;
}

function model(): ResNet18 {
  return createResNet18({ numClasses: 2, random: lcg(7) });
}

Deno.test("splitHostBatch: consecutive views, the last slice releases the batch", () => {
  let released = 0;
  const batch = { ...randomBatch(5, 2, 1), release: () => released++ };
  const parts = splitHostBatch(batch, 2);
  assertEquals(parts.map((p) => p.shape[0]), [2, 2, 1]);
  assertEquals(parts.map((p) => [...p.labels]), [[0, 1], [0, 1], [0]]);
  assertEquals(parts[1].x[0], batch.x[2 * 2 * 2 * 3]);
  assertEquals(parts[0].release, undefined);
  parts[2].release!();
  assertEquals(released, 1);
  assertEquals(splitHostBatch(batch, 8), [batch]);
  assertThrows(() => splitHostBatch(batch, 0), Error, "positive integer");
});

Deno.test("balancedMicroBatch and microBatchThatFits: equal slices within the limit", () => {
  assertEquals(balancedMicroBatch(128, 128), 128);
  assertEquals(balancedMicroBatch(128, 41), 32);
  assertEquals(balancedMicroBatch(128, 100), 64);
  assertEquals(balancedMicroBatch(10, 3), 3);
  assertThrows(() => balancedMicroBatch(8, 0), Error, "not even one");
  // ResNet-18's stem output at 224 px is 112·112·64 floats per example; llvmpipe allows 128 MiB.
  assertEquals(microBatchThatFits(128, 112 * 112 * 64 * 4, 128 * 2 ** 20), 41);
  assertEquals(microBatchThatFits(16, 112 * 112 * 64 * 4, 128 * 2 ** 20), 16);
  assertEquals(microBatchThatFits(16, 1000, undefined), 16);
});

Deno.test("micro-batches, frozen BatchNorm: the step equals the full-batch step", async () => {
  const host = randomBatch(4, 32, 11);
  const full = model(), micro = model();
  const fullSgd = new Sgd(buildParamGroups(full.parameters(), { lr: 0.01 }), { weightDecay: 1e-3 });
  const microSgd = new Sgd(buildParamGroups(micro.parameters(), { lr: 0.01 }), {
    weightDecay: 1e-3,
  });
  const batch = toDevice(host);
  const g = computeGradients(full, batch, fullSgd.trainable(), "frozen");
  const m = accumulateGradients(micro, host, microSgd.trainable(), {
    microBatch: 2,
    mode: "frozen",
  });
  assertLess(await maxRelativeDifference(m.grads, g.grads), 1e-5);
  assertLess(
    Math.abs((await m.lossPerExample.data())[3] - (await g.lossPerExample.data())[3]),
    1e-5,
  );
  fullSgd.step(g.grads);
  microSgd.step(m.grads);
  disposeGradients(g);
  disposeGradients(m);
  tf.dispose([batch.x, batch.labels]);
  const weights = (r: ResNet18) => new Map(r.parameters().map(([n, v]) => [n, v as tf.Tensor]));
  assertLess(await maxRelativeDifference(weights(micro), weights(full)), 1e-6);
  full.dispose();
  micro.dispose();
});

Deno.test("micro-batches, train mode: 2 × 4 sums two batch-4 gradient computations", async () => {
  const host = randomBatch(8, 32, 12);
  const net = model();
  const params = net.parameters();
  const halves = splitHostBatch(host, 4).map(toDevice);
  const parts = halves.map((b) => computeGradients(net, b, params, "train"));
  const summed = new Map<string, tf.Tensor>();
  for (const [name] of params) {
    summed.set(name, tf.add(parts[0].grads.get(name)!, parts[1].grads.get(name)!));
  }
  const micro: Gradients = accumulateGradients(net, host, params, { microBatch: 4 });
  const whole = accumulateGradients(net, host, params);
  assertLess(await maxRelativeDifference(micro.grads, summed), 1e-6);
  // Not the full-batch step: BatchNorm saw each half's statistics, not the batch's.
  assertGreater(await maxRelativeDifference(whole.grads, summed), 1e-3);
  for (const g of [...parts, micro, whole]) disposeGradients(g);
  tf.dispose([...summed.values(), ...halves.flatMap((b) => [b.x, b.labels])]);
  net.dispose();
});

Deno.test("micro-batches: a step and an evaluation leak no tensors and match whole batches", async () => {
  const host = randomBatch(6, 32, 13);
  const net = model();
  const sgd = new Sgd(buildParamGroups(net.parameters(), { lr: 0.001 }));
  const before = tf.memory().numTensors;
  const step = await trainOnHostBatch(net, host, sgd, { microBatch: 4 });
  assertEquals(step.examples, 6);
  assertEquals(tf.memory().numTensors, before);
  const whole = await evaluate(net, iterate([host]));
  const sliced = await evaluate(net, iterate([host]), { microBatch: 4 });
  assertEquals([...sliced.predictions], [...whole.predictions]);
  assertLess(
    Math.max(...sliced.probabilities.map((p, i) => Math.abs(p - whole.probabilities[i]))),
    1e-6,
  );
  assertEquals(tf.memory().numTensors, before);
  sgd.dispose();
  net.dispose();
});

Deno.test("trainOnHostBatch trains with label smoothing: its loss is the smoothed cross-entropy", async () => {
  const batch = randomBatch(6, 4, 11);
  const lossOf = async (epsilon: number) => {
    const tiny = new TinyModel(2, seeded(5));
    const device = toDevice(batch);
    const g = computeGradients(tiny, device, tiny.parameters(), "train", epsilon);
    const expected = Array.from(await g.lossPerExample.data()).reduce((a, b) => a + b, 0);
    disposeGradients(g);
    disposeBatch(device);
    const sgd = new Sgd(buildParamGroups(tiny.parameters(), { lr: 0.1 }));
    const step = await trainOnHostBatch(tiny, batch, sgd, {
      microBatch: 4,
      labelSmoothing: epsilon,
    });
    sgd.dispose();
    tiny.dispose();
    return { expected, got: step.lossSum };
  };
  const plain = await lossOf(0), smoothed = await lossOf(0.4);
  assertLess(Math.abs(smoothed.got - smoothed.expected), 1e-5 * smoothed.expected);
  // The smoothed loss of the same logits differs from the plain one, so ε reached the loss.
  assertGreater(Math.abs(smoothed.got - plain.got), 1e-3);
});
