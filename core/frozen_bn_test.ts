/**
 * Frozen BatchNorm (the chapter's JAX tab) against PyTorch: the one-step fixture's step with
 * every BatchNorm in eval mode
 * (`../shared/fixtures/torch-resnet18/resnet18-seed0-frozen-bn-reference.safetensors`).
 */
import { assert, assertEquals, assertLess } from "@std/assert";
import { noFixtures, readFixture, resnet18StepLimit, runReferenceStep } from "./_step_parity.ts";

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
    // Same limits as the train-mode step (core/parity_test.ts).
    for (const [name, e] of Object.entries(errors)) {
      assertLess(
        e.rel,
        resnet18StepLimit(name),
        `${name}: max abs error ${e.abs}, relative ${e.rel}`,
      );
    }
  },
});
