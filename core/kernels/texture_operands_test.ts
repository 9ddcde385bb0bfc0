import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals } from "@std/assert";
import {
  keptTextureHits,
  opaqueUniforms,
  operandCopyCount,
  operandRead,
  operandTextureBytes,
  runWithTextureOperands,
  setMaxKeptTextureBytes,
  setOperandCopyReuse,
  storageTexturesReadable,
  TEXTURE_WIDTH,
  textureDispatchCount,
  textureKindFor,
  texturePrelude,
  texturesFit,
} from "./texture_operands.ts";
import { SLOTS as WINOGRAD_SLOTS } from "./conv2d_winograd.ts";
import { conv2DTexture } from "./conv2d.ts";
import { WebtuneProgram, WG } from "./kernel_util.ts";
import { hostInput, useWebGPU } from "./kernel_test_util.ts";
import { SGD_UPDATE_KERNEL } from "./sgd_update.ts";

Deno.test("operandRead indexes buffers and calls the texture loader", () => {
  assertEquals(operandRead(false)("x", "at0 + j"), "x[at0 + j]");
  assertEquals(operandRead(true)("dy", "db + 1"), "ld_dy(db + 1)");
});

Deno.test("texturesFit wants vec4-sized tensors within the device's texture height", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  const info = (shape: number[]): tf.TensorInfo => ({ dataId: {}, shape, dtype: "float32" });
  assert(texturesFit(backend, [info([2, 8, 8, 64]), info([3, 3, 64, 64])]));
  assert(!texturesFit(backend, [info([2, 7, 7, 3])]), "3 channels are not whole texels");
  const maxRows = backend.device.limits.maxTextureDimension2D;
  assert(texturesFit(backend, [info([maxRows, TEXTURE_WIDTH, 4])]));
  assert(!texturesFit(backend, [info([maxRows + 1, TEXTURE_WIDTH, 4])]), "one row too many");
});

Deno.test("operandTextureBytes counts the operand textures a texture conv grew, textureDispatchCount its dispatch", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  const before = operandTextureBytes(backend);
  const dispatchesBefore = textureDispatchCount();
  const x = tf.ones([2, 8, 8, 64]);
  const w = tf.ones([3, 3, 64, 64]);
  const attrs = { strides: 1, pad: 1, dataFormat: "NHWC" } as const;
  const out = conv2DTexture(x, w, attrs, backend);
  backend.disposeData(out.dataId);
  // Two fresh slots, TEXTURE_WIDTH texels of 16 bytes per row, power-of-two rows: x's 2,048
  // texels take 1 row, w's 9,216 texels 3 rows → 4.
  assertEquals(operandTextureBytes(backend) - before, (1 + 4) * TEXTURE_WIDTH * 16);
  assertEquals(textureDispatchCount() - dispatchesBefore, 1, "one conv, one dispatch");
  tf.dispose([x, w]);
});

Deno.test("opaqueUniforms offsets every uniform field, so lavapipe can inline none", () => {
  const program = { uniforms: "cin4 : i32, strides : vec2<i32>, scale : f32," } as WebtuneProgram;
  const wgsl = opaqueUniforms(program, "uniformsIn", "z");
  assertEquals(wgsl.split("\n").map((l) => l.trim()), [
    "uniforms = uniformsIn;",
    "let opaqueZero = z;",
    "uniforms.cin4 += opaqueZero;",
    "uniforms.strides += vec2<i32>(opaqueZero);",
    "uniforms.scale += f32(opaqueZero);",
  ]);
});

Deno.test("texture programs read their uniforms only through the opaque copy", () => {
  const program = { variableNames: ["x", "w"], uniforms: "n : i32," } as WebtuneProgram;
  const prelude = texturePrelude(program);
  assert(prelude.includes("var<uniform> uniformsIn : Uniforms;"));
  assert(prelude.includes("var<private> uniforms : Uniforms;"));
  assert(!/var<uniform> uniforms\b/.test(prelude), "the uniform block itself is not `uniforms`");
});

