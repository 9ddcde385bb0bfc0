import * as tf from "@tensorflow/tfjs-core";
import { assertAlmostEquals, assertEquals, assertLess, assertThrows } from "@std/assert";
import { batchNorm, type BatchNormVariables, BN_EPS, type ForwardMode } from "./batch_norm.ts";
import "./gradients.ts";
import { maxErrors, seeded, useWebgpu } from "./_test_util.ts";

/** A BatchNorm layer with the given (float64, host) values. */
function layer(w: number[], b: number[], rm: number[], rv: number[]): BatchNormVariables {
  return {
    weight: tf.variable(tf.tensor1d(w)),
    bias: tf.variable(tf.tensor1d(b)),
    runningMean: tf.variable(tf.tensor1d(rm), false),
    runningVar: tf.variable(tf.tensor1d(rv), false),
  };
}
const dispose = (bn: BatchNormVariables) => Object.values(bn).forEach((v) => v.dispose());

/**
 * PyTorch's BatchNorm2d forward in float64 on NHWC data: y, and the batch statistics it would
 * fold into the running ones (biased variance to normalise, unbiased to track).
 */
function reference(
  x: number[],
  shape: number[],
  w: number[],
  b: number[],
  stats?: { mean: number[]; var: number[] },
) {
  const c = shape[3], n = x.length / c;
  const mean = new Array(c).fill(0), biased = new Array(c).fill(0);
  x.forEach((v, i) => (mean[i % c] += v / n));
  x.forEach((v, i) => (biased[i % c] += (v - mean[i % c]) ** 2 / n));
  const m = stats?.mean ?? mean, v = stats?.var ?? biased;
  const y = x.map((xi, i) =>
    ((xi - m[i % c]) / Math.sqrt(v[i % c] + BN_EPS)) * w[i % c] + b[i % c]
  );
  return { y, mean, biased, unbiased: biased.map((s) => (s * n) / (n - 1)) };
}

Deno.test("batchNorm train: batch statistics, and running stats updated the PyTorch way", async () => {
  await useWebgpu();
  const shape = [2, 2, 2, 3];
  const x = Array.from({ length: 24 }, (_, i) => Math.sin(i * 1.3) * 3 + (i % 3));
  const [w, b, rm, rv] = [[1, 2, 0.5], [0, 1, -1], [0.5, 0, -0.5], [1, 2, 0.5]];
  const bn = layer(w, b, rm, rv);
  const y = batchNorm(tf.tensor4d(x, shape as [number, number, number, number]), bn, "train");

  const ref = reference(x, shape, w, b);
  assertLess(maxErrors(await y.data(), ref.y).abs, 1e-5);
  // running = 0.9 * running + 0.1 * batch, with the unbiased (n - 1) variance: n = 8 here.
  const wantMean = rm.map((r, c) => 0.9 * r + 0.1 * ref.mean[c]);
  const wantVar = rv.map((r, c) => 0.9 * r + 0.1 * ref.unbiased[c]);
  assertLess(maxErrors(await bn.runningMean.data(), wantMean).abs, 1e-6);
  assertLess(maxErrors(await bn.runningVar.data(), wantVar).abs, 1e-6);
  assertAlmostEquals(ref.unbiased[0] / ref.biased[0], 8 / 7, 1e-12);
  y.dispose();
  dispose(bn);
});

Deno.test("batchNorm eval and frozen: running statistics, never updated", async () => {
  await useWebgpu();
  const shape = [1, 2, 3, 2];
  const x = [0.1, -2, 3, 0.4, 5, -0.6, 0.7, 8, -9, 1, 2, 3];
  const [w, b, rm, rv] = [[1.5, -1], [0.1, 0.2], [0.3, -0.4], [2, 0.5]];
  for (const mode of ["eval", "frozen"] as ForwardMode[]) {
    const bn = layer(w, b, rm, rv);
    const y = batchNorm(tf.tensor4d(x, shape as [number, number, number, number]), bn, mode);
    const ref = reference(x, shape, w, b, { mean: rm, var: rv });
    assertLess(maxErrors(await y.data(), ref.y).abs, 1e-5, mode);
    assertEquals([...await bn.runningMean.data()], rm.map(Math.fround));
    assertEquals([...await bn.runningVar.data()], rv.map(Math.fround));
    y.dispose();
    dispose(bn);
  }
});

Deno.test("batchNorm train refuses one value per channel, as PyTorch does", async () => {
  await useWebgpu();
  const bn = layer([1], [0], [0], [1]);
  assertThrows(
    () => batchNorm(tf.zeros([1, 1, 1, 1]) as tf.Tensor4D, bn, "train"),
    Error,
    "expected more than 1 value per channel when training",
  );
  dispose(bn);
});

