import type { AdapterReport } from "./backend.ts";

/**
 * Bytes of ResNet-18's largest tensor for a batch: the stem's output (`conv1`/`bn1`/`relu`,
 * N × S/2 × S/2 × 64 float32), which every forward and backward pass holds in one buffer.
 */
export function largestActivationBytes(batchSize: number, imageSize: number): number {
  const side = Math.ceil(imageSize / 2);
  return batchSize * side * side * 64 * 4;
}

/**
 * Throws a one-line error if a batch cannot fit in one WebGPU storage buffer binding of this
 * device. Without this check an oversized buffer is a WebGPU validation error that tfjs does not
 * surface: measured on llvmpipe, a 200 MB tensor silently reads back as zeros, so training would
 * compute garbage. Software adapters (llvmpipe) allow 128 MiB; batch 128 at 224 px needs 392 MiB.
 *
 * @example
 * ```ts ignore
 * assertBatchFits(await setupBackend(), 32, 224); // ok on llvmpipe; 128 would throw
 * ```
 */
export function assertBatchFits(
  adapter: AdapterReport,
  batchSize: number,
  imageSize: number,
): void {
  const limit = adapter.limits?.maxStorageBufferBindingSize;
  if (adapter.backend !== "webgpu" || !limit) return;
  const needed = largestActivationBytes(batchSize, imageSize);
  if (needed <= limit) return;
  const mib = (n: number) => `${Math.ceil(n / 2 ** 20)} MiB`;
  let fits = batchSize;
  while (fits > 1 && largestActivationBytes(fits, imageSize) > limit) fits = Math.floor(fits / 2);
  throw new Error(
    `batch ${batchSize} at ${imageSize} px needs ${
      mib(needed)
    } buffers but ${adapter.description} ` +
      `allows ${mib(limit)} per buffer: use --batch-size ${fits} or less (or a GPU with more)`,
  );
}
