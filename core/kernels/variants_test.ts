import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals } from "@std/assert";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  assertClose,
  CONV_CASES,
  type ConvCase,
  dyShape,
  type HostInput,
  hostInput,
  padAttr,
  runOnCpu,
  useWebGPU,
} from "./kernel_test_util.ts";
import {
  atBatch,
  callSpec,
  KERNEL_FAMILIES,
  shapeKey,
  shapeLabel,
  timingBatch,
  TRANSFORMED_FILTER_INPUT,
  type TunedKernel,
} from "./variants.ts";

/** A call of `family` for conv case `c`: inputs and attrs as tfjs passes them. */
function call(
  family: TunedKernel,
  c: ConvCase,
): { inputs: Record<string, HostInput>; attrs: Record<string, unknown> } {
  const filterShape = [c.k, c.k, c.x[3], c.cout];
  const base = { strides: [c.stride, c.stride], pad: padAttr(c.pad), dataFormat: "NHWC" };
  switch (family) {
    case "Conv2D":
      return {
        inputs: { x: hostInput(c.x, 1), filter: hostInput(filterShape, 2) },
        attrs: { ...base, dilations: [1, 1] },
      };
    case "Conv2DBackpropInput":
      return {
        inputs: { dy: hostInput(dyShape(c), 3), filter: hostInput(filterShape, 4) },
        attrs: { ...base, inputShape: c.x },
      };
    case "Conv2DBackpropFilter":
      return {
        inputs: { x: hostInput(c.x, 5), dy: hostInput(dyShape(c), 6) },
        attrs: { ...base, filterShape },
      };
  }
}

