import { assertEquals, assertThrows } from "@std/assert";
import type { AdapterReport } from "./backend.ts";
import { assertSlicesNormalise, chooseMicroBatch } from "./memory_check.ts";
import { ParamError } from "./run_config.ts";

const llvmpipe: AdapterReport = {
  backend: "webgpu",
  description: "llvmpipe",
  vendor: "",
  architecture: "",
  isFallbackAdapter: true,
  limits: { maxStorageBufferBindingSize: 128 * 2 ** 20 },
};

Deno.test("chooseMicroBatch: the chapter's batch 128 at 224 px runs as 4 × 32 on llvmpipe", () => {
  assertEquals(chooseMicroBatch(llvmpipe, { batchSize: 128, imageSize: 224 }), 32);
  assertEquals(chooseMicroBatch(llvmpipe, { batchSize: 16, imageSize: 224 }), 16);
  assertEquals(chooseMicroBatch(llvmpipe, { batchSize: 128, imageSize: 224, microBatch: 8 }), 8);
  const cpu = { ...llvmpipe, backend: "cpu" as const, limits: undefined };
  assertEquals(chooseMicroBatch(cpu, { batchSize: 4096, imageSize: 224 }), 4096);
  assertEquals(chooseMicroBatch(undefined, { batchSize: 128, imageSize: 224 }), 128);
});

Deno.test("chooseMicroBatch: what cannot fit names the setting that helps", () => {
  assertThrows(
    () => chooseMicroBatch(llvmpipe, { batchSize: 128, imageSize: 224, microBatch: 64 }),
    ParamError,
    "microBatch 64 at 224 px needs 196 MiB buffers but llvmpipe allows 128 MiB per buffer: 41 fits",
  );
  const e = assertThrows(
    () => chooseMicroBatch(llvmpipe, { batchSize: 1, imageSize: 2000 }),
    ParamError,
    "2000 px needs 245 MiB per image in one buffer but llvmpipe allows 128 MiB",
  ) as ParamError;
  assertEquals(e.param, "imageSize");
});

Deno.test("assertSlicesNormalise: a 1-image slice with a 1 × 1 layer4 is refused up front", () => {
  // 33 images in batches of 16 leave a last batch of 1; at 32 px layer4 is 1 × 1.
  assertThrows(
    () => assertSlicesNormalise(33, { batchSize: 16, imageSize: 32 }, 16),
    ParamError,
    "leaves a training slice of 1 image out of 33",
  );
  // Micro-batches of 3 split a batch of 16 into 3+3+3+3+3+1.
  assertThrows(() => assertSlicesNormalise(32, { batchSize: 16, imageSize: 32 }, 3), ParamError);
  assertThrows(() => assertSlicesNormalise(1, { batchSize: 16, imageSize: 32 }, 16), ParamError);
  assertSlicesNormalise(32, { batchSize: 16, imageSize: 32 }, 16);
  assertSlicesNormalise(34, { batchSize: 16, imageSize: 32 }, 8);
  // At 64 px layer4 is 2 × 2: four values per channel even for one image.
  assertSlicesNormalise(33, { batchSize: 16, imageSize: 64 }, 16);
});
