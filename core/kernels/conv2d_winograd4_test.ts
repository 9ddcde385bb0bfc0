import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals } from "@std/assert";
import {
  assertClose,
  conv2DAttrs,
  hostInput,
  runOnCpu,
  useWebGPU,
  WINOGRAD_CASES,
} from "./kernel_test_util.ts";
import type { Conv2DAttrs } from "./conv2d.ts";
import { conv2DWinograd } from "./conv2d_winograd.ts";
import {
  conv2DWinograd4,
  conv2DWinograd4Preferred,
  WINOGRAD4_MIN_MAP,
  WINOGRAD4_MIN_TILES,
  winograd4FilterTransform,
  winograd4FilterWanted,
  XI4,
} from "./conv2d_winograd4.ts";

/** conv(x, w) by F(4×4, 3×3) (U made first, as a fold does), read back. */
async function winograd4(
  x: { data: Float32Array; shape: number[] },
  w: { data: Float32Array; shape: number[] },
  attrs: Conv2DAttrs,
  epilogue?: { bias: Float32Array; residual?: Float32Array; relu: boolean },
  kind: true | "sampled" = true,
): Promise<Float32Array> {
  const backend = tf.backend() as WebGPUBackend;
  const xInfo = backend.makeTensorInfo(x.shape, "float32", x.data);
  const wInfo = backend.makeTensorInfo(w.shape, "float32", w.data);
  const u = winograd4FilterTransform(wInfo, backend, kind);
  const temps = [xInfo, wInfo, u];
  let epi;
  if (epilogue) {
    const bias = backend.makeTensorInfo([w.shape[3]], "float32", epilogue.bias);
    temps.push(bias);
    let residual;
    if (epilogue.residual) {
      const outShape = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        w.shape as [number, number, number, number],
        attrs.strides,
        1,
        attrs.pad,
      ).outShape;
      residual = backend.makeTensorInfo(outShape, "float32", epilogue.residual);
      temps.push(residual);
    }
    epi = { bias, residual, relu: epilogue.relu };
  }
  const y = conv2DWinograd4(xInfo, u, attrs, backend, undefined, kind, epi);
  const got = await backend.read(y.dataId) as Float32Array;
  for (const t of [...temps, y]) backend.disposeData(t.dataId);
  return got;
}

for (const c of WINOGRAD_CASES) {
  for (const kind of [true, "sampled"] as const) {
    const label = kind === true ? "" : " with sampled-texture operands";
    Deno.test(`Conv2D by Winograd F(4x4)${label} matches the cpu backend: ${c.name}`, async () => {
      await useWebGPU();
      const x = hostInput([...c.x], 5), filter = hostInput([c.k, c.k, c.x[3], c.cout], 6);
      const attrs = conv2DAttrs(c.stride, c.pad) as unknown as Conv2DAttrs;
      const got = await winograd4(x, filter, attrs, undefined, kind);
      assertClose(got, await runOnCpu("Conv2D", { x, filter }, attrs as never));
    });
  }
}

Deno.test("Winograd F(4x4) with the folded epilogue: act(conv + bias + residual) on the cpu backend", async () => {
  await useWebGPU();
  // 10×10: the last row and column of 4×4 tiles are half outside the map.
  const x = hostInput([2, 10, 10, 16], 21), filter = hostInput([3, 3, 16, 32], 22);
  const bias = hostInput([32], 23), residual = hostInput([2, 10, 10, 32], 24);
  const attrs = conv2DAttrs(1, 1) as unknown as Conv2DAttrs;
  const got = await winograd4(x, filter, attrs, {
    bias: bias.data,
    residual: residual.data,
    relu: true,
  });
  await tf.setBackend("cpu");
  const want = tf.tidy(() =>
    tf.relu(
      tf.add(
        tf.add(
          tf.conv2d(
            tf.tensor4d(x.data, x.shape as [number, number, number, number]),
            tf.tensor4d(filter.data, filter.shape as [number, number, number, number]),
            1,
            1,
          ),
          tf.tensor1d(bias.data),
        ),
        tf.tensor(residual.data, residual.shape),
      ),
    ).dataSync() as Float32Array
  );
  await tf.setBackend("webgpu");
  assertClose(got, want);
});

Deno.test("Winograd F(4x4) filter transform is G g Gᵀ (float64 reference)", async () => {
  await useWebGPU();
  const [cin, cout] = [4, 8];
  const w = hostInput([3, 3, cin, cout], 11);
  const backend = tf.backend() as WebGPUBackend;
  const info = backend.makeTensorInfo(w.shape, "float32", w.data);
  const u = winograd4FilterTransform(info, backend);
  const got = await backend.read(u.dataId) as Float32Array;
  backend.disposeData(u.dataId);
  backend.disposeData(info.dataId);
  // Lavin & Gray's G for F(4, 3) (points 0, ±1, ±2, ∞).
  const G = [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
  ];
  assertEquals(got.length, XI4 * cin * cout);
  for (let ci = 0; ci < cin; ci++) {
    for (let co = 0; co < cout; co++) {
      for (let a = 0; a < 6; a++) {
        for (let b = 0; b < 6; b++) {
          let want = 0;
          for (let r = 0; r < 3; r++) {
            for (let s = 0; s < 3; s++) {
              want += G[a][r] * w.data[((r * 3 + s) * cin + ci) * cout + co] * G[b][s];
            }
          }
          const at = ((a * 6 + b) * cin + ci) * cout + co;
          assert(Math.abs(got[at] - want) <= 1e-6, `U[${a}${b}] ${got[at]} vs ${want}`);
        }
      }
    }
  }
});

