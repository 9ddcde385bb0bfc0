/**
 * ResNet-50 (torchvision's Bottleneck, the chapter's Keras tab) against PyTorch on
 * `../shared/fixtures/torch-resnet50/`: the F16-stored weights widened to F32, exactly what the
 * reference was computed from; the fine-tuning step also against a float64 re-computation
 * (`core/testdata/resnet50_step_float64.safetensors`).
 */
import * as tf from "@tensorflow/tfjs-core";
import { assertEquals, assertLess } from "@std/assert";
import { loadStateDict, readSafetensors, ResNet, type StateDict } from "@webtune/models";
import { setupBackend } from "./backend.ts";
import {
  compare,
  noFixtures,
  readFixture,
  resnet18StepLimit,
  runReferenceStep,
} from "./_step_parity.ts";

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
 * How far the fixture's own float32 numbers are from exact arithmetic: max |PyTorch float32 −
 * float64| / max |float64|, from a float64 NumPy re-computation of the same step (same F16→F32
 * weights, input, head, BN, loss and SGD: core/testdata/resnet50_step_float64.py). This step is
 * ill-conditioned: a random-init ResNet-50 in train mode at 64 px normalises layer4 over 16
 * values per channel, and its stem gradient reaches 461 (ResNet-18's fixture: 3.75). Every
 * float32 implementation drifts from float64 through the 16 blocks (pooled features: NumPy
 * float32 6e-5, webtune 1e-4; stem gradients ~1e-2), so no float32 port can match PyTorch here
 * more closely than about twice PyTorch's own error: that is the limit wherever it exceeds
 * ResNet-18's. The values of the quantities whose limit this loosens are checked against the
 * float64 file below; webtune is measured against that file at ResNet-18's limits too (see
 * {@linkcode BEYOND_FLOAT32}).
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

/**
 * `core/testdata/resnet50_step_float64.safetensors`: the same step in NumPy float64 (made by
 * `python3 core/testdata/resnet50_step_float64.py`, stored as F32: 4e-8 of each tensor's largest
 * value), for the quantities whose PyTorch limit above is looser than ResNet-18's, plus the loss
 * and bn1's bias gradient. layer4.2.conv3 is a 1×1 conv over 4 images of 2 × 2, so its weight
 * gradient is 16 outer products; the file keeps those factors (0.16 MB instead of 4 MB) and this
 * rebuilds the weight after the step from them and the F16 weights, as the SGD step does.
 */
async function readFloat64Reference(weights: StateDict): Promise<StateDict> {
  const url = new URL("./testdata/resnet50_step_float64.safetensors", import.meta.url);
  const file = readSafetensors(await Deno.readFile(url), url.pathname).tensors;
  const ref: StateDict = new Map([...file].filter(([key]) => !key.startsWith("grad_factors.")));
  const conv = "layer4.2.conv3";
  const dy = file.get(`grad_factors.${conv}.output_grad`)!,
    x = file.get(`grad_factors.${conv}.input`)!;
  const before = weights.get(`${conv}.weight`)!;
  const [positions, outC] = dy.shape, inC = x.shape[1];
  assertEquals(before.shape, [outC, inC, 1, 1]);
  const after = new Float32Array(outC * inC);
  for (let o = 0; o < outC; o++) {
    for (let c = 0; c < inC; c++) {
      let grad = 0;
      for (let k = 0; k < positions; k++) {
        grad += dy.data[k * outC + o] as number * (x.data[k * inC + c] as number);
      }
      const w = before.data[o * inC + c] as number;
      after[o * inC + c] = w - 0.01 * (grad + 0.001 * w);
    }
  }
  ref.set(`after_step.${conv}.weight`, { dtype: "float32", shape: before.shape, data: after });
  return ref;
}

/** The error names {@linkcode runReferenceStep} reports for a reference key. */
function errorName(key: string): string {
  if (key === "step_loss_per_example") return "loss";
  return key.startsWith("after_step.") ? key.slice("after_step.".length) : key;
}

/**
 * The float32 steps' distance from the float64 file (max |float32 − float64| / max |float64|),
 * NumPy float32 running the same code as the float64 step
 * (`python3 core/testdata/resnet50_step_float64.py float32`, which prints them).
 */
const NUMPY_FLOAT32_VS_FLOAT64: Record<string, number> = {
  loss: 3.3e-5,
  grad_conv1_weight: 1.06e-2,
  grad_bn1_weight: 1.23e-2,
  grad_bn1_bias: 9.28e-3,
  grad_fc_weight: 6.01e-5,
  "conv1.weight": 1.06e-2,
  "layer4.2.conv3.weight": 2.44e-4,
  "fc.weight": 5.54e-5,
  after_step_eval_logits: 1.01e-2,
};

