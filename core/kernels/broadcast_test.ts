import { assertClose, hostInput, runOnCpu, runOnWebGPU, useWebGPU } from "./kernel_test_util.ts";

// A per-channel vector against NHWC activations, either side, at a channel count that tfjs-webgpu
// would broadcast through workgroup memory (< 128) and one it would not.
for (const name of ["Add", "Sub", "Multiply", "RealDiv", "SquaredDifference", "Maximum"]) {
  Deno.test(`${name} of a per-channel vector and NHWC activations matches the cpu backend`, async () => {
    await useWebGPU();
    for (const c of [64, 3, 128]) {
      const x = hostInput([2, 3, 5, c], 1);
      const v = hostInput([c], 2);
      if (name === "RealDiv") v.data.forEach((d, i) => v.data[i] = d + 2); // no division by ~0
      for (const inputs of [{ a: x, b: v }, { a: v, b: x }]) {
        assertClose(await runOnWebGPU(name, inputs, {}), await runOnCpu(name, inputs, {}));
      }
    }
  });
}
