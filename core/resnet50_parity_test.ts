/**
 * ResNet-50 (torchvision's Bottleneck, the chapter's Keras tab) against PyTorch on
 * `../shared/fixtures/torch-resnet50/`: the F16-stored weights widened to F32, exactly what the
 * reference was computed from.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assertEquals, assertLess } from "@std/assert";
import { loadStateDict, ResNet } from "@webtune/models";
import { setupBackend } from "./backend.ts";
import { noFixtures, readFixture, runReferenceStep } from "./_step_parity.ts";

const DIR = "torch-resnet50/";

/** Max |a − b| relative to max |b|. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): { abs: number; rel: number } {
  let abs = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { abs, rel: abs / scale };
}

Deno.test({
  name: "ResNet-50 eval logits and pooled features match PyTorch's (224 px)",
  ignore: noFixtures !== undefined,
  async fn() {
    await setupBackend();
    const ref = await readFixture(`${DIR}resnet50-seed0-reference.safetensors`);
    const model = new ResNet("resnet50", 1000);
    loadStateDict(model, await readFixture(`${DIR}resnet50-seed0-f16.safetensors`));
    const input = ref.get("input_nchw")!;
    const [n, c, h, w] = input.shape;
    const x = tf.tidy(() =>
      tf.transpose(tf.tensor4d(input.data as Float32Array, [n, c, h, w]), [0, 2, 3, 1])
    ) as tf.Tensor4D;
    const start = performance.now();
    const { logits, features } = model.forward(x, "eval");
    const errors = {
      eval_logits: relativeError(await logits.data(), ref.get("eval_logits")!.data as never),
      eval_features: relativeError(await features.data(), ref.get("eval_features")!.data as never),
    };
    console.table(errors);
    console.log(
      `224 px batch-${n} ResNet-50 eval forward: ${(performance.now() - start).toFixed(0)} ms`,
    );
    // The ResNet-18 limit (models/resnet18_test.ts): 1e-4 of the largest reference value.
    for (const [name, e] of Object.entries(errors)) {
      assertLess(e.rel, 1e-4, `${name}: max abs error ${e.abs}, relative ${e.rel}`);
    }
    tf.dispose([x, logits, features]);
    model.dispose();
  },
});

/**
 * The ResNet-18 step's limits (core/parity_test.ts): 1e-4 of the largest reference value, 5e-3
 * for the stem's gradients and what they move.
 */
function resnet18Limit(name: string): number {
  const stem = ["grad_conv1_weight", "grad_bn1_weight", "conv1.weight", "bn1.weight", "bn1.bias"];
  return stem.includes(name) ? 5e-3 : 1e-4;
}

/**
 * How far the fixture's own float32 numbers are from exact arithmetic: max |PyTorch float32 −
 * float64| / max |float64|, from a float64 NumPy re-computation of the same step (same F16→F32
 * weights, input, head, BN, loss and SGD: core/testdata/resnet50_step_float64.py). This step is
 * ill-conditioned: a random-init ResNet-50 in train mode at 64 px normalises layer4 over 16
 * values per channel, and its stem gradient reaches 461 (ResNet-18's fixture: 3.75). Every
 * float32 implementation drifts from float64 through the 16 blocks (pooled features: NumPy
 * float32 6e-5, webtune 1e-4; stem gradients ~1e-2), so no float32 port can match PyTorch here
 * more closely than about twice PyTorch's own error: that is the limit wherever it exceeds
 * ResNet-18's.
 */
const FLOAT32_FLOOR: Record<string, number> = {
  loss: 3.5e-6,
  grad_conv1_weight: 1.44e-2,
  grad_bn1_weight: 1.62e-2,
  grad_fc_weight: 6.2e-5,
  "conv1.weight": 1.44e-2,
  "bn1.running_mean": 2.7e-7,
  "bn1.running_var": 5.4e-8,
  "layer1.0.downsample.1.running_var": 5.7e-8,
  "layer4.2.conv3.weight": 2.44e-4,
  "layer4.2.bn3.running_mean": 1.52e-5,
  "fc.weight": 5.7e-5,
  "fc.bias": 1.5e-6,
  after_step_eval_logits: 1.52e-2,
};

Deno.test({
  name:
    "one ResNet-50 fine-tuning step matches PyTorch's (64 px): losses, gradients, weights, BN stats, logits",
  ignore: noFixtures !== undefined,
  async fn() {
    const ref = await readFixture(`${DIR}resnet50-seed0-reference.safetensors`);
    const { errors, stepMs, changedBuffers } = await runReferenceStep({
      arch: "resnet50",
      weights: await readFixture(`${DIR}resnet50-seed0-f16.safetensors`),
      ref,
      input: ref.get("step_input_nchw")!,
      labels: [...ref.get("step_labels")!.data].map(Number),
      bn: "train",
    });
    console.table(errors);
    console.log(`64 px batch-4 ResNet-50 train step: ${stepMs.toFixed(0)} ms`);
    // Train mode moves every running statistic (53 BatchNorms × mean, var, counter).
    assertLess(53 * 3 - 1, changedBuffers.length);
    assertEquals(Object.keys(errors).sort(), Object.keys(FLOAT32_FLOOR).sort());
    for (const [name, e] of Object.entries(errors)) {
      const limit = Math.max(resnet18Limit(name), 2 * (FLOAT32_FLOOR[name] ?? 0));
      assertLess(e.rel, limit, `${name}: max abs error ${e.abs}, relative ${e.rel}`);
    }
  },
});
