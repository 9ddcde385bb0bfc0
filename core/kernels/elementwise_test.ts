import { assertClose, hostInput, runOnCpu, runOnWebGPU, useWebGPU } from "./kernel_test_util.ts";

// [2,16,16,16]: 8,192 floats, ours (textures); [2,5,5,4]: 200 floats, tfjs's own kernel.
for (const kernel of ["Add", "Sub", "Multiply"]) {
  for (const shape of [[2, 16, 16, 16], [2, 5, 5, 4]]) {
    Deno.test(`${kernel} of one shape [${shape}] equals the cpu backend's exactly`, async () => {
      await useWebGPU();
      const inputs = { a: hostInput(shape, 5), b: hostInput(shape, 6) };
      const got = await runOnWebGPU(kernel, inputs, {});
      assertClose(got, await runOnCpu(kernel, inputs, {}), 0);
    });
  }
}
