import * as tf from "@tensorflow/tfjs-core";
import { assertAlmostEquals } from "@std/assert";
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
