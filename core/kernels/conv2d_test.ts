import * as tf from "@tensorflow/tfjs-core";
import { assertEquals } from "@std/assert";
import {
  assertClose,
  conv2DAttrs,
  CONV_CASES,
  hostInput,
  runOnCpu,
  runOnWebGPU,
  useWebGPU,
  withKernelVariant,
} from "./kernel_test_util.ts";
import {
  type Conv2DAttrs,
  conv2DGemm,
  conv2DGemmSupports,
  conv2DTextureTile,
  type ConvTile,
} from "./conv2d.ts";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** Conv2D with storage-buffer operands (the variant for textures too large) in place of the registered kernel. */
function bufferConv2D<T>(f: () => Promise<T>): Promise<T> {
  return withKernelVariant("Conv2D", ({ inputs, attrs, backend }) => {
    const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const a = attrs as Conv2DAttrs;
    if (!conv2DGemmSupports(x, filter, a)) return null;
    return conv2DGemm(x, filter, a, backend as WebGPUBackend);
  }, f);
}

/**
 * Conv2D with sampled-texture operands (`texture_2d`: where WGSL lacks read-only storage
 * textures; the registered kernel uses those in Deno).
 */
function sampledConv2D<T>(f: () => Promise<T>): Promise<T> {
  return withKernelVariant("Conv2D", ({ inputs, attrs, backend }) => {
    const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const a = attrs as Conv2DAttrs;
    if (!conv2DGemmSupports(x, filter, a)) return null;
    const tile = conv2DTextureTile(filter.shape[3]);
    return conv2DGemm(x, filter, a, backend as WebGPUBackend, tile, "sampled");
  }, f);
}

/** The registered kernel (texture operands), and the storage-buffer variant it falls back to. */
const VARIANTS: [string, <T>(f: () => Promise<T>) => Promise<T>][] = [
  ["", (f) => f()],
  [" with storage-buffer operands", bufferConv2D],
  [" with sampled-texture operands", sampledConv2D],
];

for (const c of CONV_CASES) {
  for (const [variant, run] of VARIANTS) {
    Deno.test(`Conv2D${variant} matches the cpu backend: ${c.name}`, async () => {
      await useWebGPU();
      const inputs = { x: hostInput(c.x, 5), filter: hostInput([c.k, c.k, c.x[3], c.cout], 6) };
      const attrs = conv2DAttrs(c.stride, c.pad);
      const got = await run(() => runOnWebGPU("Conv2D", inputs, attrs));
      assertClose(got, await runOnCpu("Conv2D", inputs, attrs));
    });
  }
}

Deno.test("Conv2D falls back to the stock kernel for dilation 2", async () => {
  await useWebGPU();
  const inputs = { x: hostInput([2, 9, 9, 8], 7), filter: hostInput([3, 3, 8, 8], 8) };
  const attrs = { strides: [1, 1], pad: "same", dataFormat: "NHWC", dilations: [2, 2] };
  const got = await runOnWebGPU("Conv2D", inputs, attrs);
  assertClose(got, await runOnCpu("Conv2D", inputs, attrs));
});

Deno.test("conv stack gradients (tf.variableGrads) match the cpu backend", async () => {
  await useWebGPU();
  const x = hostInput([2, 16, 16, 3], 9);
  const shapes = [[7, 7, 3, 16], [3, 3, 16, 16], [3, 3, 16, 32], [1, 1, 16, 32]];
  const ws = shapes.map((s, i) => hostInput(s, 10 + i));
  const grads = async (): Promise<Float32Array[]> => {
    const vars = ws.map((w) => tf.variable(tf.tensor(w.data, w.shape)));
    const input = tf.tensor4d(x.data, x.shape as [number, number, number, number]);
    const f = () => {
      const [stem, a, b, ds] = vars as tf.Variable<tf.Rank.R4>[];
      const h = tf.relu(tf.conv2d(input, stem, 2, 3));
      const y = tf.relu(tf.conv2d(tf.relu(tf.conv2d(h, a, 1, 1)), b, 2, 1));
      return tf.sum(tf.mul(tf.add(y, tf.conv2d(h, ds, 2, 0)), 0.01)) as tf.Scalar;
    };
    const { value, grads } = tf.variableGrads(f, vars);
    const out = await Promise.all(vars.map((v) => grads[v.name].data() as Promise<Float32Array>));
    tf.dispose([value, input, ...vars, ...Object.values(grads)]);
    return out;
  };
  const got = await grads();
  await tf.setBackend("cpu");
  const want = await grads();
  await tf.setBackend("webgpu");
  for (let i = 0; i < got.length; i++) assertClose(got[i], want[i]);
});

/**
 * Conv2D with the tile `tileFor` gives for Cout, on texture operands (what a variant of `auto`
 * runs).
 */
function tiledConv2D(tileFor: (cout: number) => ConvTile) {
  return <T>(f: () => Promise<T>): Promise<T> =>
    withKernelVariant("Conv2D", ({ inputs, attrs, backend }) => {
      const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
      const a = attrs as Conv2DAttrs;
      if (!conv2DGemmSupports(x, filter, a)) return null;
      return conv2DGemm(x, filter, a, backend as WebGPUBackend, tileFor(filter.shape[3]), true);
    }, f);
}

/** Conv2D with its positions tiled in the given order (`ConvTile.batchInner`). */
function orderedConv2D(batchInner: boolean) {
  return tiledConv2D((cout) => ({ ...conv2DTextureTile(cout), batchInner }));
}

