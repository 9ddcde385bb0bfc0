import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { assertAlmostEquals, assertEquals } from "@std/assert";
import { formatProfile, kernelFamily, profileStep } from "./bench_profile.ts";

Deno.test("kernelFamily sorts kernels by what they are, and elementwise ops by size", () => {
  assertEquals(kernelFamily("Conv2DBackpropInput", [[16, 8, 8, 128], [3, 3, 128, 128]]), "conv dX");
  assertEquals(kernelFamily("WebtuneBatchNormApply", [[16, 8, 8, 128]]), "batchnorm");
  assertEquals(kernelFamily("WebtuneConv2DBiasAct", [[16, 8, 8, 128]]), "conv forward");
  assertEquals(kernelFamily("Mean", [[16, 8, 8, 128]]), "reductions (4-D)");
  assertEquals(kernelFamily("Mean", [[16, 512]]), "reductions (small)");
  assertEquals(kernelFamily("Add", [[16, 64, 64, 3], []]), "elementwise (large)");
  assertEquals(kernelFamily("Add", [[512], []]), "elementwise (small)");
});

Deno.test("profileStep counts each distinct top-level call once per occurrence, and replays it", async () => {
  await tf.setBackend("cpu");
  const x = tf.ones([2, 8, 8, 4]) as tf.Tensor4D;
  const w = tf.ones([3, 3, 4, 4]) as tf.Tensor4D;
  // Two identical convs, one other conv, and a mean whose kernel runs nested kernels itself.
  const step = () => {
    tf.tidy(() => {
      tf.conv2d(x, w, 1, "same");
      tf.conv2d(x, w, 1, "same");
      tf.conv2d(x, w, 2, "same");
      tf.mean(x, [0, 1, 2]);
    });
    return Promise.resolve();
  };
  const profile = await profileStep(step, 1);
  const convs = profile.calls.filter((c) => c.kernel === "Conv2D");
  assertEquals(convs.map((c) => c.count).sort(), [1, 2]);
  assertEquals(profile.calls.filter((c) => c.kernel === "Mean").length, 1);
  assertEquals(profile.calls.reduce((s, c) => s + c.count, 0), 4);
  // Grouping by family loses no call: the families add up to every call's count × ms.
  const byCalls = profile.calls.reduce((s, c) => s + c.count * c.ms, 0);
  assertAlmostEquals(profile.totalMs, byCalls, 1e-9);
  assertEquals(profile.families.map(([f]) => f).sort(), ["conv forward", "reductions (4-D)"]);
  const text = formatProfile(profile);
  assertEquals(text.split("\n").length, 3);
  assertEquals(text.includes("(4 calls)"), true);
  tf.dispose([x, w]);
});
