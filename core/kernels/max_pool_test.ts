import * as tf from "@tensorflow/tfjs-core";
import { assertEquals } from "@std/assert";
import {
  assertClose,
  type HostInput,
  hostInput,
  runOnCpu,
  runOnWebGPU,
  useWebGPU,
} from "./kernel_test_util.ts";

interface PoolCase {
  name: string;
  shape: number[];
  filterSize: number;
  strides: number;
  pad: number | "same" | "valid";
}

const CASES: PoolCase[] = [
  // ResNet's stem pool; [2,33,33,16] is read from textures (≥ MIN_TEXTURE_FLOATS), odd size.
  { name: "3×3/2 pad 1", shape: [2, 9, 9, 4], filterSize: 3, strides: 2, pad: 1 },
  { name: "3×3/2 pad 1, textures", shape: [2, 33, 33, 16], filterSize: 3, strides: 2, pad: 1 },
  { name: "2×2/2 valid", shape: [2, 8, 7, 8], filterSize: 2, strides: 2, pad: "valid" },
  { name: "3×3/1 same", shape: [1, 6, 5, 8], filterSize: 3, strides: 1, pad: "same" },
  { name: "2×2/3 (gaps)", shape: [1, 8, 8, 4], filterSize: 2, strides: 3, pad: 0 },
  // Not ours (3 channels): the stock kernels must still answer.
  { name: "3 channels", shape: [1, 7, 7, 3], filterSize: 3, strides: 2, pad: 1 },
];

function attrsOf(c: PoolCase) {
  return { filterSize: c.filterSize, strides: c.strides, pad: c.pad };
}

function outShape(c: PoolCase): number[] {
  const info = tf.backend_util.computePool2DInfo(
    c.shape as [number, number, number, number],
    c.filterSize,
    c.strides,
    1,
    c.pad,
  );
  return info.outShape;
}

for (const c of CASES) {
  Deno.test(`MaxPool and MaxPoolGrad match the cpu backend (distinct values): ${c.name}`, async () => {
    await useWebGPU();
    // Distinct values (no ties): cpu and PyTorch agree on every window's maximum.
    const x = hostInput(c.shape, 7);
    const attrs = attrsOf(c);
    const y = await runOnWebGPU("MaxPool", { x }, attrs);
    assertClose(y, await runOnCpu("MaxPool", { x }, attrs), 0);
    const grad = {
      dy: hostInput(outShape(c), 8),
      input: x,
      output: { shape: outShape(c), data: y },
    };
    const dx = await runOnWebGPU("MaxPoolGrad", grad, attrs);
    assertClose(dx, await runOnCpu("MaxPoolGrad", grad, attrs), 1e-6);
  });
}

/**
 * PyTorch's `max_pool2d` backward on NHWC data, written plainly: each window's gradient goes to
 * its first maximum in row-major scan order (a NaN wins), never to padding; inputs sum their
 * windows' gradients in output order.
 */
function pytorchMaxPoolGrad(x: HostInput, dy: Float32Array, c: PoolCase): Float32Array {
  const [n, h, w, ch] = x.shape;
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    c.filterSize,
    c.strides,
    1,
    c.pad,
  );
  const { outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;
  const dx = new Float32Array(x.data.length);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let d = 0; d < ch; d++) {
          const y0 = oy * info.strideHeight - info.padInfo.top;
          const x0 = ox * info.strideWidth - info.padInfo.left;
          let best = -Infinity;
          let at = ((b * h + Math.max(y0, 0)) * w + Math.max(x0, 0)) * ch + d;
          for (let iy = Math.max(y0, 0); iy < Math.min(y0 + kh, h); iy++) {
            for (let ix = Math.max(x0, 0); ix < Math.min(x0 + kw, w); ix++) {
              const v = x.data[((b * h + iy) * w + ix) * ch + d];
              if (v > best || Number.isNaN(v)) {
                best = v;
                at = ((b * h + iy) * w + ix) * ch + d;
              }
            }
          }
          dx[at] += dy[((b * oh + oy) * ow + ox) * ch + d];
        }
      }
    }
  }
  return dx;
}

Deno.test("MaxPoolGrad gives a window of zeros' gradient to its first in-bounds position", async () => {
  await useWebGPU();
  // 3×3/2 pad 1 over a 3×3 image of zeros: four windows, each starting at a different input.
  const c: PoolCase = { name: "zeros", shape: [1, 3, 3, 4], filterSize: 3, strides: 2, pad: 1 };
  const dy = new Float32Array(16);
  for (let i = 0; i < 16; i++) dy[i] = 1 + Math.floor(i / 4); // window k (row-major): k + 1
  const grad = {
    dy: { shape: [1, 2, 2, 4], data: dy },
    input: { shape: c.shape, data: new Float32Array(36) },
    output: { shape: [1, 2, 2, 4], data: new Float32Array(16) },
  };
  const dx = await runOnWebGPU("MaxPoolGrad", grad, attrsOf(c));
  // Window (0,0) starts at input (0,0), (0,1) at (0,1), (1,0) at (1,0), (1,1) at (1,1).
  const want = [1, 2, 0, 3, 4, 0, 0, 0, 0].flatMap((v) => [v, v, v, v]);
  assertEquals([...dx], want);
});

Deno.test("MaxPoolGrad routes ties to the first maximum, as PyTorch does", async () => {
  await useWebGPU();
  for (const c of CASES.slice(0, 4)) {
    // After a ReLU: about half zeros, the rest from three values, so most windows tie.
    const x = hostInput(c.shape, 11);
    x.data = x.data.map((v) => Math.max(0, Math.round(v * 3) / 3));
    const dy = hostInput(outShape(c), 12);
    const y = await runOnWebGPU("MaxPool", { x }, attrsOf(c));
    const grad = { dy, input: x, output: { shape: outShape(c), data: y } };
    const got = await runOnWebGPU("MaxPoolGrad", grad, attrsOf(c));
    assertClose(got, pytorchMaxPoolGrad(x, dy.data, c), 1e-6);
  }
});
