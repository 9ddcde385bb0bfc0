import * as tf from "@tensorflow/tfjs-core";
import { assertClose, hostInput, runOnWebGPU, useWebGPU } from "./kernel_test_util.ts";
import { SGD_UPDATE_KERNEL } from "./sgd_update.ts";

// [3,3,32,32]: 9,216 floats, read from textures (≥ MIN_TEXTURE_FLOATS); [3,3,8,16] from buffers.
for (
  const [weightDecay, shape] of [[0, [3, 3, 8, 16]], [1e-3, [3, 3, 8, 16]], [1e-3, [
    3,
    3,
    32,
    32,
  ]]] as const
) {
  Deno.test(`${SGD_UPDATE_KERNEL} equals p - lr·(g + wd·p) as cpu ops, wd ${weightDecay}, [${shape}]`, async () => {
    await useWebGPU();
    const inputs = { param: hostInput([...shape], 1), grad: hostInput([...shape], 2) };
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
