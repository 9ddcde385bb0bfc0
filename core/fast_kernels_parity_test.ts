/**
 * The PyTorch step parity of core/parity_test.ts and core/frozen_bn_test.ts under
 * `--kernels fast`. Those tests run `auto` with no stored choices, that is each family's
 * first-use variant; the variants `auto` picks once it has timed a shape (Winograd forward, dX
 * and dW among them) were checked against PyTorch only by forcing them by hand. `fast` runs each
 * family's default, Winograd wherever it is preferred: at the fixture's 224 px batch-2 shapes
 * that is layer2's forward and layer2–3's dX and dW (asserted first, so this coverage cannot
 * vanish silently when a threshold moves). Own file: the kernel mode is per process.
 */
import type * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals, assertLess } from "@std/assert";
import { setupBackend } from "./backend.ts";
import { noFixtures, readFixture, resnet18StepLimit, runReferenceStep } from "./_step_parity.ts";
import type { BnMode } from "./train_step.ts";
import { conv2DWinogradPreferred, derInputWinogradPreferred } from "./kernels/conv2d_winograd.ts";
import { derFilterWinogradPreferred } from "./kernels/conv2d_backprop_filter_winograd.ts";

const DIR = "torch-resnet18/";

Deno.test("at the fixture's shapes `fast` runs Winograd forward, dX and dW", () => {
  const info = (shape: number[]) => ({ shape, dtype: "float32", dataId: {} }) as tf.TensorInfo;
  const pad = { strides: 1, pad: "same", dataFormat: "NHWC" } as const;
  const conv = (size: number, channels: number) => ({
    x: info([2, size, size, channels]),
    filter: info([3, 3, channels, channels]),
  });
  const layer2 = conv(28, 128), layer3 = conv(14, 256);
  assert(conv2DWinogradPreferred(layer2.x, layer2.filter, pad as never), "layer2 forward");
  for (const layer of [layer2, layer3]) {
    const [, , , c] = layer.x.shape;
    assert(
      derInputWinogradPreferred(layer.x, layer.filter, {
        ...pad,
        inputShape: layer.x.shape as [number, number, number, number],
      } as never),
      `dX, ${c} channels`,
    );
    assert(
      derFilterWinogradPreferred(layer.x, layer.x, {
        ...pad,
        filterShape: layer.filter.shape as [number, number, number, number],
      } as never),
      `dW, ${c} channels`,
    );
  }
});

for (const bn of ["train", "frozen"] as BnMode[]) {
  Deno.test({
    name: `a ${bn}-BN fine-tuning step under --kernels fast matches PyTorch's`,
    ignore: noFixtures !== undefined,
    async fn() {
      const report = await setupBackend({ kernels: "fast" });
      assert(report.fastKernels);
      const reference = `${DIR}resnet18-seed0-reference.safetensors`;
      const { errors, changedBuffers } = await runReferenceStep({
        arch: "resnet18",
        weights: await readFixture(`${DIR}resnet18-seed0.safetensors`),
        ref: await readFixture(
          bn === "train" ? reference : `${DIR}resnet18-seed0-frozen-bn-reference.safetensors`,
        ),
        input: (await readFixture(reference)).get("input_nchw")!,
        labels: [0, 1],
        bn,
      });
      console.table(errors);
      if (bn === "frozen") assertEquals(changedBuffers, []);
      assert(errors.grad_conv1_weight && errors.after_step_eval_logits, "nothing was measured");
      for (const [name, e] of Object.entries(errors)) {
        assertLess(
          e.rel,
          resnet18StepLimit(name),
          `${name}: max abs error ${e.abs}, relative ${e.rel}`,
        );
      }
    },
  });
}
