/**
 * The `eval` forward's conv with its BatchNorm folded in (`CONV_BIAS_ACT_KERNEL`, see
 * models/conv_bn.ts): webgpu's kernel against the same arithmetic as tfjs ops on the cpu
 * backend, and a ResNet-18's folded `eval` logits against its unfolded ones.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals } from "@std/assert";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  CONV_BIAS_ACT_KERNEL,
  convBiasAct,
  createResNet18,
  type FoldedConv,
  FoldedConvCache,
} from "@webtune/models";
import {
  assertClose,
  CONV_CASES,
  dyShape,
  type HostInput,
  hostInput,
  padAttr,
  useWebGPU,
  WINOGRAD_CASES,
} from "./kernel_test_util.ts";
import { conv2DGemm, conv2DTextureTile } from "./conv2d.ts";
import { setKernelMode } from "./mod.ts";
import { conv2DWinograd, conv2DWinogradSupports, WINOGRAD_MIN_TILES } from "./conv2d_winograd.ts";
import {
  conv2DWinograd4,
  WINOGRAD4_MIN_TILES,
  winograd4FilterTransform,
} from "./conv2d_winograd4.ts";
import { lcg } from "../test_util.ts";

const EPILOGUES = [
  { residual: true, relu: true },
  { residual: false, relu: true },
  { residual: false, relu: false },
];

/** convBiasAct on the active backend (webgpu: the kernel; cpu: tfjs ops), read back. */
async function run(
  x: HostInput,
  filter: HostInput,
  bias: HostInput,
  residual: HostInput | undefined,
  stride: number,
  pad: number,
  relu: boolean,
): Promise<Float32Array> {
  const t = (h: HostInput) => tf.tensor(h.data, h.shape);
  const folded = { filter: t(filter), bias: t(bias) } as FoldedConv;
  const xs = t(x) as tf.Tensor4D;
  const res = residual && t(residual) as tf.Tensor4D;
  const y = convBiasAct(xs, folded, stride, pad, { residual: res, relu });
  const data = await y.data() as Float32Array;
  tf.dispose([y, xs, folded.filter, folded.bias, ...(res ? [res] : [])]);
  return data;
}

for (const c of CONV_CASES.filter((c) => typeof c.pad === "number")) {
  for (const e of EPILOGUES) {
    Deno.test(`${CONV_BIAS_ACT_KERNEL} (residual ${e.residual}, relu ${e.relu}) matches the cpu backend: ${c.name}`, async () => {
      await useWebGPU();
      const pad = c.pad as number;
      const x = hostInput(c.x, 21), filter = hostInput([c.k, c.k, c.x[3], c.cout], 22);
      const bias = hostInput([c.cout], 23);
      const residual = e.residual ? hostInput(dyShape(c), 24) : undefined;
      const args = [x, filter, bias, residual, c.stride, pad, e.relu] as const;
      assert(tf.getKernel(CONV_BIAS_ACT_KERNEL, "webgpu"), "the kernel is registered");
      const before = tf.memory().numTensors;
      const got = await run(...args);
      assertEquals(tf.memory().numTensors, before, "tensors leaked");
      await tf.setBackend("cpu");
      const want = await run(...args).finally(() => tf.setBackend("webgpu"));
      assertClose(got, want);
      if (e.relu) assert(want.some((v) => v === 0) && want.some((v) => v > 0), "ReLU tested");
    });
  }
}

Deno.test(`${CONV_BIAS_ACT_KERNEL} falls back to stock Conv2D + tfjs kernels (Cout 6)`, async () => {
  await useWebGPU();
  const x = hostInput([2, 5, 5, 8], 31), filter = hostInput([3, 3, 8, 6], 32);
  const bias = hostInput([6], 33), residual = hostInput([2, 5, 5, 6], 34);
  const got = await run(x, filter, bias, residual, 1, 1, true);
  await tf.setBackend("cpu");
  const want = await run(x, filter, bias, residual, 1, 1, true).finally(() =>
    tf.setBackend("webgpu")
  );
  assertClose(got, want);
});

