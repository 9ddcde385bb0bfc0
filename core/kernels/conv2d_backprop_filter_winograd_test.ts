import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  assertClose,
  type ConvCase,
  dyShape,
  hostInput,
  padAttr,
  runOnCpu,
  runOnWebGPU,
  useWebGPU,
  WINOGRAD_CASES,
  withKernelVariant,
} from "./kernel_test_util.ts";
import type { Conv2DBackpropFilterAttrs } from "./conv2d_backprop_filter.ts";
import { LOOP_STEP_BUDGET } from "./conv2d_backprop_filter.ts";
import {
  conv2DBackpropFilterWinograd,
  derFilterWinogradFits,
  derFilterWinogradPreferred,
  derFilterWinogradSplits,
  derFilterWinogradSupports,
} from "./conv2d_backprop_filter_winograd.ts";

/** dW by Winograd where it applies, in place of the registered kernel. */
function winogradDerFilter<T>(kind: true | "sampled", f: () => Promise<T>): Promise<T> {
  return withKernelVariant("Conv2DBackpropFilter", ({ inputs, attrs, backend }) => {
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const a = attrs as Conv2DBackpropFilterAttrs;
    const be = backend as WebGPUBackend;
    if (!derFilterWinogradSupports(x, dy, a) || !derFilterWinogradFits(x, dy, a, be)) {
      throw new Error(`Winograd dW does not take ${x.shape} → ${dy.shape}`);
    }
    return conv2DBackpropFilterWinograd(x, dy, a, be, undefined, kind);
  }, f);
}

const CASES: ConvCase[] = [
  ...WINOGRAD_CASES,
  { name: "3x3/1 pad 1, 256 → 128", x: [2, 6, 6, 256], k: 3, cout: 128, stride: 1, pad: 1 },
];

for (const c of CASES) {
  for (const kind of [true, "sampled"] as const) {
    const label = kind === true ? "" : " with sampled-texture operands";
    Deno.test(`dW by Winograd${label} matches the cpu backend: ${c.name}`, async () => {
      await useWebGPU();
      const filterShape = [c.k, c.k, c.x[3], c.cout];
      const inputs = {
        x: hostInput([...c.x], 1),
        dy: hostInput(dyShape({ ...c, x: [...c.x] }), 2),
      };
      const attrs = {
        strides: [c.stride, c.stride],
        pad: padAttr(c.pad),
        dataFormat: "NHWC",
        filterShape,
      };
      const got = await winogradDerFilter(
        kind,
        () => runOnWebGPU("Conv2DBackpropFilter", inputs, attrs),
      );
      assertClose(got, await runOnCpu("Conv2DBackpropFilter", inputs, attrs));
    });
  }
}

/** dW[ky, kx, ci, co] = Σ x[n, y + ky − 1, x + kx − 1, ci] · dy[n, y, x, co], pad 1, in float64. */
function referenceDw(
  x: Float32Array,
  dy: Float32Array,
  [n, h, w, cin]: number[],
  cout: number,
): Float64Array {
  const dw = new Float64Array(9 * cin * cout);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < h; oy++) {
      for (let ox = 0; ox < w; ox++) {
        for (let ky = 0; ky < 3; ky++) {
          const iy = oy + ky - 1;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < 3; kx++) {
            const ix = ox + kx - 1;
            if (ix < 0 || ix >= w) continue;
            for (let ci = 0; ci < cin; ci++) {
              const xv = x[((b * h + iy) * w + ix) * cin + ci];
              for (let co = 0; co < cout; co++) {
                dw[((ky * 3 + kx) * cin + ci) * cout + co] += xv *
                  dy[((b * h + oy) * w + ox) * cout + co];
              }
            }
          }
        }
      }
    }
  }
  return dw;
}

Deno.test("dW by Winograd: its transforms are exact (float64 reference, 1e-6 of the largest value)", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  // Odd sizes (partial tiles) and a batch of 2; sums of 2 · 7 · 5 products are exact to ~1e-7.
  const shape = [2, 7, 5, 8], cout = 8;
  const x = hostInput(shape, 3), dy = hostInput([...shape.slice(0, 3), cout], 4);
  const xi = backend.makeTensorInfo(shape, "float32", x.data);
  const dyi = backend.makeTensorInfo([...shape.slice(0, 3), cout], "float32", dy.data);
  const attrs: Conv2DBackpropFilterAttrs = {
    strides: 1,
    pad: [[0, 0], [1, 1], [1, 1], [0, 0]],
    dataFormat: "NHWC",
    filterShape: [3, 3, shape[3], cout],
  };
  const out = conv2DBackpropFilterWinograd(xi, dyi, attrs, backend);
  const got = await backend.read(out.dataId) as Float32Array;
  for (const t of [out, xi, dyi]) backend.disposeData(t.dataId);
  const want = referenceDw(x.data, dy.data, shape, cout);
  assertEquals(got.length, want.length);
  const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (let i = 0; i < want.length; i++) {
    assert(Math.abs(got[i] - want[i]) <= 1e-6 * scale, `dW[${i}] ${got[i]} vs ${want[i]}`);
  }
});

Deno.test("derFilterWinogradSplits: within llvmpipe's loop budget, no empty split", () => {
  const tile = { tk: 16, tc: 4 };
  // Enough workgroups already: one split.
  assertEquals(derFilterWinogradSplits(3136, 128, 128, tile), 1);
  // Batch 128 at 224 px, layer1's map: 100,352 tiles, past the budget in one split.
  const tiles = 128 * 28 * 28;
  const splits = derFilterWinogradSplits(tiles, 128, 128, tile);
  const per = Math.ceil(tiles / splits);
  assert(per < LOOP_STEP_BUDGET, `${per} steps`);
  assert((splits - 1) * per < tiles, "an empty split");
  // Few workgroups: split for the cores (how far is a tuning choice; that it splits is the rule).
  assert(derFilterWinogradSplits(100, 16, 16, tile) > 1, "no split for 16 × 16 channels");
  assertThrows(() => derFilterWinogradSplits(2 ** 31, 512, 512, tile));
});

Deno.test("derFilterWinogradPreferred: 3x3 stride 1, Cin and Cout ≥ 128, ≥ 64 tiles", () => {
  const t = (shape: number[]) => ({ shape, dtype: "float32", dataId: {} }) as tf.TensorInfo;
  const attrs = (cin: number, cout: number, strides = 1): Conv2DBackpropFilterAttrs => ({
    strides,
    pad: [[0, 0], [1, 1], [1, 1], [0, 0]],
    dataFormat: "NHWC",
    filterShape: [3, 3, cin, cout],
  });
  const dy = (x: number[], cout: number) => t([...x.slice(0, 3), cout]);
  const x = [16, 4, 4, 256]; // 64 tiles
  assert(derFilterWinogradPreferred(t(x), dy(x, 256), attrs(256, 256)));
  assert(!derFilterWinogradPreferred(t([15, 4, 4, 256]), dy([15, 4, 4], 256), attrs(256, 256)));
  assert(!derFilterWinogradPreferred(t([16, 16, 16, 64]), dy(x, 64), attrs(64, 64)));
  assert(!derFilterWinogradPreferred(t([16, 16, 16, 64]), dy(x, 128), attrs(64, 128)));
  assert(!derFilterWinogradPreferred(t(x), t([16, 2, 2, 256]), attrs(256, 256, 2)));
  const oneByOne = { ...attrs(256, 256), filterShape: [1, 1, 256, 256] as [1, 1, 256, 256] };
  assert(!derFilterWinogradPreferred(t(x), dy(x, 256), oneByOne));
});