/**
 * Where ResNet-18's limit cannot be met against float64 by a float32 implementation on this
 * fixture. Max |x − float64| / max |float64| (webtune on llvmpipe, 2026-11-29):
 *
 * | quantity               | ResNet-18 limit | webtune | PyTorch f32 | NumPy f32 |
 * | ---------------------- | --------------- | ------- | ----------- | --------- |
 * | grad conv1.weight      | 5e-3            | 1.33e-2 | 1.44e-2     | 1.06e-2   |
 * | grad bn1.weight        | 5e-3            | 1.34e-2 | 1.62e-2     | 1.23e-2   |
 * | grad bn1.bias          | 5e-3            | 9.4e-3  | (not kept)  | 9.3e-3    |
 * | conv1.weight after     | 5e-3            | 1.33e-2 | 1.44e-2     | 1.06e-2   |
 * | eval logits after      | 1e-4            | 5.2e-3  | 1.52e-2     | 1.01e-2   |
 *
 * All three float32 computations, three different summation orders, land at the same distance
 * from exact arithmetic, 2–150 × ResNet-18's limit: the error is float32 rounding amplified by
 * this ill-conditioned step (see {@linkcode FLOAT32_FLOOR}; the logits after the step reach
 * 2e7 because one step's running variances are tiny), not a property of any one port. So
 * ResNet-18's tolerance is unreachable for any float32 implementation here, against PyTorch or
 * float64. The test asserts that PyTorch's own float32 answer misses it, and that webtune stays
 * within twice the float32 implementations' distance. Everything else meets ResNet-18's limit
 * against float64: loss 5.2e-5, grad fc.weight 9.3e-5, fc.weight 8.6e-5 and layer4.2.conv3.weight
 * 4.5e-6 (where PyTorch and NumPy float32 are 2.4e-4 away: webtune is closer to exact there).
 */
const BEYOND_FLOAT32 = [
  "grad_conv1_weight",
  "grad_bn1_weight",
  "grad_bn1_bias",
  "conv1.weight",
  "after_step_eval_logits",
];

Deno.test({
  name:
    "one ResNet-50 fine-tuning step matches PyTorch's (64 px) and float64's: losses, gradients, weights, BN stats, logits",
  ignore: noFixtures !== undefined,
  async fn() {
    const ref = await readFixture(`${DIR}resnet50-seed0-reference.safetensors`);
    const weights = await readFixture(`${DIR}resnet50-seed0-f16.safetensors`);
    const float64 = await readFloat64Reference(weights);
    const { errors, errorsAlso, stepMs, changedBuffers } = await runReferenceStep({
      arch: "resnet50",
      weights,
      ref,
      input: ref.get("step_input_nchw")!,
      labels: [...ref.get("step_labels")!.data].map(Number),
      bn: "train",
      also: float64,
    });
    console.table(errors);
    console.log(`64 px batch-4 ResNet-50 train step: ${stepMs.toFixed(0)} ms`);
    // Train mode moves every running statistic (53 BatchNorms × mean, var, counter).
    assertLess(53 * 3 - 1, changedBuffers.length);
    assertEquals(Object.keys(errors).sort(), Object.keys(FLOAT32_FLOOR).sort());
    for (const [name, e] of Object.entries(errors)) {
      const limit = Math.max(resnet18StepLimit(name), 2 * (FLOAT32_FLOOR[name] ?? 0));
      assertLess(e.rel, limit, `${name}: max abs error ${e.abs}, relative ${e.rel}`);
    }

    // The table above is what the float64 file says of PyTorch (rounded to 2–3 digits).
    const torchVsFloat64: Record<string, number> = {};
    for (const [key, exact] of float64) {
      const torch = ref.get(key);
      if (!torch) continue;
      const name = errorName(key);
      torchVsFloat64[name] = compare(torch.data as Float32Array, exact.data as Float32Array).rel;
      assertLess(
        Math.abs(FLOAT32_FLOOR[name] / torchVsFloat64[name] - 1),
        0.02,
        `FLOAT32_FLOOR.${name} ${FLOAT32_FLOOR[name]}: the float64 file says ${
          torchVsFloat64[name]
        }`,
      );
    }
    console.table(
      Object.fromEntries(
        Object.entries(errorsAlso).map(([name, e]) => [name, {
          webtune: e.rel,
          pytorch: torchVsFloat64[name],
          numpy: NUMPY_FLOAT32_VS_FLOAT64[name],
        }]),
      ),
    );
    assertEquals(Object.keys(errorsAlso).sort(), Object.keys(NUMPY_FLOAT32_VS_FLOAT64).sort());
    for (const [name, e] of Object.entries(errorsAlso)) {
      const what = `${name} vs float64: max abs error ${e.abs}, relative ${e.rel}`;
      if (!BEYOND_FLOAT32.includes(name)) {
        assertLess(e.rel, resnet18StepLimit(name), what);
        continue;
      }
      // ResNet-18's limit is out of reach of float32 here: PyTorch misses it too...
      if (name in torchVsFloat64) assertLess(resnet18StepLimit(name), torchVsFloat64[name], name);
      // ...and webtune stays within twice the float32 implementations' own distance.
      const float32 = Math.max(torchVsFloat64[name] ?? 0, NUMPY_FLOAT32_VS_FLOAT64[name]);
      assertLess(e.rel, 2 * float32, what);
    }
  },
});
