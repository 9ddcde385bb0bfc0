/**
 * Frozen BatchNorm (the chapter's JAX tab) against PyTorch: the one-step fixture's step with
 * every BatchNorm in eval mode
 * (`../shared/fixtures/torch-resnet18/resnet18-seed0-frozen-bn-reference.safetensors`).
 */
import { assert, assertEquals, assertLess } from "@std/assert";
import { noFixtures, readFixture, runReferenceStep } from "./_step_parity.ts";

Deno.test({
  name: "a frozen-BN step matches PyTorch's (BN in eval mode) and leaves every BN buffer alone",
  ignore: noFixtures !== undefined,
  async fn() {
    const dir = "torch-resnet18/";
    const { errors, stepMs, changedBuffers } = await runReferenceStep({
      arch: "resnet18",
      weights: await readFixture(`${dir}resnet18-seed0.safetensors`),
      ref: await readFixture(`${dir}resnet18-seed0-frozen-bn-reference.safetensors`),
      input: (await readFixture(`${dir}resnet18-seed0-reference.safetensors`)).get("input_nchw")!,
      labels: [0, 1],
      bn: "frozen",
    });
    console.table(errors);
    console.log(`224 px batch-2 frozen-BN step: ${stepMs.toFixed(0)} ms`);
    // Every running_mean/var and num_batches_tracked of all 20 BatchNorms is bit-identical.
    assertEquals(changedBuffers, []);
    // The reference's BN weight gradient and the BN parameters after the step: they still train.
    for (const key of ["grad_bn1_weight", "bn1.weight", "bn1.bias", "bn1.running_mean"]) {
      assert(errors[key] !== undefined, `the fixture has no ${key}`);
    }
    // Same limits as the train-mode step (core/parity_test.ts): 1e-4 of the largest reference
    // value, 5e-3 for the stem's gradients and what they move (conv1 and bn1, below the max
    // pool: float32 ReLU/max-pool decisions that every stem weight sums over).
    const conv1Derived = [
      "grad_conv1_weight",
      "grad_bn1_weight",
      "conv1.weight",
      "bn1.weight",
      "bn1.bias",
    ];
    for (const [name, e] of Object.entries(errors)) {
      const limit = conv1Derived.includes(name) ? 5e-3 : 1e-4;
      assertLess(e.rel, limit, `${name}: max abs error ${e.abs}, relative ${e.rel}`);
    }
  },
});
