import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals } from "@std/assert";
import {
  assertClose,
  dyShape,
  hostInput,
  padAttr,
  runOnCpu,
  runOnWebGPU,
  useWebGPU,
  WINOGRAD_CASES,
  withKernelVariant,
} from "./kernel_test_util.ts";
import type { Conv2DAttrs } from "./conv2d.ts";
import type { Conv2DBackpropInputAttrs } from "./conv2d_backprop_input.ts";
import {
  conv2DBackpropInputWinograd,
  conv2DWinograd,
  conv2DWinogradFits,
  conv2DWinogradPreferred,
  conv2DWinogradSupports,
  derInputWinogradFits,
  derInputWinogradPreferred,
  derInputWinogradSupports,
  winogradFilterTransform,
} from "./conv2d_winograd.ts";

/** Conv2D by Winograd where it applies, in place of the registered kernel. */
function winogradConv2D<T>(kind: true | "sampled", f: () => Promise<T>): Promise<T> {
  return withKernelVariant("Conv2D", ({ inputs, attrs, backend }) => {
    const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const a = attrs as Conv2DAttrs;
    const be = backend as WebGPUBackend;
    if (!conv2DWinogradSupports(x, filter, a) || !conv2DWinogradFits(x, filter, a, be)) {
      return null;
    }
    return conv2DWinograd(x, filter, a, be, undefined, kind);
  }, f);
}

/** dX by Winograd where it applies, in place of the registered kernel. */
function winogradDerInput<T>(kind: true | "sampled", f: () => Promise<T>): Promise<T> {
  return withKernelVariant("Conv2DBackpropInput", ({ inputs, attrs, backend }) => {
    const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const a = attrs as Conv2DBackpropInputAttrs;
    const be = backend as WebGPUBackend;
    if (!derInputWinogradSupports(dy, filter, a) || !derInputWinogradFits(dy, filter, a, be)) {
      return null;
    }
    return conv2DBackpropInputWinograd(dy, filter, a, be, undefined, kind);
  }, f);
}

for (const c of WINOGRAD_CASES) {
  for (const kind of [true, "sampled"] as const) {
    const label = kind === true ? "" : " with sampled-texture operands";
    Deno.test(`Conv2D by Winograd${label} matches the cpu backend: ${c.name}`, async () => {
      await useWebGPU();
      const inputs = {
        x: hostInput([...c.x], 5),
        filter: hostInput([c.k, c.k, c.x[3], c.cout], 6),
      };
      const attrs = {
        strides: [c.stride, c.stride],
        pad: padAttr(c.pad),
        dataFormat: "NHWC",
        dilations: [1, 1],
      };
      const got = await winogradConv2D(kind, () => runOnWebGPU("Conv2D", inputs, attrs));
      assertClose(got, await runOnCpu("Conv2D", inputs, attrs));
    });
  }
}

for (const c of WINOGRAD_CASES) {
  for (const kind of [true, "sampled"] as const) {
    const label = kind === true ? "" : " with sampled-texture operands";
    Deno.test(`dX by Winograd${label} matches the cpu backend: ${c.name}`, async () => {
      await useWebGPU();
      const inputs = {
        dy: hostInput(dyShape({ ...c, x: [...c.x] }), 7),
        filter: hostInput([c.k, c.k, c.x[3], c.cout], 8),
      };
      const attrs = {
        strides: [c.stride, c.stride],
        pad: padAttr(c.pad),
        dataFormat: "NHWC",
        inputShape: [...c.x],
      };
      const got = await winogradDerInput(
        kind,
        () => runOnWebGPU("Conv2DBackpropInput", inputs, attrs),
      );
      assertClose(got, await runOnCpu("Conv2DBackpropInput", inputs, attrs));
    });
  }
}

