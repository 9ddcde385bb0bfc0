import * as tf from "@tensorflow/tfjs-core";
import { assertClose, hostInput, runOnWebGPU, useWebGPU } from "./kernel_test_util.ts";
import { SGD_UPDATE_KERNEL } from "./sgd_update.ts";

for (const weightDecay of [0, 1e-3]) {
  Deno.test(`${SGD_UPDATE_KERNEL} equals p - lr·(g + wd·p) as cpu ops, wd ${weightDecay}`, async () => {
    await useWebGPU();
    const inputs = { param: hostInput([3, 3, 8, 16], 1), grad: hostInput([3, 3, 8, 16], 2) };
    const lr = 0.05;
    const got = await runOnWebGPU(SGD_UPDATE_KERNEL, inputs, { lr, weightDecay });
    await tf.setBackend("cpu");
    const want = tf.tidy(() => {
      const p = tf.tensor(inputs.param.data), g = tf.tensor(inputs.grad.data);
      return tf.sub(p, tf.mul(tf.add(g, tf.mul(p, weightDecay)), lr)).dataSync() as Float32Array;
    });
    await tf.setBackend("webgpu");
    // The update moves p by ~5%: 1e-6 of max |p| is a few float32 ulps.
    assertClose(got, want, 1e-6);
  });
}
