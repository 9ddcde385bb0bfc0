import {
  assertClose,
  CONV_CASES,
  dyShape,
  hostInput,
  padAttr,
  runOnCpu,
  runOnWebGPU,
  useWebGPU,
  withKernelVariant,
} from "./kernel_test_util.ts";
import type * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  type Conv2DBackpropInputAttrs,
  conv2DBackpropInputGemm,
  derInputSupports,
} from "./conv2d_backprop_input.ts";

/** Conv2DBackpropInput with storage-buffer operands in place of the registered kernel. */
function bufferDerInput<T>(f: () => Promise<T>): Promise<T> {
  return withKernelVariant("Conv2DBackpropInput", ({ inputs, attrs, backend }) => {
    const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const a = attrs as Conv2DBackpropInputAttrs;
    if (!derInputSupports(dy, filter, a)) return null;
    return conv2DBackpropInputGemm(dy, filter, a, backend as WebGPUBackend);
  }, f);
}

// dX of the 3-channel stem is never needed in training (the image has no gradient) and takes
// the stock kernel (Cin % 8 != 0); it is still checked here.
/** The registered kernel (texture operands), and the storage-buffer variant it falls back to. */
const VARIANTS: [string, <T>(f: () => Promise<T>) => Promise<T>][] = [
  ["", (f) => f()],
  [" with buffers", bufferDerInput],
];

for (const c of CONV_CASES) {
  for (const [variant, run] of VARIANTS) {
    Deno.test(`Conv2DBackpropInput${variant} matches the cpu backend: ${c.name}`, async () => {
      await useWebGPU();
      const inputs = {
        dy: hostInput(dyShape(c), 3),
        filter: hostInput([c.k, c.k, c.x[3], c.cout], 4),
      };
      const attrs = {
        strides: [c.stride, c.stride],
        pad: padAttr(c.pad),
        dataFormat: "NHWC",
        inputShape: c.x,
      };
      const got = await run(() => runOnWebGPU("Conv2DBackpropInput", inputs, attrs));
      assertClose(got, await runOnCpu("Conv2DBackpropInput", inputs, attrs));
    });
  }
}