Deno.test("Winograd filter transform is G g Gᵀ (float64 reference)", async () => {
  await useWebGPU();
  const [cin, cout] = [4, 8];
  const w = hostInput([3, 3, cin, cout], 11);
  const backend = tf.backend() as WebGPUBackend;
  const input = tf.tensor(w.data, w.shape);
  const info = backend.makeTensorInfo(w.shape, "float32", w.data);
  const u = winogradFilterTransform(info, backend);
  const got = await backend.read(u.dataId) as Float32Array;
  backend.disposeData(u.dataId);
  backend.disposeData(info.dataId);
  input.dispose();
  const G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]];
  assertEquals(got.length, 16 * cin * cout);
  for (let ci = 0; ci < cin; ci++) {
    for (let co = 0; co < cout; co++) {
      for (let a = 0; a < 4; a++) {
        for (let b = 0; b < 4; b++) {
          let want = 0;
          for (let r = 0; r < 3; r++) {
            for (let s = 0; s < 3; s++) {
              want += G[a][r] * w.data[((r * 3 + s) * cin + ci) * cout + co] * G[b][s];
            }
          }
          const at = ((a * 4 + b) * cin + ci) * cout + co;
          assert(Math.abs(got[at] - want) <= 1e-6, `U[${a}${b}] ${got[at]} vs ${want}`);
        }
      }
    }
  }
});

Deno.test("conv2DWinogradSupports: only 3x3 stride-1 undilated NHWC", () => {
  const t = (shape: number[]) => ({ shape, dtype: "float32", dataId: {} }) as tf.TensorInfo;
  const x = t([1, 8, 8, 16]);
  const attrs: Conv2DAttrs = { strides: 1, pad: 1 as unknown as "same", dataFormat: "NHWC" };
  assert(conv2DWinogradSupports(x, t([3, 3, 16, 16]), attrs));
  assert(!conv2DWinogradSupports(x, t([3, 3, 16, 16]), { ...attrs, strides: 2 }));
  assert(!conv2DWinogradSupports(x, t([3, 3, 16, 16]), { ...attrs, dilations: 2 }));
  assert(!conv2DWinogradSupports(x, t([1, 1, 16, 16]), attrs));
  assert(!conv2DWinogradSupports(t([1, 8, 8, 3]), t([3, 3, 3, 16]), attrs));
});

Deno.test("conv2DWinogradPreferred: Cout ≥ 128 (the numerics gate) and ≥ 256 output tiles", () => {
  const t = (shape: number[]) => ({ shape, dtype: "float32", dataId: {} }) as tf.TensorInfo;
  const attrs: Conv2DAttrs = { strides: 1, pad: 1 as unknown as "same", dataFormat: "NHWC" };
  const w = (cin: number, cout: number) => t([3, 3, cin, cout]);
  assert(conv2DWinogradPreferred(t([16, 8, 8, 128]), w(128, 128), attrs)); // 256 tiles
  assert(!conv2DWinogradPreferred(t([15, 8, 8, 128]), w(128, 128), attrs)); // 240 tiles
  assert(!conv2DWinogradPreferred(t([16, 16, 16, 64]), w(64, 64), attrs)); // Cout 64
  assert(conv2DWinogradPreferred(t([16, 7, 7, 512]), w(512, 512), attrs)); // 16 · 4 · 4 tiles
  assert(!conv2DWinogradPreferred(t([16, 8, 8, 128]), w(128, 128), { ...attrs, strides: 2 }));
});

Deno.test("derInputWinogradPreferred: Cin ≥ 128 (dX's output channels) and ≥ 64 tiles of x", () => {
  const t = (shape: number[]) => ({ shape, dtype: "float32", dataId: {} }) as tf.TensorInfo;
  const attrs = (x: number[], strides = 1): Conv2DBackpropInputAttrs => ({
    inputShape: x as [number, number, number, number],
    strides,
    pad: [[0, 0], [1, 1], [1, 1], [0, 0]],
    dataFormat: "NHWC",
  });
  const w = (cin: number, cout: number) => t([3, 3, cin, cout]);
  const dy = (x: number[], cout: number) => t([...x.slice(0, 3), cout]);
  const x = [16, 4, 4, 256]; // 64 tiles
  assert(derInputWinogradPreferred(dy(x, 256), w(256, 256), attrs(x)));
  assert(!derInputWinogradPreferred(dy([15, 4, 4, 256], 256), w(256, 256), attrs([15, 4, 4, 256])));
  assert(!derInputWinogradPreferred(dy([16, 16, 16, 64], 64), w(64, 64), attrs([16, 16, 16, 64])));
  assert(!derInputWinogradPreferred(t([16, 2, 2, 256]), w(256, 256), attrs(x, 2)));
});