Deno.test("Winograd F(4x4) stays within 20× F(2x2)'s error against a float64 conv (ResNet layer1 shape)", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  const [hw, c] = [16, 64];
  // x = ReLU(N(0, 1))-like and Kaiming-scaled weights, as a block's convs see them.
  const xRaw = hostInput([1, hw, hw, c], 31), wRaw = hostInput([3, 3, c, c], 32);
  const x = { ...xRaw, data: xRaw.data.map((v) => Math.max(v, 0)) };
  const w = { ...wRaw, data: wRaw.data.map((v) => v * Math.sqrt(6 / (9 * c))) };
  const want = new Float64Array(hw * hw * c);
  for (let oy = 0; oy < hw; oy++) {
    for (let ox = 0; ox < hw; ox++) {
      for (let r = 0; r < 3; r++) {
        for (let s = 0; s < 3; s++) {
          const iy = oy + r - 1, ix = ox + s - 1;
          if (iy < 0 || iy >= hw || ix < 0 || ix >= hw) continue;
          for (let ci = 0; ci < c; ci++) {
            const xv = x.data[(iy * hw + ix) * c + ci];
            for (let co = 0; co < c; co++) {
              want[(oy * hw + ox) * c + co] += xv * w.data[((r * 3 + s) * c + ci) * c + co];
            }
          }
        }
      }
    }
  }
  const relError = (got: Float32Array) => {
    let maxAbs = 0, maxErr = 0;
    for (let i = 0; i < want.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(want[i]));
      maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]));
    }
    return maxErr / maxAbs;
  };
  const attrs = conv2DAttrs(1, 1) as unknown as Conv2DAttrs;
  const four = relError(await winograd4(x, w, attrs));
  const xInfo = backend.makeTensorInfo(x.shape, "float32", x.data);
  const wInfo = backend.makeTensorInfo(w.shape, "float32", w.data);
  const y2 = conv2DWinograd(xInfo, wInfo, attrs, backend);
  const two = relError(await backend.read(y2.dataId) as Float32Array);
  for (const t of [xInfo, wInfo, y2]) backend.disposeData(t.dataId);
  // Measured: F(4×4) 3.6e-6, F(2×2) 2.6e-7 (cli/bench_winograd.ts --error-only, 64 px layer1).
  assert(four < 1e-5, `F(4x4) relative error ${four.toExponential(2)}`);
  assert(four < 20 * Math.max(two, 1e-7), `F(4x4) ${four.toExponential(2)}, F(2x2) ${two}`);
});

Deno.test("conv2DWinograd4Preferred: U [36, Cin, Cout] given, ≥ 16 tiles, maps ≥ 4×4", () => {
  const backend = { device: { limits: { maxTextureDimension2D: 8192 } } } as never;
  const t = (shape: number[]) => ({ shape, dtype: "float32", dataId: {} }) as tf.TensorInfo;
  const attrs: Conv2DAttrs = { strides: 1, pad: 1 as unknown as "same", dataFormat: "NHWC" };
  const w = t([3, 3, 64, 64]), u = t([XI4, 64, 64]);
  assertEquals([WINOGRAD4_MIN_TILES, WINOGRAD4_MIN_MAP], [16, 4]);
  assert(conv2DWinograd4Preferred(t([16, 4, 4, 64]), w, u, attrs, backend)); // 16 tiles
  assert(!conv2DWinograd4Preferred(t([15, 4, 4, 64]), w, u, attrs, backend)); // 15 tiles
  assert(!conv2DWinograd4Preferred(t([64, 2, 2, 64]), w, u, attrs, backend)); // 2×2 maps
  assert(!conv2DWinograd4Preferred(t([16, 4, 4, 64]), w, undefined, attrs, backend)); // no U
  assert(!conv2DWinograd4Preferred(t([16, 4, 4, 64]), w, t([16, 64, 64]), attrs, backend));
  assert(!conv2DWinograd4Preferred(t([16, 8, 8, 64]), w, u, { ...attrs, strides: 2 }, backend));
  assert(winograd4FilterWanted(w, attrs, backend));
  assert(!winograd4FilterWanted(t([1, 1, 64, 64]), attrs, backend));
  assert(!winograd4FilterWanted(w, { ...attrs, strides: 2 }, backend));
});