Deno.test("texturePrelude binds sampled or read-only storage textures", () => {
  const program = { variableNames: ["x", "w"], uniforms: "n : i32," } as WebtuneProgram;
  const sampled = texturePrelude(program);
  assert(sampled.includes("var w : texture_2d<f32>;"), sampled);
  assert(sampled.includes(", 0);"), "a sampled textureLoad takes a mip level");
  const storage = texturePrelude(program, "storage");
  assert(storage.includes("var x : texture_storage_2d<rgba32float, read>;"), storage);
  assert(!storage.includes("texture_2d<f32>"), "no sampled binding left");
  assert(!storage.includes(", 0);"), "a storage textureLoad takes no mip level");
});

Deno.test("textureKindFor takes storage textures where WGSL allows them", () => {
  assertEquals(textureKindFor("sampled"), "sampled");
  assertEquals(textureKindFor("storage"), "storage");
  // Deno 2.9's WebGPU has the language feature, so the registered kernels use storage there.
  assert(storageTexturesReadable());
  assertEquals(textureKindFor(true), "storage");
});

Deno.test("a shared slot skips the copy of the tensor it holds, and copies any other", async () => {
  await useWebGPU();
  const shape = [3, 3, 32, 32]; // 9,216 floats: the SGD update reads them from shared slots
  const update = (p: tf.Tensor, g: tf.Tensor) =>
    tf.engine().runKernel(SGD_UPDATE_KERNEL, { param: p, grad: g }, {
      lr: 0.05,
      weightDecay: 1e-3,
    }) as tf.Tensor;
  // What the kernel computes when every input is copied afresh.
  const fresh = async (p: tf.Tensor, g: tf.Tensor) => {
    setOperandCopyReuse(false);
    try {
      const out = update(p, g);
      const data = await out.data();
      out.dispose();
      return data;
    } finally {
      setOperandCopyReuse(true);
    }
  };
  /** The update's output and how many copies it recorded. */
  const reused = async (p: tf.Tensor, g: tf.Tensor) => {
    const before = operandCopyCount();
    const out = update(p, g);
    const copies = operandCopyCount() - before;
    const data = await out.data();
    out.dispose();
    return { data, copies };
  };
  const p = tf.tensor(hostInput(shape, 1).data, shape);
  const g = tf.tensor(hostInput(shape, 2).data, shape);
  const first = await reused(p, g);
  assertEquals(first.data, await fresh(p, g));
  // fresh() copied p and g into the same slots (with reuse off, the slots forget them).
  assertEquals((await reused(p, g)).copies, 2);
  const again = await reused(p, g);
  assertEquals(again.copies, 0, "both slots hold p and g already");
  assertEquals(again.data, first.data);
  const swapped = await reused(g, p);
  assertEquals(swapped.copies, 2, "each slot holds the other tensor");
  assertEquals(swapped.data, await fresh(g, p));
  // A new tensor in a freed tensor's buffer (tfjs pools buffers by size) is copied again.
  await reused(p, g);
  p.dispose();
  const p2 = tf.tensor(hostInput(shape, 3).data, shape);
  const next = await reused(p2, g);
  assertEquals(next.copies, 1, "g is still held, p2 is new");
  assertEquals(next.data, await fresh(p2, g));
  tf.dispose([p2, g]);
});

/** Copies its one input, read through `ld_a`: a texture program that takes any slot. */
class CopyProgram extends WebtuneProgram {
  variableNames = ["a"];
  uniforms = "n4 : i32,";
  constructor(n: number) {
    super([n], { x: [0] }, [Math.ceil(n / 4 / WG), 1, 1], "TestTextureCopy");
  }
  getUserCode(): string {
    return `fn main() {
      let i = i32(globalId.x);
      if (i < uniforms.n4) { result[i] = ld_a(i); }
    }`;
  }
}

