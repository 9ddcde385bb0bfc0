import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals } from "@std/assert";
import { assertClose, hostInput, runOnCpu, runOnWebGPU, useWebGPU } from "./kernel_test_util.ts";
import { SMALL_BINARY_OPS, SMALL_UNARY_OPS } from "./small_ops.ts";
import { textureDispatchCount } from "./texture_operands.ts";

/** Pipelines of webtune program `name` in tfjs's cache (ours are keyed by program only). */
function pipelinesOf(name: string): number {
  const cache = (tf.backend() as unknown as { pipelineCache: Record<string, unknown> })
    .pipelineCache;
  return Object.keys(cache).filter((key) => key.startsWith(`webtune${name}_`)).length;
}

// Same shape; a per-channel vector; a scalar; both sides broadcast; two rank-4 shapes. Each has
// an input of at least tfjs's CPU hand-off size (1000 elements), so it runs on the GPU.
const BROADCASTS: [number[], number[]][] = [
  [[16, 80], [16, 80]],
  [[4, 3, 3, 64], [64]],
  [[1200], [1]],
  [[1], [1200]],
  [[16, 1, 64], [1, 3, 1]],
  [[2, 2, 4, 64], [2, 1, 1, 64]],
];

for (const kernel of SMALL_BINARY_OPS) {
  Deno.test(`${kernel} of small tensors equals the cpu backend's exactly, one pipeline`, async () => {
    await useWebGPU();
    for (const [i, [aShape, bShape]] of BROADCASTS.entries()) {
      const b = hostInput(bShape, 2 * i + 2);
      // Away from 0, so that RealDiv stays finite.
      if (kernel === "RealDiv") b.data.forEach((v, k) => (b.data[k] = v + Math.sign(v) + 0.5));
      const inputs = { a: hostInput(aShape, 2 * i + 1), b };
      // Equal: values on a coarse grid, so that many pairs are equal.
      if (kernel === "Equal") {
        for (const t of [inputs.a, b]) t.data.forEach((v, k) => (t.data[k] = Math.round(v * 2)));
      }
      const got = await runOnWebGPU(kernel, inputs, {});
      assertClose(got, await runOnCpu(kernel, inputs, {}), 0);
      await useWebGPU();
    }
    assertEquals(pipelinesOf("SmallElementwise"), 1);
  });
}

for (const kernel of SMALL_UNARY_OPS) {
  Deno.test(`${kernel} of a small tensor equals the cpu backend's, one pipeline`, async () => {
    await useWebGPU();
    const x = hostInput([30, 40], 7);
    // Log and Rsqrt also meet negative numbers (NaN, as tfjs gives) and zero (±Infinity).
    x.data[0] = 0;
    const got = await runOnWebGPU(kernel, { x }, {});
    const want = await runOnCpu(kernel, { x }, {});
    for (let k = 0; k < want.length; k++) {
      if (Number.isFinite(want[k])) continue;
      assertEquals(got[k], want[k], `element ${k}`);
      got[k] = want[k] = 0;
    }
    // exp, log and inverseSqrt: llvmpipe's and JavaScript's approximations differ in the last bits.
    assertClose(got, want, 1e-6);
    assertEquals(pipelinesOf("SmallElementwise"), 1);
  });
}

Deno.test("large and integer operands keep their kernels", async () => {
  await useWebGPU();
  const before = pipelinesOf("SmallElementwise");
  const big = { a: hostInput([8, 16, 16, 4], 1), b: hostInput([4], 2) };
  assertClose(await runOnWebGPU("Add", big, {}), await runOnCpu("Add", big, {}), 0);
  await useWebGPU();
  const ints = tf.tidy(() => tf.mul(tf.range(0, 300, 1, "int32"), tf.scalar(3, "int32")));
  assertEquals((await ints.data())[299], 897);
  ints.dispose();
  // Nothing new under SmallBinary's key (a fresh process would have none at all).
  assert(pipelinesOf("SmallElementwise") <= Math.max(before, 1));
});

Deno.test("a float32 cast from int32 or bool (same integer bits, relabelled) is read as its values", async () => {
  await useWebGPU();
  const before = pipelinesOf("SmallElementwise");
  const [ints, bools] = await Promise.all(
    tf.tidy(() => {
      const i = tf.add(tf.range(0, 1200, 1, "int32"), tf.scalar(1, "int32"));
      const b = tf.greater(tf.range(0, 1200), tf.scalar(599.5));
      return [
        tf.mul(tf.cast(i, "float32"), tf.fill([1200], 0.5)),
        tf.sub(tf.fill([1200], 2), tf.cast(b, "float32")),
      ];
    }).map((t) => t.data()),
  );
  assertEquals([ints[0], ints[1199]], [0.5, 600]);
  assertEquals([bools[0], bools[599], bools[600], bools[1199]], [2, 2, 1, 1]);
  assertEquals(pipelinesOf("SmallElementwise"), Math.max(before, 1));
});

Deno.test("OneHot of small int32 indices equals the cpu backend's, in the same pipeline", async () => {
  await useWebGPU();
  for (const [dtype, on, off] of [["int32", 1, 0], ["float32", 2.5, -0.5]] as const) {
    const [got, want] = await Promise.all([0, 1].map(async (cpu) => {
      if (cpu) await tf.setBackend("cpu");
      try {
        return await tf.tidy(() => {
          // Computed on the device (tfjs leaves small never-uploaded tensors to its CPU code).
          const all = tf.cast(tf.mod(tf.range(0, 1200), tf.scalar(7)), "int32");
          // 700 × 5 outputs: under the module's size limit.
          const indices = tf.slice(all, 0, 700);
          return tf.oneHot(indices, 5, on, off, dtype);
        }).data();
      } finally {
        if (cpu) await tf.setBackend("webgpu");
      }
    }));
    assertEquals(Array.from(got), Array.from(want), dtype);
  }
  // A batch's labels, never uploaded (tfjs's OneHot runs on the GPU even so): ours too.
  const labels = tf.tensor1d([0, 1, 1, 0, 1, 0, 0, 1], "int32");
  const before = textureDispatchCount();
  const hot = tf.oneHot(labels, 2);
  assertEquals(textureDispatchCount() - before, 1);
  assertEquals(Array.from(await hot.data()), [1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1]);
  tf.dispose([labels, hot]);
  assertEquals(pipelinesOf("SmallElementwise"), 1);
  // Not tfjs's program.
  const cache = (tf.backend() as unknown as { pipelineCache: Record<string, unknown> })
    .pipelineCache;
  assertEquals(Object.keys(cache).filter((key) => key.startsWith("onehot")), []);
});