for (const c of CONV_CASES) {
  for (const batchInner of [true, false]) {
    Deno.test(`Conv2D, batch-inner order ${batchInner}, matches the cpu backend: ${c.name}`, async () => {
      await useWebGPU();
      const inputs = { x: hostInput(c.x, 5), filter: hostInput([c.k, c.k, c.x[3], c.cout], 6) };
      const attrs = conv2DAttrs(c.stride, c.pad);
      const got = await orderedConv2D(batchInner)(() => runOnWebGPU("Conv2D", inputs, attrs));
      assertClose(got, await runOnCpu("Conv2D", inputs, attrs));
    });
  }
}

// Batch 16 on 2×2 and 4×4 maps: in (n, oy, ox) order a 16-position tile spans several images
// and every position, so it visits all 9 taps; in batch-inner order a tile is one (oy, ox) and
// skips the taps in the padding (5 of 9 at the corners). Skipped taps would only have added
// exact zeros, so the two must agree to the bit.
for (
  const [x, cout, stride] of [
    [[16, 2, 2, 256], 512, 1],
    [[16, 4, 4, 128], 256, 1],
    [[16, 4, 4, 256], 512, 2],
    [[5, 3, 3, 64], 64, 1], // tiles span 2–3 positions of 5 images
  ] as [[number, number, number, number], number, number][]
) {
  Deno.test(`Conv2D skips padding taps without changing a bit: ${x.join("x")} s${stride}`, async () => {
    await useWebGPU();
    const inputs = { x: hostInput(x, 11), filter: hostInput([3, 3, x[3], cout], 12) };
    const attrs = conv2DAttrs(stride, 1);
    const skipping = await orderedConv2D(true)(() => runOnWebGPU("Conv2D", inputs, attrs));
    const allTaps = await orderedConv2D(false)(() => runOnWebGPU("Conv2D", inputs, attrs));
    assertEquals(skipping, allTaps);
    assertClose(skipping, await runOnCpu("Conv2D", inputs, attrs));
  });
}

// The generic tile (first use: the position order a uniform, the stem on the general tap loop)
// must compute exactly what the specialised programs of the same tile compute.
for (const c of CONV_CASES) {
  Deno.test(`Conv2D, generic tile equals the specialised one to the bit: ${c.name}`, async () => {
    await useWebGPU();
    const inputs = { x: hostInput(c.x, 5), filter: hostInput([c.k, c.k, c.x[3], c.cout], 6) };
    const attrs = conv2DAttrs(c.stride, c.pad);
    const generic = await tiledConv2D(() => ({ tm: 4, tc: 2, generic: true }))(() =>
      runOnWebGPU("Conv2D", inputs, attrs)
    );
    const specialised = await tiledConv2D(() => ({ tm: 4, tc: 2 }))(() =>
      runOnWebGPU("Conv2D", inputs, attrs)
    );
    assertEquals(generic, specialised);
    assertClose(generic, await runOnCpu("Conv2D", inputs, attrs));
  });
}

Deno.test("Conv2D, generic tile: the stem and both position orders share one pipeline", async () => {
  await useWebGPU();
  const backend = tf.backend() as unknown as { pipelineCache: Record<string, unknown> };
  // The stem (padded), a large map ((n, oy, ox) order) and a 2×2 map (batch-inner order).
  const cases: [number[], number[], number][] = [
    [[2, 32, 32, 3], [7, 7, 3, 64], 2],
    [[2, 16, 16, 64], [3, 3, 64, 64], 1],
    [[4, 2, 2, 64], [3, 3, 64, 64], 1],
  ];
  await tiledConv2D(() => ({ tm: 4, tc: 2, generic: true }))(async () => {
    for (const [x, w, stride] of cases) {
      const attrs = conv2DAttrs(stride, "same");
      await runOnWebGPU("Conv2D", { x: hostInput(x, 1), filter: hostInput(w, 2) }, attrs);
    }
  });
  const generic = Object.keys(backend.pipelineCache)
    .filter((k) => k.startsWith("webtuneConv2DGemm_4_2_generic"));
  assertEquals(generic.length, 1, `generic pipelines: ${generic.join(", ")}`);
});

// Cin < 4 (the stem's 3): x is padded to 4 channels by webtune's own pass and the zero lanes are
// not multiplied. Both only leave out exact zeros, so the conv must agree to the bit with the same
// conv on x and W zero-padded to 4 channels beforehand (which multiplies every lane), and with the
// cpu backend within the usual bound.
for (const cin of [1, 2, 3]) {
  for (const [size, stride, k] of [[32, 2, 7], [33, 2, 7], [9, 1, 3]]) {
    Deno.test(`Conv2D on ${cin} channels (zero lanes skipped) equals the conv of x padded to 4: ${size}px ${k}x${k}/${stride}`, async () => {
      await useWebGPU();
      const pad = (k - 1) >> 1;
      const x = hostInput([2, size, size, cin], 13), filter = hostInput([k, k, cin, 64], 14);
      const attrs = conv2DAttrs(stride, pad);
      const got = await runOnWebGPU("Conv2D", { x, filter }, attrs);
      // x's channels are its last axis; W's input channels are followed by 64 output channels.
      const padTo4 = (h: typeof x, axis: number, inner: number) => {
        const shape = h.shape.map((d, i) => i === axis ? 4 : d);
        const data = new Float32Array(h.data.length / cin * 4);
        for (let i = 0; i < h.data.length; i++) {
          const outer = Math.floor(i / (cin * inner)), rest = i % (cin * inner);
          data[outer * 4 * inner + rest] = h.data[i];
        }
        return { data, shape };
      };
      const x4 = padTo4(x, 3, 1), filter4 = padTo4(filter, 2, 64);
      const allLanes = await runOnWebGPU("Conv2D", { x: x4, filter: filter4 }, attrs);
      assertEquals(got, allLanes);
      assertClose(got, await runOnCpu("Conv2D", { x, filter }, attrs));
    });
  }
}
