import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { describeAdapter, NoWebGPUError, setupBackend } from "./backend.ts";

Deno.test("setupBackend finds a WebGPU adapter, creates the device, and says which", async () => {
  const report = await setupBackend();
  console.log(`adapter: ${describeAdapter(report)}`);
  assertEquals(report.backend, "webgpu");
  assertEquals(tf.getBackend(), "webgpu");
  assert(report.description.length > 0);
  assertStringIncludes(describeAdapter(report), report.description);
  // The device got the adapter's maximum buffer sizes, not WebGPU's small defaults.
  const adapter = await navigator.gpu.requestAdapter();
  assertEquals(
    report.limits?.maxStorageBufferBindingSize,
    adapter!.limits.maxStorageBufferBindingSize,
  );
  assertEquals(report.limits?.maxBufferSize, adapter!.limits.maxBufferSize);
  const sum = tf.tidy(() => tf.sum(tf.add(tf.ones([4]), tf.ones([4]))));
  assertEquals(await sum.data(), new Float32Array([8]));
  sum.dispose();
});

Deno.test("no adapter: a clear error that says what to install and offers the cpu backend", async () => {
  const noAdapter = { requestAdapter: () => Promise.resolve(null) } as unknown as GPU;
  const error = await assertRejects(
    () => setupBackend({ backend: "webgpu", gpu: noAdapter, fresh: true }),
    NoWebGPUError,
  );
  assertStringIncludes(error.message, "mesa-vulkan-drivers");
  assertStringIncludes(error.message, "cpu backend");
});