Deno.test("the forward conv's epilogue with storage-buffer operands matches the cpu backend", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  for (const c of [CONV_CASES[0], CONV_CASES[3], CONV_CASES[11]]) {
    const x = hostInput(c.x, 41), filter = hostInput([c.k, c.k, c.x[3], c.cout], 42);
    const bias = hostInput([c.cout], 43), residual = hostInput(dyShape(c), 44);
    const t = (h: HostInput) => tf.tensor(h.data, h.shape);
    const [xs, fs, bs, rs] = [x, filter, bias, residual].map(t);
    const attrs = { strides: [c.stride, c.stride] as [number, number], pad: padAttr(c.pad) as 0 };
    const out = conv2DGemm(xs, fs, attrs, backend, conv2DTextureTile(c.cout), false, {
      bias: bs,
      residual: rs,
      relu: true,
    });
    const got = await backend.read(out.dataId) as Float32Array;
    backend.disposeData(out.dataId);
    tf.dispose([xs, fs, bs, rs]);
    await tf.setBackend("cpu");
    const want = await run(x, filter, bias, residual, c.stride, c.pad as number, true).finally(
      () => tf.setBackend("webgpu"),
    );
    assertClose(got, want);
  }
});

Deno.test("the Winograd forward's epilogue (in its output transform) matches the cpu backend", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  // Odd maps among them: the output transform's partial tiles store only their inside positions.
  for (const c of WINOGRAD_CASES) {
    for (const e of EPILOGUES) {
      const x = hostInput(c.x, 51), filter = hostInput([c.k, c.k, c.x[3], c.cout], 52);
      const bias = hostInput([c.cout], 53);
      const residual = e.residual ? hostInput(dyShape(c), 54) : undefined;
      const t = (h: HostInput) => tf.tensor(h.data, h.shape);
      const [xs, fs, bs] = [x, filter, bias].map(t);
      const rs = residual && t(residual);
      const attrs = { strides: [1, 1] as [number, number], pad: padAttr(c.pad) as 0 };
      assert(conv2DWinogradSupports(xs, fs, attrs), `${c.name}: Winograd takes it`);
      const out = conv2DWinograd(xs, fs, attrs, backend, undefined, true, {
        bias: bs,
        residual: rs,
        relu: e.relu,
      });
      const got = await backend.read(out.dataId) as Float32Array;
      backend.disposeData(out.dataId);
      tf.dispose([xs, fs, bs, ...(rs ? [rs] : [])]);
      await tf.setBackend("cpu");
      const want = await run(x, filter, bias, residual, 1, c.pad as number, e.relu).finally(
        () => tf.setBackend("webgpu"),
      );
      assertClose(got, want);
    }
  }
});

Deno.test("ResNet-18's folded eval logits match its unfolded ones and the cpu backend's", async () => {
  await useWebGPU();
  const logits = async (mode: "eval" | "frozen") => {
    const model = createResNet18({ numClasses: 10, random: lcg(5) });
    // BatchNorm statistics and affine parameters away from their initial 0/1, so the fold
    // scales and shifts by something.
    const draw = lcg(6);
    for (const [name, v] of model.variables) {
      if (v.rank !== 1 || name.startsWith("fc")) continue;
      const u = Float32Array.from({ length: v.size }, () => draw());
      const value = name.endsWith("running_var") || name.endsWith("weight")
        ? u.map((r) => 0.5 + r)
        : u.map((r) => r - 0.5);
      v.assign(tf.tensor1d(value));
    }
    const x = tf.tensor4d(hostInput([2, 64, 64, 3], 7).data, [2, 64, 64, 3]);
    const y = tf.tidy(() => model.forward(x, mode).logits);
    const data = await y.data() as Float32Array;
    tf.dispose([x, y]);
    model.dispose();
    return data;
  };
  const folded = await logits("eval");
  // `frozen` normalises with the same running statistics, unfolded (BatchNorm as its own op).
  const unfolded = await logits("frozen");
  await tf.setBackend("cpu");
  const cpu = await logits("eval").finally(() => tf.setBackend("webgpu"));
  const foldVsUnfolded = assertClose(folded, unfolded, 1e-5);
  const foldVsCpu = assertClose(folded, cpu, 1e-4);
  const unfoldedVsCpu = assertClose(unfolded, cpu, 1e-4);
  console.log(
    `eval logits, max abs error / max |logit|: folded vs unfolded ` +
      `${foldVsUnfolded.toExponential(1)}, folded vs cpu ${foldVsCpu.toExponential(1)}, ` +
      `unfolded vs cpu ${unfoldedVsCpu.toExponential(1)}`,
  );
});

