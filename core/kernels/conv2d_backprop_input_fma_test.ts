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
import * as tf from "@tensorflow/tfjs-core";
import { assertEquals } from "@std/assert";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import type { Conv2DBackpropInputAttrs } from "./conv2d_backprop_input.ts";
import {
  conv2DBackpropInputFma,
  derInputFmaSupports,
  type DerInputFmaTile,
  derInputFmaTile,
} from "./conv2d_backprop_input_fma.ts";
import type { TextureKind } from "./texture_operands.ts";

/**
 * Conv2DBackpropInput by the FMA kernel (with `tile`; textures of the fastest kind, `sampled`
 * ones as browsers without read-only storage textures get, or buffers), else the stock one.
 */
function fmaDerInput(textures: boolean | TextureKind, tile?: DerInputFmaTile, anyStride = false) {
  return <T>(f: () => Promise<T>): Promise<T> =>
    withKernelVariant("Conv2DBackpropInput", ({ inputs, attrs, backend }) => {
      const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
      const a = attrs as Conv2DBackpropInputAttrs;
      const t = tile ?? derInputFmaTile();
      if (!derInputFmaSupports(dy, filter, a) || filter.shape[2] / 4 < t.tc) return null;
      const b = backend as WebGPUBackend;
      return conv2DBackpropInputFma(dy, filter, a, b, t, textures, anyStride);
    }, f);
}

// Tiles that straddle the batch and leave a sub-pixel's last tile part empty (tm 7), and
// the wide tile on channel counts it clamps inward (tc 4 × 8 lanes > Cin / 4).
const VARIANTS: [string, <T>(f: () => Promise<T>) => Promise<T>][] = [
  ["textures", fmaDerInput(true)],
  ["sampled textures", fmaDerInput("sampled")],
  ["buffers", fmaDerInput(false)],
  ["textures, tile 7x1", fmaDerInput(true, { tm: 7, tc: 1 })],
  ["textures, tile 32x4", fmaDerInput(true, { tm: 32, tc: 4 })],
];

for (const c of CONV_CASES) {
  for (const [variant, run] of VARIANTS) {
    Deno.test(`Conv2DBackpropInput FMA kernel (${variant}) matches the cpu backend: ${c.name}`, async () => {
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
      const got = await run(() => runOnWebGPU("Conv2DBackpropInput", inputs, attrs));
      assertClose(got, await runOnCpu("Conv2DBackpropInput", inputs, attrs));
    });
  }
}

// The first-use tile reads the strides from uniforms: it must compute exactly what the program
// with the strides baked in computes, and one pipeline must serve every stride.
Deno.test("Conv2DBackpropInput FMA kernel, strides in uniforms equal baked strides, one pipeline", async () => {
  await useWebGPU();
  const tile = { tm: 4, tc: 1 };
  for (const c of CONV_CASES) {
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
    const run = (anyStride: boolean) =>
      fmaDerInput(true, tile, anyStride)(() => runOnWebGPU("Conv2DBackpropInput", inputs, attrs));
    assertEquals(await run(true), await run(false), c.name);
  }
  const backend = tf.backend() as unknown as { pipelineCache: Record<string, unknown> };
  const pipelines = Object.keys(backend.pipelineCache)
    .filter((k) => k.startsWith("webtuneConv2DDerInputFma_4_1_anyStride"));
  assertEquals(pipelines.length, 1, `pipelines: ${pipelines.join(", ")}`);
  assertEquals(new Set(CONV_CASES.map((c) => c.stride)).size > 1, true, "cases of one stride");
});