/** Runs one variant directly on webgpu; returns its output and frees everything. */
async function runVariant(
  family: TunedKernel,
  name: string,
  inputs: Record<string, HostInput>,
  attrs: Record<string, unknown>,
): Promise<Float32Array | undefined> {
  const backend = tf.backend() as WebGPUBackend;
  const tensors: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) tensors[k] = tf.tensor(v.data, v.shape);
  const args = { inputs: tensors, attrs: attrs as tf.NamedAttrMap, backend };
  const variant = KERNEL_FAMILIES[family].variants.find((v) => v.name === name)!;
  try {
    if (!variant.supports(args)) return undefined;
    const out = variant.run!(args);
    const data = await backend.read(out.dataId) as Float32Array;
    backend.disposeData(out.dataId);
    return data;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

// The stem, a strided 3×3, a 1×1 downsample, and a channel count that pads dW's rows.
const CASES = CONV_CASES.filter((c) =>
  ["stem 7x7/2 pad 3, 3 channels", "3x3/2 pad 1, odd 9", "1x1/2 pad 0 downsample"]
    .includes(c.name) || c.name.startsWith("12 channels")
);
/**
 * 3×3 stride-1 convs the Winograd variants take, by family (one with odd sizes each): the
 * forward's (Cout ≥ 128, ≥ 256 output tiles), dX's (Cin ≥ 128, ≥ 64 tiles of x) and dW's (Cin
 * and Cout ≥ 128, ≥ 64 tiles of dy).
 */
const WINOGRAD_CASES: Partial<Record<TunedKernel, ConvCase[]>> = {
  Conv2D: [
    { name: "3x3/1 Cout 128, 256 tiles", x: [1, 32, 32, 8], k: 3, cout: 128, stride: 1, pad: 1 },
    { name: "3x3/1 Cout 128, 31x33", x: [1, 31, 33, 8], k: 3, cout: 128, stride: 1, pad: 1 },
  ],
  Conv2DBackpropInput: [
    { name: "3x3/1 Cin 128, 64 tiles", x: [1, 16, 16, 128], k: 3, cout: 8, stride: 1, pad: 1 },
    { name: "3x3/1 Cin 128, 15x17", x: [1, 15, 17, 128], k: 3, cout: 8, stride: 1, pad: 1 },
  ],
  Conv2DBackpropFilter: [
    { name: "3x3/1 128, 64 tiles", x: [1, 16, 16, 128], k: 3, cout: 128, stride: 1, pad: 1 },
    { name: "3x3/1 128, 15x17", x: [1, 15, 17, 128], k: 3, cout: 128, stride: 1, pad: 1 },
  ],
};

for (const family of Object.keys(KERNEL_FAMILIES) as TunedKernel[]) {
  for (const variant of KERNEL_FAMILIES[family].variants) {
    if (!variant.run) continue; // stock: tfjs's own kernel
    Deno.test(`${family} variant ${variant.name} matches the cpu backend`, async () => {
      await useWebGPU();
      let ran = 0;
      for (const c of [...CASES, ...WINOGRAD_CASES[family] ?? []]) {
        const { inputs, attrs } = call(family, c);
        const got = await runVariant(family, variant.name, inputs, attrs);
        if (!got) continue;
        ran++;
        assertClose(got, await runOnCpu(family, inputs, attrs));
      }
      assert(ran >= 2, `${variant.name} supported only ${ran} of the cases`);
    });
  }
}

Deno.test("every family lists stock first, and its default and first-use variants among them", () => {
  for (const family of Object.values(KERNEL_FAMILIES)) {
    const names = family.variants.map((v) => v.name);
    assertEquals(names[0], "stock");
    assert(names.includes(family.defaultVariant), family.name);
    assert(names.includes(family.firstUseVariant), family.name);
    assert(names.length >= 3, `${family.name}: stock, fast and an alternative`);
    assertEquals(new Set(names).size, names.length);
  }
});

Deno.test("shape keys tell calls apart; labels and timing batches follow the conv", () => {
  const family = KERNEL_FAMILIES.Conv2D;
  const spec = (x: number[], stride: number) =>
    callSpec(family, {
      inputs: {
        x: { dataId: {}, shape: x, dtype: "float32" },
        filter: { dataId: {}, shape: [3, 3, 64, 128], dtype: "float32" },
      },
      backend: undefined,
      attrs: { strides: [stride, stride], pad: "same", dataFormat: "NHWC", dilations: [1, 1] },
    });
  const a = spec([16, 16, 16, 64], 2);
  assertEquals(shapeLabel(family, a), "Conv2D 16x16x16x64→128 k3s2");
  const keys = new Set(
    [a, spec([16, 16, 16, 64], 1), spec([8, 16, 16, 64], 2)].map((s) => shapeKey(family, s)),
  );
  assertEquals(keys.size, 3);
  // 2·8·8·3·3·64·128 = 9.4 MFLOP per image: 5 images stay under 50 MFLOP.
  assertEquals(timingBatch(family, a), 5);
  const conv = (x: number[], cin: number, cout: number) =>
    callSpec(family, {
      inputs: {
        x: { dataId: {}, shape: x, dtype: "float32" },
        filter: { dataId: {}, shape: [3, 3, cin, cout], dtype: "float32" },
      },
      backend: undefined,
      attrs: { strides: 1, pad: 1, dataFormat: "NHWC", dilations: [1, 1] },
    });
  // layer1 at 224 px: 231 MFLOP per image, over the cap alone; 3136 positions fill any tile.
  assertEquals(timingBatch(family, conv([16, 56, 56, 64], 64, 64)), 1);
  // layer4 at 64 px: 18.9 MFLOP but 4 positions per image; batch 2 would leave a 32-position
  // tile 3/4 idle, so it is timed with 32 images' positions (here all 16).
  assertEquals(timingBatch(family, conv([16, 2, 2, 512], 512, 512)), 16);
  assertEquals(timingBatch(family, conv([64, 2, 2, 512], 512, 512)), 32);
  assertEquals(atBatch(a, 5).inputs, { x: [5, 16, 16, 64], filter: [3, 3, 64, 128] });
  // A folded eval conv that brings its filter's Winograd transform: its own key and label, and
  // the transform, like the filter, keeps its shape at any batch.
  const withU = {
    inputs: { ...a.inputs, [TRANSFORMED_FILTER_INPUT]: [16, 64, 128] },
    attrs: a.attrs,
  };
  assertEquals(shapeLabel(family, withU), "Conv2D 16x16x16x64→128 k3s2 U given");
  assertEquals(shapeKey(family, withU) === shapeKey(family, a), false);
  assertEquals(atBatch(withU, 5).inputs[TRANSFORMED_FILTER_INPUT], [16, 64, 128]);
  const dx = atBatch(
    { inputs: { dy: [16, 8, 8, 128] }, attrs: { inputShape: [16, 16, 16, 64] } },
    2,
  );
  assertEquals(dx, { inputs: { dy: [2, 8, 8, 128] }, attrs: { inputShape: [2, 16, 16, 64] } });
});
