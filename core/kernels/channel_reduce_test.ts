import { assertClose, hostInput, runOnCpu, runOnWebGPU, useWebGPU } from "./kernel_test_util.ts";

const CASES = [
  { name: "Sum [0,1,2] of NHWC", kernel: "Sum", shape: [3, 5, 7, 8], axis: [0, 1, 2] },
  {
    name: "Mean over unsorted axes [2,0,1]",
    kernel: "Mean",
    shape: [2, 9, 9, 12],
    axis: [2, 0, 1],
  },
  // More rows than one block (ROWS_PER_BLOCK), so the second pass adds several partial sums.
  { name: "Mean of 1,100 rows", kernel: "Mean", shape: [1100, 16], axis: [0] },
  // Per image over H and W (the global average pool): several outer indices.
  { name: "Mean over H,W", kernel: "Mean", shape: [3, 4, 5, 8], axis: [1, 2] },
  { name: "Mean over H,W of 144 rows", kernel: "Mean", shape: [2, 12, 12, 4], axis: [1, 2] },
  { name: "Mean over H,W of 1,600 rows", kernel: "Mean", shape: [2, 40, 40, 8], axis: [1, 2] },
  // Large enough to read from textures (≥ MIN_TEXTURE_FLOATS); one or several blocks.
  { name: "Sum [0,1,2] of 36,864 floats", kernel: "Sum", shape: [4, 24, 24, 16], axis: [0, 1, 2] },
  { name: "Mean over H,W of 18,432 floats", kernel: "Mean", shape: [2, 24, 24, 16], axis: [1, 2] },
  // Not ours (innermost axis, odd channels): the stock kernel must still answer.
  { name: "Sum over the last axis", kernel: "Sum", shape: [4, 6, 8], axis: [2] },
  { name: "Mean with 3 channels", kernel: "Mean", shape: [2, 4, 4, 3], axis: [0, 1, 2] },
  // Not a run ending before the last axis: stock.
  { name: "Mean over [0,2]", kernel: "Mean", shape: [2, 4, 4, 8], axis: [0, 2] },
];

for (const c of CASES) {
  for (const keepDims of [false, true]) {
    Deno.test(`${c.kernel} matches the cpu backend: ${c.name}, keepDims ${keepDims}`, async () => {
      await useWebGPU();
      const inputs = { x: hostInput(c.shape, 3) };
      const attrs = { axis: c.axis, keepDims };
      const got = await runOnWebGPU(c.kernel, inputs, attrs);
      assertClose(got, await runOnCpu(c.kernel, inputs, attrs));
    });
  }
}
