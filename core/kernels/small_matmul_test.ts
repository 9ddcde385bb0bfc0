import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals } from "@std/assert";
import { assertClose, hostInput, runOnCpu, runOnWebGPU, useWebGPU } from "./kernel_test_util.ts";
import { SMALL_MATMUL_TILES } from "./mod.ts";
import { smallMatMul } from "./small_matmul.ts";

/** tfjs-webgpu's `MatMulProgramType.MatMulReduceProgram` and `…SmallOutputSizeProgram`. */
const TFJS_REDUCE = 0;
const TFJS_SMALL_OUTPUT = 2;
const PROGRAM_TYPE = "WEBGPU_MATMUL_PROGRAM_TYPE";

/** Pipelines of webtune program `name` in tfjs's cache (ours are keyed by program only). */
function pipelinesOf(name: string): number {
  const cache = (tf.backend() as unknown as { pipelineCache: Record<string, unknown> })
    .pipelineCache;
  return Object.keys(cache).filter((key) => key.startsWith(`webtune${name}_`)).length;
}

// The classifier's backward matmuls at batch 16 (dX = dy·Wᵀ, dW = xᵀ·dy), a batched one whose b
// broadcasts and whose k is no multiple of tfjs's 16-wide k tiles, and both transposed.
const CASES: { a: number[]; b: number[]; transposeA: boolean; transposeB: boolean }[] = [
  { a: [16, 2], b: [512, 2], transposeA: false, transposeB: true },
  { a: [16, 512], b: [16, 2], transposeA: true, transposeB: false },
  { a: [3, 24, 40], b: [40, 33], transposeA: false, transposeB: false },
  { a: [40, 24], b: [33, 40], transposeA: true, transposeB: true },
];

// tfjs's reduce program (outputs of at most 128 elements): the classifier's forward at batch 16
// (x·W), a k shorter than its 256 partial sums, and a batched, transposed one. Each has an input
// of at least tfjs's CPU hand-off size (1000 elements), so that it runs on the GPU.
const REDUCE_CASES: typeof CASES = [
  { a: [16, 512], b: [512, 2], transposeA: false, transposeB: false },
  { a: [20, 60], b: [60, 5], transposeA: false, transposeB: false },
  { a: [2, 700, 5], b: [6, 700], transposeA: true, transposeB: true },
];

for (const c of REDUCE_CASES) {
  const name = `${c.a.join("x")}${c.transposeA ? "ᵀ" : ""}·${c.b.join("x")}${
    c.transposeB ? "ᵀ" : ""
  }`;
  Deno.test(`BatchMatMul ${name} equals tfjs's reduce program to the bit`, async () => {
    await useWebGPU();
    const inputs = { a: hostInput(c.a, 3), b: hostInput(c.b, 4) };
    const attrs = { transposeA: c.transposeA, transposeB: c.transposeB };
    const ours = await runOnWebGPU("BatchMatMul", inputs, attrs);
    const before = tf.env().getNumber(PROGRAM_TYPE);
    tf.env().set(PROGRAM_TYPE, TFJS_REDUCE); // forced: ours declines, tfjs's runs
    let tfjs: Float32Array;
    try {
      tfjs = await runOnWebGPU("BatchMatMul", inputs, attrs);
    } finally {
      tf.env().set(PROGRAM_TYPE, before);
    }
    assertEquals(ours, tfjs);
    assertClose(ours, await runOnCpu("BatchMatMul", inputs, attrs));
  });
}

for (const c of CASES) {
  const name = `${c.a.join("x")}${c.transposeA ? "ᵀ" : ""}·${c.b.join("x")}${
    c.transposeB ? "ᵀ" : ""
  }`;
  Deno.test(`BatchMatMul ${name} equals tfjs's small-output program to the bit`, async () => {
    await useWebGPU();
    const inputs = { a: hostInput(c.a, 1), b: hostInput(c.b, 2) };
    const attrs = { transposeA: c.transposeA, transposeB: c.transposeB };
    const ours = await runOnWebGPU("BatchMatMul", inputs, attrs);
    const before = tf.env().getNumber(PROGRAM_TYPE);
    tf.env().set(PROGRAM_TYPE, TFJS_SMALL_OUTPUT); // forced: ours declines, tfjs's runs
    let tfjs: Float32Array;
    try {
      tfjs = await runOnWebGPU("BatchMatMul", inputs, attrs);
    } finally {
      tf.env().set(PROGRAM_TYPE, before);
    }
    assertEquals(ours, tfjs);
    assertClose(ours, await runOnCpu("BatchMatMul", inputs, attrs));
  });
}

Deno.test("BatchMatMul: every case above is ours, and all share one pipeline", async () => {
  await useWebGPU();
  const backend = tf.backend() as WebGPUBackend;
  for (const c of [...CASES, ...REDUCE_CASES]) {
    const a = tf.tensor(hostInput(c.a, 1).data, c.a), b = tf.tensor(hostInput(c.b, 2).data, c.b);
    const attrs = { transposeA: c.transposeA, transposeB: c.transposeB };
    const out = smallMatMul({ a, b }, attrs, SMALL_MATMUL_TILES, backend);
    assert(out !== null, `${c.a}·${c.b} fell back to tfjs`);
    backend.disposeData(out.dataId);
    tf.dispose([a, b]);
  }
  assertEquals(pipelinesOf("SmallMatMul"), 1);
});
