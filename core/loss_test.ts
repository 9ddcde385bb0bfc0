import * as tf from "@tensorflow/tfjs-core";
import { assertAlmostEquals, assertThrows } from "@std/assert";
import { crossEntropyPerExample } from "./loss.ts";
import { setupBackend } from "./backend.ts";

await setupBackend();

Deno.test("cross-entropy per example equals -log softmax[label], stable for large logits", async () => {
  const logits = tf.tensor2d([[2, 0, -1], [1000, 0, 999]]);
  const labels = tf.tensor1d([0, 2], "int32");
  const losses = await crossEntropyPerExample(logits, labels).data();
  const lse = Math.log(Math.exp(2) + 1 + Math.exp(-1));
  assertAlmostEquals(losses[0], lse - 2, 1e-5);
  assertAlmostEquals(losses[1], Math.log(1 + Math.exp(-1)) + 1, 1e-4);
  tf.dispose([logits, labels]);
});

Deno.test("cross-entropy with label smoothing is CrossEntropyLoss(label_smoothing=ε), summed as before", async () => {
  const rows = [[2, 0, -1], [0.5, 1.5, -0.25], [-3, 4, 1]];
  const targets = [0, 2, 1];
  const eps = 0.1;
  // PyTorch's definition: the target distribution is (1 − ε)·onehot + ε/K, and the loss is its
  // cross-entropy with softmax(logits): −Σ_k q_k log p_k.
  const expected = rows.map((z, i) => {
    const logZ = Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
    return -z.reduce((s, v, k) => {
      const q = (k === targets[i] ? 1 - eps : 0) + eps / z.length;
      return s + q * (v - logZ);
    }, 0);
  });
  const logits = tf.tensor2d(rows);
  const labels = tf.tensor1d(targets, "int32");
  const perExample = crossEntropyPerExample(logits, labels, eps);
  const losses = await perExample.data();
  expected.forEach((e, i) => assertAlmostEquals(losses[i], e, 1e-5, `example ${i}`));
  // The batch loss that training differentiates is still the sum.
  const summed = (await tf.sum(perExample).data())[0];
  assertAlmostEquals(summed, expected.reduce((a, b) => a + b), 1e-5);
  // ε = 1 is a uniform target: the loss no longer depends on the label.
  const otherLabels = tf.tensor1d([1, 0, 2], "int32");
  const uniform = await crossEntropyPerExample(logits, otherLabels, 1).data();
  const lse0 = Math.log(Math.exp(2) + 1 + Math.exp(-1));
  assertAlmostEquals(uniform[0], lse0 - (2 + 0 - 1) / 3, 1e-5);
  assertThrows(() => crossEntropyPerExample(logits, labels, 1.5), Error, "[0, 1]");
  tf.dispose([logits, labels, otherLabels, perExample]);
});
