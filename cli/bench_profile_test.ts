import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { assertAlmostEquals, assertEquals } from "@std/assert";
import {
  callLabel,
  formatCalls,
  formatProfile,
  kernelFamily,
  profileStep,
  type StepProfile,
} from "./bench_profile.ts";

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

Deno.test("formatCalls lists calls by their share of the step, with shapes, stride, pad and ReLU", () => {
  const call = (kernel: string, shapes: number[][], attrs: object, count: number, ms: number) => ({
    kernel,
    inputShapes: shapes,
    attrs: JSON.stringify(attrs),
    count,
    ms,
  });
  const calls = [
    call("MaxPool", [[16, 112, 112, 64]], { strides: 2, pad: 1 }, 1, 150),
    call(
      "WebtuneConv2DBiasAct",
      [[16, 56, 56, 64], [3, 3, 64, 64], [64]],
      { strides: [1, 1], pad: 1, relu: true },
      2,
      200,
    ),
    call("Add", [[512], []], {}, 3, 0.1),
  ];
  const profile: StepProfile = { calls, families: [], totalMs: 550.3 };
  assertEquals(
    callLabel(calls[1]),
    "WebtuneConv2DBiasAct 16x56x56x64 3x3x64x64 64 s1 p1 relu",
  );
  assertEquals(callLabel(calls[2]), "Add 512 scalar");
  const lines = formatCalls(profile).split("\n");
  // Largest count × ms first; the Add (0.3 ms, under 0.5% of the step) is summed up.
  assertEquals(lines.length, 3);
  assertEquals(lines[0].trim().startsWith("2 ×   200.0 ms =   400.0  WebtuneConv2DBiasAct"), true);
  assertEquals(lines[1].includes("MaxPool 16x112x112x64 s2 p1"), true);
  assertEquals(lines[2].trim(), "(1 more distinct calls, 0.3 ms in all)");
  assertEquals(formatCalls(profile, 0).split("\n").length, 3);
});
