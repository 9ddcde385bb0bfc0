import * as tf from "@tensorflow/tfjs-core";
import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals } from "@std/assert";
import {
  cachedBindGroup,
  cachedUniforms,
  dispatchCacheStats,
  MAX_CACHED_UNIFORMS,
  setDispatchCaching,
  uniformBytes,
} from "./dispatch_cache.ts";
import { hostInput, useWebGPU } from "./kernel_test_util.ts";

type Field = { type: "int32" | "uint32" | "float32"; data: number[] };

/** The bytes tfjs-webgpu's own `makeUniforms` writes for `fields` (its prototype's, unreplaced). */
function tfjsUniformBytes(backend: WebGPUBackend, fields: Field[]): Uint8Array {
  const be = backend as unknown as {
    queue: GPUQueue;
    makeUniforms(f: Field[]): GPUBufferBinding;
  };
  const writeBuffer = be.queue.writeBuffer;
  let written: Uint8Array | undefined;
  be.queue.writeBuffer = (_buffer, _offset, data, dataOffset = 0, size) => {
    written = new Uint8Array((data as ArrayBuffer).slice(dataOffset, dataOffset + size!));
  };
  try {
    // deno-lint-ignore no-explicit-any
    (WebGPUBackend.prototype as any).makeUniforms.call(be, structuredClone(fields));
  } finally {
    be.queue.writeBuffer = writeBuffer;
  }
  return written!;
}

Deno.test("uniformBytes lays fields out exactly as tfjs-webgpu's makeUniforms", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  const cases: Field[][] = [
    [{ type: "int32", data: [3] }, { type: "int32", data: [1, 2] }],
    // tfjs's own prologue: NaN, Infinity, then shapes and strides of every rank.
    [
      { type: "float32", data: [NaN] },
      { type: "float32", data: [Infinity] },
      { type: "int32", data: [16, 32, 32, 64] },
      { type: "int32", data: [65536, 2048, 64] },
      { type: "int32", data: [7] },
      { type: "int32", data: [] },
      { type: "float32", data: [0.1, -2.5, 3] },
    ],
    // After a 5- or 6-element field everything is 16-aligned.
    [
      { type: "int32", data: [1, 2, 3, 4, 5] },
      { type: "int32", data: [6] },
      { type: "int32", data: [1, 2, 3, 4, 5, 6] },
      { type: "uint32", data: [9, 8] },
      { type: "float32", data: [1e-5] },
    ],
    [{ type: "float32", data: [0.5] }],
  ];
  for (const fields of cases) {
    assertEquals(new Uint8Array(uniformBytes(fields)), tfjsUniformBytes(backend, fields));
  }
});

Deno.test("cachedUniforms: one buffer per content (what it holds: the bit-equality test below)", async () => {
  await useWebGPU();
  const device = (tf.backend() as WebGPUBackend).device;
  // Values no other test uses, so the first call is a miss.
  const a = [{ type: "int32" as const, data: [123457, -99] }];
  const b = [{ type: "int32" as const, data: [123457, -98] }];
  const first = cachedUniforms(device, a);
  assert(cachedUniforms(device, structuredClone(a)) === first, "same bytes, same buffer");
  const other = cachedUniforms(device, b);
  assert(other.buffer !== first.buffer, "other bytes, another buffer");
  assertEquals(first.size, 8);
});

Deno.test("cachedBindGroup: the same objects give the same group, another buffer another one", async () => {
  await useWebGPU();
  const device = (tf.backend() as WebGPUBackend).device;
  const layout = device.createBindGroupLayout({
    entries: [{ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "storage" } }],
  });
  const usage = GPUBufferUsage.STORAGE;
  const [x, y] = [0, 1].map(() => device.createBuffer({ size: 64, usage }));
  const group = cachedBindGroup(device, layout, layout, [{ buffer: x }]);
  assert(cachedBindGroup(device, layout, layout, [{ buffer: x }]) === group, "same objects");
  assert(cachedBindGroup(device, layout, layout, [{ buffer: y }]) !== group, "another buffer");
  assert(
    cachedBindGroup(device, layout, layout, [{ buffer: x, offset: 0, size: 32 }]) !== group,
    "a different range of the same buffer",
  );
  x.destroy();
  y.destroy();
});