Deno.test("an eval forward that only compiles pipelines keeps no folded filter", async () => {
  await useWebGPU();
  const model = createResNet18({ numClasses: 3, random: lcg(8) });
  const x = tf.tensor4d(hostInput([2, 32, 32, 3], 9).data, [2, 32, 32, 3]);
  const logits = async () => {
    const y = tf.tidy(() => model.forward(x, "eval").logits);
    const data = await y.data();
    y.dispose();
    return data;
  };
  try {
    const before = await logits(); // compiles the pipelines
    model.releaseEvalCache();
    const tensors = tf.memory().numTensors;
    // As core's precompile pass does: kernels record nothing, their outputs are never computed,
    // so a fold kept from this forward would be garbage for the next one.
    tf.env().set("WEBGPU_ENGINE_COMPILE_ONLY", true);
    try {
      tf.tidy(() => {
        model.forward(x, "eval");
      });
    } finally {
      tf.env().set("WEBGPU_ENGINE_COMPILE_ONLY", false);
    }
    assertEquals(tf.memory().numTensors, tensors, "nothing kept");
    assertEquals(await logits(), before);
  } finally {
    x.dispose();
    model.dispose();
  }
});

Deno.test("a fold keeps its filter's Winograd F(4x4) transform, and the folded conv runs F(4x4) with it", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  const t = (h: HostInput) => tf.tensor(h.data, h.shape);
  // 4 images of 8×8: 16 F(4×4) tiles, enough for it; F(2×2) would make 64, too few.
  const xHost = hostInput([4, 8, 8, 128], 61), wHost = hostInput([3, 3, 128, 128], 62);
  assert(4 * 2 * 2 >= WINOGRAD4_MIN_TILES && 4 * 4 * 4 < WINOGRAD_MIN_TILES, "tile counts");
  const x = t(xHost) as tf.Tensor4D, residual = t(hostInput([4, 8, 8, 128], 63)) as tf.Tensor4D;
  const weight = tf.variable(t(wHost));
  const draw = (shift: number, seed: number) =>
    tf.variable(tf.add(t(hostInput([128], seed)), shift), false);
  const bn = {
    weight: draw(1.5, 64),
    bias: draw(0, 65),
    runningMean: draw(0, 66),
    runningVar: draw(1.5, 67),
  };
  const cache = new FoldedConvCache();
  // `fast`: the default variant (winograd where it takes the call), not `auto`'s first-use one.
  setKernelMode("fast");
  try {
    const strided = cache.get("strided", weight, bn, { stride: 2, pad: 1 });
    assertEquals(strided.prepared, undefined, "nothing for a stride-2 conv");
    const folded = cache.get("conv", weight, bn, { stride: 1, pad: 1 });
    assertEquals(folded.prepared?.shape, [36, 128, 128], "the F(4x4) transform U = G g Gᵀ");
    const epilogue = { residual, relu: true };
    const y = convBiasAct(x, folded, 1, 1, epilogue);
    const got = await y.data() as Float32Array;
    // Bit for bit the F(4×4) kernel, given a U made of the same folded filter.
    const attrs = { strides: [1, 1] as [number, number], pad: 1 as const };
    const u = winograd4FilterTransform(folded.filter, backend);
    const direct = conv2DWinograd4(x, u, attrs, backend, undefined, true, {
      bias: folded.bias,
      residual,
      relu: true,
    });
    assertEquals(got, await backend.read(direct.dataId) as Float32Array);
    backend.disposeData(direct.dataId);
    backend.disposeData(u.dataId);
    // And the folded arithmetic on the cpu backend.
    const [filterHost, biasHost] = await Promise.all([folded.filter.data(), folded.bias.data()]);
    const host = (data: Float32Array | Int32Array | Uint8Array, shape: number[]) => ({
      data: data as Float32Array,
      shape,
    });
    const residualHost = host(await residual.data(), residual.shape);
    await tf.setBackend("cpu");
    const want = await run(
      xHost,
      host(filterHost, [3, 3, 128, 128]),
      host(biasHost, [128]),
      residualHost,
      1,
      1,
      true,
    ).finally(() => tf.setBackend("webgpu"));
    assertClose(got, want);
    // The conv reads the transform it is given, not one of its own: with U = 0 only the
    // epilogue remains, ReLU(bias + residual).
    const zeroU = tf.zerosLike(folded.prepared!);
    const epilogueOnly = convBiasAct(x, { ...folded, prepared: zeroU }, 1, 1, epilogue);
    const expected = tf.relu(tf.add(folded.bias, residual));
    assertEquals(await epilogueOnly.data(), await expected.data());
    tf.dispose([y, zeroU, epilogueOnly, expected]);
  } finally {
    setKernelMode("auto");
    cache.dispose();
    tf.dispose([x, residual, weight, bn.weight, bn.bias, bn.runningMean, bn.runningVar]);
  }
});
