import * as tf from "@tensorflow/tfjs-core";
import { assertAlmostEquals } from "@std/assert";
import { setupBackend } from "./backend.ts";
import { toDevice } from "./batches.ts";
import { lcg, TinyModel } from "./test_util.ts";
import { computeGradients, disposeGradients } from "./train_step.ts";

await setupBackend();

Deno.test("computeGradients with label smoothing: d(summed loss)/d(bias) = Σ (softmax − smoothed target)", async () => {
  const random = lcg(7);
  const model = new TinyModel(3, random);
  const n = 4, size = 2;
  const x = Float32Array.from({ length: n * size * size * 3 }, () => random() * 2 - 1);
  const labels = Int32Array.from([0, 2, 1, 2]);
  const batch = toDevice({ x, shape: [n, size, size, 3], labels });
  const logits = await tf.tidy(() => model.forward(batch.x).logits).array();
  const eps = 0.2, k = 3;
  const expected = [0, 0, 0];
  logits.forEach((z, i) => {
    const max = Math.max(...z);
    const e = z.map((v) => Math.exp(v - max));
    const total = e.reduce((a, b) => a + b);
    for (let c = 0; c < k; c++) {
      const q = (c === labels[i] ? 1 - eps : 0) + eps / k;
      expected[c] += e[c] / total - q;
    }
  });
  const g = computeGradients(model, batch, model.parameters(), "train", eps);
  const bias = await g.grads.get("fc.bias")!.data();
  expected.forEach((v, c) => assertAlmostEquals(bias[c], v, 1e-5, `class ${c}`));
  disposeGradients(g);
  tf.dispose([batch.x, batch.labels]);
  model.dispose();
});