/**
 * A few steps of element-wise and matmul ops through tfjs's own programs and webtune's, on
 * inputs that change every step while tfjs's pool recycles their buffers.
 */
async function steps(): Promise<Float32Array[]> {
  const outputs: Float32Array[] = [];
  for (let step = 0; step < 4; step++) {
    const out = tf.tidy(() => {
      const x = tf.tensor(hostInput([64, 64], 11 + step).data, [64, 64]);
      const w = tf.tensor(hostInput([64, 64], 17 + step).data, [64, 64]);
      const h = tf.relu(tf.add(tf.matMul(x, w), tf.mul(x, 0.5)));
      return tf.sum(tf.mul(h, h), 1);
    });
    outputs.push(await out.data() as Float32Array);
    out.dispose();
  }
  return outputs;
}

Deno.test("with the caches every result is bit for bit what tfjs alone computes, and steps hit them", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  setDispatchCaching(false);
  let uncached: Float32Array[];
  try {
    uncached = await steps();
  } finally {
    setDispatchCaching(true);
  }
  const before = dispatchCacheStats(backend);
  const cached = await steps();
  const after = dispatchCacheStats(backend);
  assertEquals(cached, uncached);
  assert(after.bindGroupHits > before.bindGroupHits, "later steps reuse bind groups");
  assert(after.uniformHits > before.uniformHits, "later steps reuse uniform buffers");
});

Deno.test("past MAX_CACHED_UNIFORMS both caches are emptied after the next submit, and results stay right", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  const device = backend.device;
  const expected = await steps();
  const before = dispatchCacheStats(backend);
  for (let i = 0; i <= MAX_CACHED_UNIFORMS; i++) {
    cachedUniforms(device, [{ type: "int32", data: [-1, i] }]);
  }
  assertEquals(dispatchCacheStats(backend).clears, before.clears, "not while recording");
  assertEquals(await steps(), expected);
  assertEquals(dispatchCacheStats(backend).clears, before.clears + 1);
});

Deno.test("the buffer pool hands out the free buffer seen first, and counts as before", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  const pool = (backend as unknown as {
    bufferManager: {
      acquireBuffer(size: number, usage: number): GPUBuffer;
      releaseBuffer(buffer: GPUBuffer): void;
      getNumFreeBuffers(): number;
      getNumUsedBuffers(): number;
    };
  }).bufferManager;
  // A size and usage nothing else in this process asks for.
  const size = 4 * 12345, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
  const buffers = [0, 1, 2, 3].map(() => pool.acquireBuffer(size, usage));
  const [free, used] = [pool.getNumFreeBuffers(), pool.getNumUsedBuffers()];
  for (const i of [2, 0, 3, 1]) pool.releaseBuffer(buffers[i]);
  assertEquals(pool.getNumFreeBuffers(), free + 4);
  assertEquals(pool.getNumUsedBuffers(), used - 4);
  const again = [0, 1, 2, 3].map(() => pool.acquireBuffer(size, usage));
  assertEquals(again, buffers, "in the order first handed out, not last released first");
  for (const b of again) pool.releaseBuffer(b);
});

Deno.test("programs timed by tf.time run through the cached path too", async () => {
  await useWebGPU();
  const a = tf.tensor([1, 2, 3, 4]);
  let sum: tf.Tensor | undefined;
  const info = await tf.time(() => {
    sum = tf.add(a, a);
  });
  assert(info.wallMs >= 0);
  assertEquals([...await sum!.data()], [2, 4, 6, 8]);
  tf.dispose([a, sum!]);
});
