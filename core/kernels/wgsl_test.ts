/**
 * webtune's WGSL must never short-circuit (`&&`, `||`): SwiftShader, Chromium's software WebGPU
 * adapter, cannot compile the unrolled branches they become and the page loses its device (see
 * `allOf` in kernel_util.ts). This runs every program variant of our kernels and reads the WGSL
 * each one hands to tfjs.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals } from "@std/assert";
import {
  conv2DBackpropFilterGemm,
  conv2DBackpropInputFma,
  conv2DBackpropInputGemm,
  conv2DBackpropInputWinograd,
  conv2DGemm,
  conv2DTile,
  conv2DWinograd,
  derFilterTile,
  derInputFmaTile,
  derInputTile,
} from "./mod.ts";
import { allOf, anyOf } from "./kernel_util.ts";
import { useWebGPU } from "./kernel_test_util.ts";

/**
 * The real backend, recording the WGSL body (`getUserCode`) of every webtune program it runs, by
 * shader key (read before tfjs overwrites it), and the whole WGSL of every shader module made
 * with a `webtune` label (the texture-operand programs, which build their own pipelines).
 */
function recordingBackend(real: WebGPUBackend, sources: Map<string, string>): WebGPUBackend {
  const device = new Proxy(real.device, {
    get(target, prop) {
      if (prop === "createShaderModule") {
        return (descriptor: GPUShaderModuleDescriptor) => {
          if (descriptor.label?.startsWith("webtune")) {
            sources.set(descriptor.label, descriptor.code);
          }
          return target.createShaderModule(descriptor);
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "device") return device;
      if (prop === "runWebGPUProgram") {
        return (program: WebGPUProgram, ...rest: unknown[]) => {
          const key = program.shaderKey;
          if (key.startsWith("webtune")) sources.set(key, program.getUserCode());
          return (target.runWebGPUProgram as (...a: unknown[]) => tf.TensorInfo)(
            program,
            ...rest,
          );
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("allOf and anyOf write non-short-circuit WGSL", () => {
  assertEquals(allOf("a < b", "c"), "(a < b) & (c)");
  assertEquals(anyOf("ok0", "ok1", "ok2"), "(ok0) | (ok1) | (ok2)");
});

Deno.test("webtune's kernels emit no short-circuit && or || in WGSL", async () => {
  await useWebGPU();
  const sources = new Map<string, string>();
  const backend = recordingBackend(tf.backend() as WebGPUBackend, sources);
  const t = (shape: number[]) => tf.randomUniform(shape, -1, 1, "float32", 1);
  const outs: tf.TensorInfo[] = [];
  const inputs: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(x: T) => (inputs.push(x), x);
  // Every program with storage-buffer and with texture operands.
  for (const textures of [false, true]) {
    // Forward: the padded (3-channel stem) and general (bounds-checked) programs.
    for (
      const [x, w, stride] of [[[2, 9, 9, 3], [7, 7, 3, 8], 2], [[2, 8, 8, 8], [3, 3, 8, 8], 1]]
    ) {
      outs.push(conv2DGemm(
        keep(t(x as number[])),
        keep(t(w as number[])),
        {
          strides: stride as number,
          pad: "same",
        },
        backend,
        conv2DTile(8),
        textures,
      ));
    }
    // dX: stride 1 and stride 2 (the strides are baked into the program).
    for (const stride of [1, 2]) {
      const inputShape: [number, number, number, number] = [2, 8, 8, 8];
      const dy = keep(t([2, 8 / stride, 8 / stride, 8]));
      outs.push(conv2DBackpropInputGemm(
        dy,
        keep(t([3, 3, 8, 8])),
        {
          inputShape,
          strides: stride,
          pad: "same",
        },
        backend,
        derInputTile(8, textures),
        textures,
      ));
      const attrs = { inputShape, strides: stride, pad: "same" as const };
      const filter = keep(t([3, 3, 8, 8]));
      outs.push(conv2DBackpropInputFma(
        dy,
        filter,
        attrs,
        backend,
        derInputFmaTile(),
        textures,
      ));
    }
    // dW: direct mode (Cin a multiple of the tile) and padded mode (the stem), both split.
    for (
      const [x, filterShape] of [[[2, 8, 8, 16], [3, 3, 16, 8]], [[2, 9, 9, 3], [7, 7, 3, 8]]]
    ) {
      const dy = keep(t([2, Math.ceil(x[1] / 2), Math.ceil(x[2] / 2), 8]));
      const shape = filterShape as [number, number, number, number];
      outs.push(conv2DBackpropFilterGemm(
        keep(t(x)),
        dy,
        {
          strides: 2,
          pad: "same",
          dataFormat: "NHWC",
          filterShape: shape,
        },
        backend,
        derFilterTile(shape),
        textures,
      ));
    }
  }
  // Winograd (texture operands only): forward and dX, 5 programs.
  const wx = keep(t([2, 7, 5, 8])), ww = keep(t([3, 3, 8, 8]));
  outs.push(conv2DWinograd(wx, ww, { strides: 1, pad: "same" }, backend));
  outs.push(
    conv2DBackpropInputWinograd(
      wx,
      ww,
      { inputShape: [2, 7, 5, 8], strides: 1, pad: "same" },
      backend,
    ),
  );
  // Wait for the work (its pipelines compile at their first dispatch on llvmpipe): a submission
  // still running when the test ends makes Deno's wgpu give up waiting at teardown and panic.
  await backend.read(outs[outs.length - 1].dataId);
  for (const out of outs) backend.disposeData(out.dataId);
  tf.dispose(inputs);

  // (2 forward + 2 dX + 2 FMA dX + 2 dW) × 2 operand kinds + the split sum + 5 Winograd.
  assert(sources.size >= 22, `expected ≥ 22 programs, recorded ${[...sources.keys()]}`);
  for (const [name, code] of sources) {
    const line = code.split("\n").find((l) => /&&|\|\|/.test(l));
    if (name.includes("_textures")) {
      assert(code.includes("textureLoad"), `${name} reads no texture`);
    }
    assertEquals(line, undefined, `${name} short-circuits: ${line?.trim()}`);
  }
});
