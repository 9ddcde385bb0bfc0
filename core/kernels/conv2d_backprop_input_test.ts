import {
  assertClose,
  CONV_CASES,
  dyShape,
  hostInput,
  padAttr,
  runOnCpu,
  runOnWebGPU,
  useWebGPU,
} from "./kernel_test_util.ts";

// dX of the 3-channel stem is never needed in training (the image has no gradient) and takes
// the stock kernel (Cin % 8 != 0); it is still checked here.
for (const c of CONV_CASES) {
  Deno.test(`Conv2DBackpropInput matches the cpu backend: ${c.name}`, async () => {
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
    const got = await runOnWebGPU("Conv2DBackpropInput", inputs, attrs);
    assertClose(got, await runOnCpu("Conv2DBackpropInput", inputs, attrs));
  });
}
