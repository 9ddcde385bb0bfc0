import * as tf from "@tensorflow/tfjs-core";
import { assertEquals } from "@std/assert";
import { hostInput, runOnCpu, useWebGPU } from "./kernel_test_util.ts";

/** Pipelines of webtune program `name` in tfjs's cache (ours are keyed by program only). */
function pipelinesOf(name: string): number {
  const cache = (tf.backend() as unknown as { pipelineCache: Record<string, unknown> })
    .pipelineCache;
  return Object.keys(cache).filter((key) => key.startsWith(`webtune${name}_`)).length;
}

/** Every output of kernel `name` on the active backend, as data (Unpack has several). */
async function outputs(
  name: string,
  x: ReturnType<typeof hostInput>,
  attrs: Record<string, unknown>,
): Promise<Float32Array[]> {
  const input = tf.tensor(x.data, x.shape);
  const out = tf.engine().runKernel(name, { x: input, value: input }, attrs as tf.NamedAttrMap);
  const list = Array.isArray(out) ? out as tf.Tensor[] : [out as tf.Tensor];
  const data = await Promise.all(list.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose([input, ...list]);
  return data;
}

// BatchNorm's unstack of its channel sums, the stem dW's pad of x and slice of its filter rows,
// and other ranks, axes and pad values. Each input has at least tfjs's CPU hand-off size (1000
// elements) so that it runs on the GPU.
const CASES: [string, number[], Record<string, unknown>][] = [
  ["Unpack", [2, 512], { axis: 0 }],
  ["Unpack", [3, 400], { axis: 1 }],
  ["Unpack", [5, 10, 30], { axis: -1 }],
  ["PadV2", [2, 16, 16, 3], { paddings: [[0, 0], [3, 4], [3, 4], [0, 1]], constantValue: 0 }],
  ["PadV2", [40, 30], { paddings: [[1, 2], [0, 3]], constantValue: -1.5 }],
  ["PadV2", [1200], { paddings: [[5, 0]], constantValue: 2 }],
  ["Slice", [7, 7, 4, 64], { begin: [0, 0, 0, 0], size: [7, 7, 3, 64] }],
  ["Slice", [30, 40], { begin: [2, 5], size: [-1, 20] }],
  ["Slice", [10, 10, 12], { begin: [1, 0, 4], size: [3, 10, 8] }],
];

Deno.test("Slice, Unpack and PadV2 of float32 tensors equal the cpu backend's, one pipeline", async () => {
  await useWebGPU();
  for (const [i, [name, shape, attrs]] of CASES.entries()) {
    const x = hostInput(shape, i + 1);
    const got = await outputs(name, x, attrs);
    await tf.setBackend("cpu");
    let want: Float32Array[];
    try {
      want = await outputs(name, x, attrs);
    } finally {
      await tf.setBackend("webgpu");
    }
    assertEquals(got, want, `${name} ${shape} ${JSON.stringify(attrs)}`);
  }
  assertEquals(pipelinesOf("StridedCopy"), 1);
});

Deno.test("Slice of int32 data keeps tfjs's kernel", async () => {
  await useWebGPU();
  const x = { shape: [40, 30], data: new Float32Array(1200).map((_, k) => k) };
  const ints = tf.tidy(() =>
    tf.slice(tf.cast(tf.tensor(x.data, x.shape), "int32"), [1, 2], [3, 4])
  );
  assertEquals(
    Array.from(await ints.data()),
    Array.from(
      await runOnCpu("Slice", { x }, {
        begin: [1, 2],
        size: [3, 4],
      }),
    ),
  );
  ints.dispose();
});
