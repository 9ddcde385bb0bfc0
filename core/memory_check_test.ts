import { assertThrows } from "@std/assert";
import type { AdapterReport } from "./backend.ts";
import { assertBatchFits } from "./memory_check.ts";
import { ParamError } from "./run_config.ts";

const llvmpipe: AdapterReport = {
  backend: "webgpu",
  description: "llvmpipe",
  vendor: "",
  architecture: "",
  isFallbackAdapter: true,
  limits: { maxStorageBufferBindingSize: 128 * 2 ** 20 },
};

Deno.test("assertBatchFits: a batch too big for one buffer names the size that fits", () => {
  assertBatchFits(llvmpipe, 32, 224);
  assertThrows(
    () => assertBatchFits(llvmpipe, 128, 224),
    ParamError,
    "batchSize 128 at 224 px needs 392 MiB buffers but llvmpipe allows 128 MiB per buffer: use 32 or less",
  );
  assertBatchFits({ ...llvmpipe, backend: "cpu", limits: undefined }, 4096, 224);
});