/** Runs {@linkcode CopyProgram} on `t` through `slot`: its output and the copies it recorded. */
async function copyThrough(t: tf.Tensor, slot: string) {
  const backend = tf.backend() as WebGPUBackend;
  const n = t.size;
  const before = operandCopyCount();
  const out = runWithTextureOperands(
    backend,
    new CopyProgram(n),
    [t],
    [
      { type: "int32", data: [n / 4] },
    ],
    "sampled",
    [slot],
  );
  const copies = operandCopyCount() - before;
  const data = await backend.read(out.dataId) as Float32Array;
  backend.disposeData(out.dataId);
  return { data, copies };
}

Deno.test("conv filters keep their texture; Winograd's transformed filter from its second copy; other slots copy every time", async () => {
  await useWebGPU();
  const shape = [3, 3, 16, 16];
  const t = tf.tensor(hostInput(shape, 5).data, shape);
  const expected = await t.data();
  const copies = async (slot: string) => {
    const runs = [];
    for (let i = 0; i < 3; i++) {
      const { data, copies } = await copyThrough(t, slot);
      assertEquals(data, expected);
      runs.push(copies);
    }
    return runs;
  };
  const hits = keptTextureHits();
  assertEquals(await copies("TestConv w"), [1, 0, 0], "a program's `w`");
  assertEquals(await copies(WINOGRAD_SLOTS.filter), [0, 0, 0], "kept already, by data");
  const u = tf.tensor(hostInput(shape, 6).data, shape);
  const uExpected = await u.data();
  const uCopies = [];
  for (let i = 0; i < 3; i++) {
    const { data, copies } = await copyThrough(u, WINOGRAD_SLOTS.u);
    assertEquals(data, uExpected);
    uCopies.push(copies);
  }
  assertEquals(uCopies, [1, 1, 0], "kept from its second copy");
  assertEquals(keptTextureHits() - hits, 2 + 3 + 1);
  assertEquals(await copies("TestConv x"), [1, 1, 1], "not a filter");
  const was = setOperandCopyReuse(false);
  try {
    assertEquals(await copies("TestConv w"), [1, 1, 1], "reuse off (tuner, --profile)");
  } finally {
    setOperandCopyReuse(was);
  }
  const bound = setMaxKeptTextureBytes(0);
  try {
    assertEquals(await copies("TestConv w"), [1, 1, 1], "kept textures off, t's included");
  } finally {
    setMaxKeptTextureBytes(bound);
  }
  assertEquals(await copies("TestConv w"), [0, 0, 0], "on again: t's texture was kept");
  tf.dispose([t, u]);
});

Deno.test("kept filter textures stay within their bound, least recently used out first, and evicted ones are copied again", async () => {
  await useWebGPU();
  // 24 rows of TEXTURE_WIDTH texels: a 32-row (2 MiB) texture each, 5 of them under the bound.
  const shape = [24, TEXTURE_WIDTH, 4];
  const perTexture = 32 * TEXTURE_WIDTH * 16;
  const was = setMaxKeptTextureBytes(5 * perTexture);
  const filters = Array.from(
    { length: 7 },
    (_, i) => tf.tensor(hostInput(shape, 40 + i).data, shape),
  );
  try {
    const backend = tf.backend() as WebGPUBackend;
    const before = operandTextureBytes(backend);
    for (const f of filters) assertEquals((await copyThrough(f, "TestBig w")).copies, 1);
    assert(
      operandTextureBytes(backend) - before <= 5 * perTexture,
      "the kept textures grew by at most the bound",
    );
    assertEquals((await copyThrough(filters[6], "TestBig w")).copies, 0, "recently used: kept");
    const first = await copyThrough(filters[0], "TestBig w");
    assertEquals(first.copies, 1, "least recently used: evicted");
    assertEquals(first.data, await filters[0].data());
    // Kept now, least recently used first: 3, 4, 5, 6, 0. A disposed filter's texture is the
    // first to go, so the least recently used live one (3) stays.
    filters[4].dispose();
    const next = tf.tensor(hostInput(shape, 60).data, shape);
    assertEquals((await copyThrough(next, "TestBig w")).copies, 1);
    assertEquals((await copyThrough(filters[3], "TestBig w")).copies, 0, "live ones stay");
    next.dispose();
  } finally {
    setMaxKeptTextureBytes(was);
    tf.dispose(filters);
  }
});
