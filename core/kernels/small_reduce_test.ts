import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals } from "@std/assert";
import { assertClose, hostInput, runOnCpu, runOnWebGPU, useWebGPU } from "./kernel_test_util.ts";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { registerFastKernels, unregisterFastKernels } from "./mod.ts";
import { smallReduce } from "./small_reduce.ts";
import { textureDispatchCount } from "./texture_operands.ts";

/** Pipelines of webtune program `name` in tfjs's cache (ours are keyed by program only). */
function pipelinesOf(name: string): number {
  const cache = (tf.backend() as unknown as { pipelineCache: Record<string, unknown> })
    .pipelineCache;
  return Object.keys(cache).filter((key) => key.startsWith(`webtune${name}_`)).length;
}

/** The kernel's output on webgpu with tfjs's stock kernels (ours unregistered meanwhile). */
async function stock(
  name: string,
  inputs: Record<string, ReturnType<typeof hostInput>>,
  attrs: Record<string, unknown>,
): Promise<Float32Array | Int32Array> {
  unregisterFastKernels();
  try {
    return await runOnWebGPU(name, inputs, attrs);
  } finally {
    registerFastKernels();
  }
}

// The step's calls (log-sum-exp's max and sum over the classes, the summed loss, the bias
// gradient's sum over the batch), rows longer than tfjs's 64 lanes (its tree over partial
// values) and of odd length, reductions over several and non-adjacent axes, keepDims. Rows
// under 64 elements have a power-of-two length (others keep tfjs's kernel, see below). None is
// a sum over a run of axes before a last one of 4k channels (channel_reduce.ts takes those). Each
// input has at least tfjs's CPU hand-off size (1000 elements) so that it runs on the GPU.
const CASES: { shape: number[]; axis: number | number[]; keepDims: boolean }[] = [
  { shape: [500, 2], axis: 1, keepDims: false },
  { shape: [500, 2], axis: 1, keepDims: true },
  { shape: [1000], axis: 0, keepDims: false },
  { shape: [500, 2], axis: 0, keepDims: false },
  { shape: [7, 201], axis: 1, keepDims: false },
  { shape: [4, 100, 4], axis: [0, 2], keepDims: true },
  { shape: [3, 4, 8, 15], axis: [1, 2], keepDims: false },
  { shape: [2, 4, 8, 16], axis: [0, 3], keepDims: false },
];

for (const kernel of ["Sum", "Max"]) {
  Deno.test(`${kernel} of small tensors equals tfjs's program to the bit, one pipeline`, async () => {
    await useWebGPU();
    for (const [i, c] of CASES.entries()) {
      const inputs = { x: hostInput(c.shape, i + 1) };
      // tfjs's Max names its axes `reductionIndices`.
      const attrs = kernel === "Max"
        ? { reductionIndices: c.axis, keepDims: c.keepDims }
        : { axis: c.axis, keepDims: c.keepDims };
      const ours = await runOnWebGPU(kernel, inputs, attrs);
      assertEquals(ours, await stock(kernel, inputs, attrs), `${c.shape} axis ${c.axis}`);
      assertClose(ours, await runOnCpu(kernel, inputs, attrs), 1e-5);
      await useWebGPU();
    }
    assertEquals(pipelinesOf("SmallReduce"), 1);
  });
}

Deno.test("Sum and ArgMax of a never-uploaded tensor run here, as tfjs's run on the GPU", async () => {
  await useWebGPU();
  const before = textureDispatchCount();
  const losses = tf.tensor1d([0.5, 0.25, 1, 2]);
  const logits = tf.tensor2d([[1, 2], [4, 3]]);
  const [sum, argMax] = [tf.sum(losses), tf.argMax(logits, 1)];
  assertEquals(await sum.data(), new Float32Array([3.75]));
  assertEquals(Array.from(await argMax.data()), [1, 0]);
  tf.dispose([losses, logits, sum, argMax]);
  // Both were ours (tfjs's programs do not go through runWithTextureOperands).
  assertEquals(textureDispatchCount() - before, 2);
});

Deno.test("Max of small tensors: a NaN wins, as in tfjs's program", async () => {
  await useWebGPU();
  const x = hostInput([500, 2], 9);
  x.data[7] = NaN;
  x.data[100] = NaN;
  const attrs = { reductionIndices: 1, keepDims: false };
  const ours = await runOnWebGPU("Max", { x }, attrs);
  assert(Number.isNaN(ours[3]) && Number.isNaN(ours[50]));
  assertEquals(ours, await stock("Max", { x }, attrs));
});

Deno.test("ArgMax of small tensors equals tfjs's program, first maximum and NaN rules", async () => {
  await useWebGPU();
  for (const [i, shape] of [[500, 2], [100, 10], [4, 25, 10]].entries()) {
    const x = hostInput(shape, i + 3);
    // Ties (the first wins) and NaNs (never taken unless first).
    x.data[1] = x.data[0];
    x.data[2] = NaN;
    x.data[5] = NaN;
    const attrs = { axis: shape.length - 1 };
    const ours = await runOnWebGPU("ArgMax", { x }, attrs);
    assertEquals(ours, await stock("ArgMax", { x }, attrs), `${shape}`);
    await useWebGPU();
  }
  const axis0 = { x: hostInput([10, 100], 8) };
  assertEquals(
    await runOnWebGPU("ArgMax", axis0, { axis: 0 }),
    await stock("ArgMax", axis0, { axis: 0 }),
  );
  assertEquals(pipelinesOf("SmallReduce"), 1);
});

Deno.test("large inputs, rows of 3–63 elements but 4, 8, 16, 32 and long ArgMax rows keep tfjs's kernels", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  const uploaded = (shape: number[]) => tf.tidy(() => tf.add(tf.ones(shape), tf.ones(shape)));
  const x = uploaded([100, 12]);
  assertEquals(smallReduce("Sum", { x }, { axis: 1 }, backend), null);
  const y = uploaded([100, 16]);
  const sum = smallReduce("Sum", { x: y }, { axis: 1 }, backend);
  assert(sum !== null);
  backend.disposeData(sum.dataId);
  tf.dispose([x, y]);
  const before = pipelinesOf("SmallReduce");
  const big = { x: hostInput([64, 100], 1) };
  assertClose(
    await runOnWebGPU("Sum", big, { axis: 1 }),
    await runOnCpu("Sum", big, { axis: 1 }),
  );
  await useWebGPU();
  const long = { x: hostInput([40, 40], 2) };
  assertEquals(
    Array.from(await runOnWebGPU("ArgMax", long, { axis: 1 })),
    Array.from(await runOnCpu("ArgMax", long, { axis: 1 })),
  );
  assert(pipelinesOf("SmallReduce") <= Math.max(before, 1));
});
