/**
 * One fine-tuning SGD step against PyTorch's own numbers
 * (`../shared/fixtures/torch-resnet18/resnet18-seed0-reference.safetensors`): torchvision
 * ResNet-18 with fc replaced by Linear(512, 2) (the fixture's Xavier init), labels [0, 1], train
 * mode, CrossEntropyLoss(reduction="none") summed, SGD lr 0.01 backbone / 0.1 head, weight decay
 * 0.001, no momentum.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assertEquals, assertLess } from "@std/assert";
import {
  createResNet18,
  type HostTensor,
  loadStateDict,
  readSafetensors,
  type StateDict,
  stateDictOf,
} from "@webtune/models";
import { setupBackend } from "./backend.ts";
import { buildParamGroups } from "./param_groups.ts";
import { Sgd } from "./sgd.ts";
import { computeGradients, disposeGradients } from "./train_step.ts";

const FIXTURES = new URL("../../shared/fixtures/torch-resnet18/", import.meta.url);
const present = await Deno.stat(FIXTURES).then(() => true, () => false);
if (!present) console.log(`skipping the PyTorch parity test: ${FIXTURES.pathname} is absent`);

async function read(name: string): Promise<StateDict> {
  const url = new URL(name, FIXTURES);
  return readSafetensors(await Deno.readFile(url), url.pathname).tensors;
}

/** Max |a − b| and that error relative to max |b|. */
function compare(a: ArrayLike<number>, b: ArrayLike<number>): { abs: number; rel: number } {
  assertEquals(a.length, b.length);
  let abs = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { abs, rel: abs / scale };
}

/** HWIO (tfjs conv) → OIHW (PyTorch). */
function hwioToOihw(t: tf.Tensor): Promise<Float32Array> {
  return tf.tidy(() => tf.transpose(t, [3, 2, 0, 1])).data() as Promise<Float32Array>;
}

Deno.test({
  name: "one fine-tuning SGD step matches PyTorch: losses, gradients, weights, BN stats, logits",
  ignore: !present,
  async fn() {
    await setupBackend();
    const weights = await read("resnet18-seed0.safetensors");
    const ref = await read("resnet18-seed0-reference.safetensors");
    const get = (k: string): HostTensor => ref.get(k)!;
    weights.set("fc.weight", get("head_init_weight"));
    weights.set("fc.bias", get("head_init_bias"));
    const model = createResNet18({ numClasses: 2, random: () => 0.5 });
    loadStateDict(model, weights);

    const input = get("input_nchw");
    const x = tf.tidy(() =>
      tf.transpose(
        tf.tensor4d(input.data as Float32Array, input.shape as [number, number, number, number]),
        [
          0,
          2,
          3,
          1,
        ],
      )
    ) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1], "int32");
    const sgd = new Sgd(
      buildParamGroups(model.parameters(), { lr: 0.01, headLrMult: 10 }),
      { weightDecay: 0.001 },
    );
    const g = computeGradients(model, { x, labels }, sgd.trainable());
    const errors: Record<string, { abs: number; rel: number }> = {};
    errors.loss = compare(
      await g.lossPerExample.data(),
      get("step_loss_per_example").data as Float32Array,
    );
    errors.grad_conv1 = compare(
      await hwioToOihw(g.grads.get("conv1.weight")!),
      get("grad_conv1_weight").data as Float32Array,
    );
    errors.grad_fc = compare(
      await tf.tidy(() => tf.transpose(g.grads.get("fc.weight")!)).data(),
      get("grad_fc_weight").data as Float32Array,
    );
    sgd.step(g.grads);
    disposeGradients(g);

    const after = await stateDictOf(model);
    for (const [key, expected] of ref) {
      if (!key.startsWith("after_step.")) continue;
      const name = key.slice("after_step.".length);
      const actual = after.get(name)!;
      if (expected.dtype === "int64") {
        assertEquals(actual.data, expected.data, name);
        continue;
      }
      errors[name] = compare(actual.data as Float32Array, expected.data as Float32Array);
    }
    const logits = tf.tidy(() => model.forward(x, "eval").logits);
    errors.after_step_eval_logits = compare(
      await logits.data(),
      get("after_step_eval_logits").data as Float32Array,
    );
    console.table(errors);
    // Reached on llvmpipe (2026-11-27), max abs error relative to the largest reference value:
    // losses 2e-7, fc.weight gradient 3e-6, fc weights 2e-6, BN running stats ≤ 5e-7, eval logits
    // after the step 3e-5. The conv1 gradient (and what one step of it moves: conv1.weight,
    // bn1.weight/bias) reaches 1.7e-3 (L2-relative too, spread evenly over all 64 filters): the
    // filter-gradient kernels match a float64 computation to 2e-6 (models/ and core/kernels/
    // tests), so this is float32 forward differences of ~1e-6 flipping a few ReLU / max-pool
    // decisions that every conv1 weight sums over. Stock tfjs kernels give the same 1.5e-3.
    const conv1Derived = ["grad_conv1", "conv1.weight", "bn1.weight", "bn1.bias"];
    for (const [name, e] of Object.entries(errors)) {
      const limit = conv1Derived.includes(name) ? 5e-3 : 1e-4;
      assertLess(e.rel, limit, `${name}: max abs error ${e.abs}, relative ${e.rel}`);
    }
    tf.dispose([x, labels, logits]);
    sgd.dispose();
    model.dispose();
  },
});
