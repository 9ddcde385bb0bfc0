import { assertEquals, assertThrows } from "@std/assert";
import type { AdapterReport } from "./backend.ts";
import { assertBatchFits, largestActivationBytes } from "./memory_check.ts";

const llvmpipe: AdapterReport = {
  backend: "webgpu",
  description: "llvmpipe",
  vendor: "",
  architecture: "",
  isFallbackAdapter: true,
  limits: { maxStorageBufferBindingSize: 128 * 2 ** 20 },
};

Deno.test("the stem output of batch 128 at 224 px is 392 MiB", () => {
  assertEquals(largestActivationBytes(128, 224), 128 * 112 * 112 * 64 * 4);
});

Deno.test("assertBatchFits: a batch too big for one buffer names the size that fits", () => {
  assertBatchFits(llvmpipe, 32, 224);
  assertThrows(
    () => assertBatchFits(llvmpipe, 128, 224),
    Error,
    "batch 128 at 224 px needs 392 MiB buffers but llvmpipe allows 128 MiB per buffer: use --batch-size 32 or less",
  );
  assertBatchFits({ ...llvmpipe, backend: "cpu", limits: undefined }, 4096, 224);
});
