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
  derFilterSplit,
  derFilterSupports,
  derFilterTextureTile,
  type DerFilterTile,
  LOOP_STEP_BUDGET,
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

/** With sampled-texture operands (where WGSL lacks read-only storage textures). */
function sampledDerFilter<T>(f: () => Promise<T>): Promise<T> {
  return withKernelVariant("Conv2DBackpropFilter", ({ inputs, attrs, backend }) => {
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const a = attrs as Conv2DBackpropFilterAttrs;
    if (!derFilterSupports(x, dy, a)) return null;
    const tile = derFilterTextureTile(a.filterShape);
    return conv2DBackpropFilterGemm(x, dy, a, backend as WebGPUBackend, tile, "sampled");
  }, f);
}

/** The registered kernel (texture operands), and the storage-buffer variant it falls back to. */
const VARIANTS: [string, <T>(f: () => Promise<T>) => Promise<T>][] = [
  ["", (f) => f()],
  [" with buffers", bufferDerFilter],
  [" with sampled textures", sampledDerFilter],
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

Deno.test("derFilterSplit keeps each invocation within llvmpipe's loop budget", () => {
  // The stem at 224 px, batch 16, with 16-row tiles: 3 splits for the workgroup target alone
  // would give 598 rows of 112 + 1 steps each, past the budget.
  for (const tx of [1, 2]) {
    const { splits, rowsPerSplit } = derFilterSplit(196, 64, { tk: 16, tc: 2, tx }, 1792, 112);
    assert(splits * rowsPerSplit >= 1792, "rows left out");
    assert((splits - 1) * rowsPerSplit < 1792, "an empty split");
    const steps = rowsPerSplit * (Math.ceil(112 / tx) + 1);
    assert(steps < LOOP_STEP_BUDGET, `${steps} loop steps with tx ${tx}`);
  }
});

Deno.test("Conv2DBackpropFilter stays exact where one split would pass llvmpipe's loop budget", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  // 4 images of 64 rows × 300 positions, 8×1 tiles: 36 workgroups, so no split for the target,
  // but 256 × 301 loop steps in one invocation (> 65535); one image alone is within budget.
  const [n, h, w, c] = [4, 64, 300, 32];
  const x = tf.tensor4d(hostInput([n, h, w, c], 11).data, [n, h, w, c]);
  const dy = tf.tensor4d(hostInput([n, h, w, c], 12).data, [n, h, w, c]);
  const attrs: Conv2DBackpropFilterAttrs = {
    strides: 1,
    pad: "same",
    dataFormat: "NHWC",
    filterShape: [3, 3, c, c],
  };
  const tile = { tk: 8, tc: 1 };
  const run = async (xs: tf.Tensor, dys: tf.Tensor) => {
    const out = conv2DBackpropFilterGemm(xs, dys, attrs, backend, tile, true);
    const data = await backend.read(out.dataId) as Float32Array;
    backend.disposeData(out.dataId);
    return data;
  };
  const got = await run(x, dy);
  const want = new Float32Array(got.length);
  for (let i = 0; i < n; i++) {
    const [xi, dyi] = [tf.slice(x, i, 1), tf.slice(dy, i, 1)];
    const part = await run(xi, dyi);
    for (let j = 0; j < want.length; j++) want[j] += part[j];
    tf.dispose([xi, dyi]);
  }
  tf.dispose([x, dy]);
  assertClose(got, want);
});

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

/** dW with the given tile on texture operands (what a variant of `auto` runs). */
function tiledDerFilter(tile: DerFilterTile) {
  return <T>(f: () => Promise<T>): Promise<T> =>
    withKernelVariant("Conv2DBackpropFilter", ({ inputs, attrs, backend }) => {
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = attrs as Conv2DBackpropFilterAttrs;
      if (!derFilterSupports(x, dy, a)) return null;
      return conv2DBackpropFilterGemm(x, dy, a, backend as WebGPUBackend, tile, true);
    }, f);
}

// The generic tile (first use: direct or padded mode a uniform) must compute exactly what the
// specialised programs of the same tile compute, and share one pipeline between the modes.
for (const c of CONV_CASES) {
  Deno.test(`Conv2DBackpropFilter, generic tile equals the specialised one: ${c.name}`, async () => {
    await useWebGPU();
    const filterShape = [c.k, c.k, c.x[3], c.cout];
    const inputs = { x: hostInput(c.x, 1), dy: hostInput(dyShape(c), 2) };
    const attrs = {
      strides: [c.stride, c.stride],
      pad: padAttr(c.pad),
      dataFormat: "NHWC",
      dilations: [1, 1],
      filterShape,
    };
    const generic = await tiledDerFilter({ tk: 8, tc: 2, generic: true })(() =>
      runOnWebGPU("Conv2DBackpropFilter", inputs, attrs)
    );
    const specialised = await tiledDerFilter({ tk: 8, tc: 2 })(() =>
      runOnWebGPU("Conv2DBackpropFilter", inputs, attrs)
    );
    assertEquals(generic, specialised);
    assertClose(generic, await runOnCpu("Conv2DBackpropFilter", inputs, attrs));
    const backend = tf.backend() as unknown as { pipelineCache: Record<string, unknown> };
    const pipelines = Object.keys(backend.pipelineCache)
      .filter((k) => k.startsWith("webtuneConv2DDerFilterGemm_8_2_1_generic"));
    assertEquals(pipelines.length, 1, `generic pipelines: ${pipelines.join(", ")}`);
  });
}

// The first-use tile (8 × 1, split as the 8 × 2 tile) must compute exactly what the 8 × 2 tile
// computes.
for (const c of CONV_CASES) {
  Deno.test(`Conv2DBackpropFilter, the 8x1 tile split as 8x2 equals the 8x2 tile: ${c.name}`, async () => {
    await useWebGPU();
    const filterShape = [c.k, c.k, c.x[3], c.cout];
    const inputs = { x: hostInput(c.x, 3), dy: hostInput(dyShape(c), 4) };
    const attrs = {
      strides: [c.stride, c.stride],
      pad: padAttr(c.pad),
      dataFormat: "NHWC",
      dilations: [1, 1],
      filterShape,
    };
    const narrow = await tiledDerFilter({ tk: 8, tc: 1, generic: true, splitTc: 2 })(() =>
      runOnWebGPU("Conv2DBackpropFilter", inputs, attrs)
    );
    const wide = await tiledDerFilter({ tk: 8, tc: 2, generic: true })(() =>
      runOnWebGPU("Conv2DBackpropFilter", inputs, attrs)
    );
    assertEquals(narrow, wide);
  });
}
