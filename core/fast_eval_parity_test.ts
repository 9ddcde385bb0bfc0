/**
 * ResNet-50's 224 px `eval` logits against PyTorch's (core/resnet50_parity_test.ts) under
 * `--kernels fast`, where the folded 3×3 stride-1 convs run Winograd F(4×4, 3×3) with the
 * transform the fold prepared (conv2d_winograd4.ts): the other parity tests run `auto` with no
 * stored choices, that is the first-use kernels, so F(4×4), which rounds differently from the
 * direct conv (about 10× its error against float64 per conv), would otherwise be checked against
 * PyTorch only through ResNet-18's one eval after a step (core/fast_kernels_parity_test.ts).
 * That F(4×4) takes the fixture's bottleneck convs is asserted first. Own file: the kernel mode
 * is per process.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertLess } from "@std/assert";
import { loadStateDict, ResNet } from "@webtune/models";
import { setupBackend } from "./backend.ts";
import { compare, noFixtures, readFixture } from "./_step_parity.ts";
import { conv2DWinograd4Preferred, XI4 } from "./kernels/conv2d_winograd4.ts";

const DIR = "torch-resnet50/";

Deno.test({
  name: "ResNet-50 eval logits under --kernels fast (Winograd F(4x4) folded convs) match PyTorch's",
  ignore: noFixtures !== undefined,
  async fn() {
    const report = await setupBackend({ kernels: "fast" });
    assert(report.fastKernels);
    const ref = await readFixture(`${DIR}resnet50-seed0-reference.safetensors`);
    const input = ref.get("input_nchw")!;
    const [n, c, h, w] = input.shape;
    // Bottleneck 3×3 convs of layer1–3 (56, 28 and 14 px maps; layer4's 7 px maps too for n ≥ 4).
    const info = (shape: number[]) => ({ shape, dtype: "float32", dataId: {} }) as tf.TensorInfo;
    const attrs = { strides: 1, pad: 1, dataFormat: "NHWC" } as never;
    for (const [size, ch] of [[h / 4, 64], [h / 8, 128], [h / 16, 256]]) {
      assert(
        conv2DWinograd4Preferred(
          info([n, size, size, ch]),
          info([3, 3, ch, ch]),
          info([XI4, ch, ch]),
          attrs,
          tf.backend() as WebGPUBackend,
        ),
        `F(4x4) takes the ${size} px ${ch}-channel conv`,
      );
    }
    const model = new ResNet("resnet50", 1000);
    loadStateDict(model, await readFixture(`${DIR}resnet50-seed0-f16.safetensors`));
    const x = tf.tidy(() =>
      tf.transpose(tf.tensor4d(input.data as Float32Array, [n, c, h, w]), [0, 2, 3, 1])
    ) as tf.Tensor4D;
    const { logits, features } = model.forward(x, "eval");
    const errors = {
      eval_logits: compare(await logits.data(), ref.get("eval_logits")!.data as never),
      eval_features: compare(await features.data(), ref.get("eval_features")!.data as never),
    };
    console.table(errors);
    // The limit of core/resnet50_parity_test.ts: 1e-4 of the largest reference value.
    for (const [name, e] of Object.entries(errors)) {
      assertLess(e.rel, 1e-4, `${name}: max abs error ${e.abs}, relative ${e.rel}`);
    }
    tf.dispose([x, logits, features]);
    model.dispose();
  },
});