Deno.test("batchNorm gradients (train and frozen) match finite differences", async () => {
  await useWebgpu();
  const shape = [3, 4, 4, 2] as [number, number, number, number];
  const random = seeded(7);
  const x = Array.from({ length: 96 }, () => random() * 4 - 1);
  const r = Array.from({ length: 96 }, () => random() * 2 - 1); // loss = sum(y * r)
  const [w, b, rm, rv] = [[1.3, 0.7], [0.2, -0.1], [0.4, 0.9], [1.5, 0.6]];

  for (const mode of ["train", "frozen"] as ForwardMode[]) {
    // Host float64 loss, and central differences of it.
    const stats = mode === "train" ? undefined : { mean: rm, var: rv };
    const loss = (xs: number[], ws: number[], bs: number[]) =>
      reference(xs, shape, ws, bs, stats).y.reduce((s, y, i) => s + y * r[i], 0);
    const h = 1e-5;
    const numeric = (vec: number[], f: (v: number[]) => number) =>
      vec.map((_, i) => {
        const up = vec.slice(), down = vec.slice();
        up[i] += h;
        down[i] -= h;
        return (f(up) - f(down)) / (2 * h);
      });
    const want = [
      numeric(x, (v) => loss(v, w, b)),
      numeric(w, (v) => loss(x, v, b)),
      numeric(b, (v) => loss(x, w, v)),
    ];

    const bn = layer(w, b, rm, rv);
    const xv = tf.variable(tf.tensor4d(x, shape));
    const rt = tf.tensor4d(r, shape);
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(batchNorm(xv, bn, mode), rt)) as tf.Scalar,
      [xv, bn.weight, bn.bias],
    );
    const got = [grads[xv.name], grads[bn.weight.name], grads[bn.bias.name]];
    for (let i = 0; i < 3; i++) {
      const { abs, scale } = maxErrors(await got[i].data(), want[i]);
      assertLess(abs, 1e-4 * Math.max(1, scale), `${mode} gradient ${["x", "weight", "bias"][i]}`);
    }
    tf.dispose([value, xv, rt, ...Object.values(grads)]);
    dispose(bn);
  }
});

Deno.test("batchNorm + residual + ReLU (train): output and gradients match finite differences", async () => {
  await useWebgpu();
  const shape = [2, 3, 3, 4] as [number, number, number, number];
  const size = 72;
  const random = seeded(11);
  const x = Array.from({ length: size }, () => random() * 4 - 1);
  const res = Array.from({ length: size }, () => random() * 2 - 1);
  const r = Array.from({ length: size }, () => random() * 2 - 1); // loss = sum(out * r)
  const [w, b, rm, rv] = [[1.3, 0.7, -0.4, 1], [0.2, -0.1, 0.3, 0], [0, 0, 0, 0], [1, 1, 1, 1]];
  const forward = (xs: number[], ws: number[], bs: number[], rs: number[]) =>
    reference(xs, shape, ws, bs).y.map((y, i) => Math.max(0, y + rs[i]));
  const loss = (xs: number[], ws: number[], bs: number[], rs: number[]) =>
    forward(xs, ws, bs, rs).reduce((s, o, i) => s + o * r[i], 0);
  const h = 1e-5;
  const numeric = (vec: number[], f: (v: number[]) => number) =>
    vec.map((_, i) => {
      const up = vec.slice(), down = vec.slice();
      up[i] += h;
      down[i] -= h;
      return (f(up) - f(down)) / (2 * h);
    });
  const want = [
    numeric(x, (v) => loss(v, w, b, res)),
    numeric(w, (v) => loss(x, v, b, res)),
    numeric(b, (v) => loss(x, w, v, res)),
    numeric(res, (v) => loss(x, w, b, v)),
  ];

  const bn = layer(w, b, rm, rv);
  const xv = tf.variable(tf.tensor4d(x, shape));
  const resv = tf.variable(tf.tensor4d(res, shape));
  const rt = tf.tensor4d(r, shape);
  let out: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const y = batchNorm(xv, bn, "train", { residual: resv, relu: true });
    out = tf.keep(y);
    return tf.sum(tf.mul(y, rt)) as tf.Scalar;
  }, [xv, bn.weight, bn.bias, resv]);
  assertLess(maxErrors(await out!.data(), forward(x, w, b, res)).abs, 1e-5);
  const got = [grads[xv.name], grads[bn.weight.name], grads[bn.bias.name], grads[resv.name]];
  for (let i = 0; i < got.length; i++) {
    const { abs, scale } = maxErrors(await got[i].data(), want[i]);
    assertLess(
      abs,
      1e-4 * Math.max(1, scale),
      `gradient ${["x", "weight", "bias", "residual"][i]}`,
    );
  }
  tf.dispose([value, xv, resv, rt, out!, ...Object.values(grads)]);
  dispose(bn);
});
