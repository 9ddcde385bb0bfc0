import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals } from "@std/assert";
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
import {
  type Conv2DBackpropFilterAttrs,
  conv2DBackpropFilterGemm,
  derFilterSupports,
} from "./conv2d_backprop_filter.ts";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** Conv2DBackpropFilter with storage-buffer operands in place of the registered kernel. */
function bufferDerFilter<T>(f: () => Promise<T>): Promise<T> {
  return withKernelVariant("Conv2DBackpropFilter", ({ inputs, attrs, backend }) => {
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const a = attrs as Conv2DBackpropFilterAttrs;
    if (!derFilterSupports(x, dy, a)) return null;
    return conv2DBackpropFilterGemm(x, dy, a, backend as WebGPUBackend);
  }, f);
}
import { registerFastKernels, unregisterFastKernels } from "./mod.ts";

/** The registered kernel (texture operands), and the storage-buffer variant it falls back to. */
const VARIANTS: [string, <T>(f: () => Promise<T>) => Promise<T>][] = [
  ["", (f) => f()],
  [" with buffers", bufferDerFilter],
];

for (const c of CONV_CASES) {
  for (const [variant, run] of VARIANTS) {
    Deno.test(`Conv2DBackpropFilter${variant} matches the cpu backend: ${c.name}`, async () => {
      await useWebGPU();
      const filterShape = [c.k, c.k, c.x[3], c.cout];
      const inputs = { x: hostInput(c.x, 1), dy: hostInput(dyShape(c), 2) };
      const attrs = {
        strides: [c.stride, c.stride],
        pad: padAttr(c.pad),
        dataFormat: "NHWC",
        filterShape,
      };
      const got = await run(() => runOnWebGPU("Conv2DBackpropFilter", inputs, attrs));
      assertClose(got, await runOnCpu("Conv2DBackpropFilter", inputs, attrs));
    });
  }
}

Deno.test("Conv2DBackpropFilter falls back to the stock kernel when Cout % 4 != 0", async () => {
  await useWebGPU();
  const inputs = { x: hostInput([2, 6, 6, 5], 3), dy: hostInput([2, 6, 6, 6], 4) };
  const attrs = { strides: [1, 1], pad: "same", dataFormat: "NHWC", filterShape: [3, 3, 5, 6] };
  const got = await runOnWebGPU("Conv2DBackpropFilter", inputs, attrs);
  assertClose(got, await runOnCpu("Conv2DBackpropFilter", inputs, attrs));
});

Deno.test("registerFastKernels is idempotent and replaces the webgpu kernels", async () => {
  await useWebGPU();
  const kernel = (name: string) => tf.getKernel(name, "webgpu")?.kernelFunc;
  const names = ["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"];
  const fast = names.map(kernel);
  registerFastKernels();
  assertEquals(names.map(kernel), fast);
  unregisterFastKernels();
  const stock = names.map(kernel);
  for (let i = 0; i < names.length; i++) assert(stock[i] !== fast[i], `${names[i]} not replaced`);
  registerFastKernels();
  assertEquals(names.map(kernel), fast);
});
