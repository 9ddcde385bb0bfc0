import { largestActivationBytes } from "@webtune/models";
import type { AdapterReport } from "./backend.ts";
import { ParamError } from "./run_config.ts";

/**
 * Throws a {@linkcode ParamError} on `batchSize` if a batch cannot fit in one WebGPU storage
 * buffer binding of this device. Without this check an oversized buffer is a WebGPU validation
 * error that tfjs does not surface: measured on llvmpipe, a 200 MB tensor silently reads back as
 * zeros, so training would compute garbage. Software adapters (llvmpipe) allow 128 MiB; batch 128
 * at 224 px needs 392 MiB.
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
  throw new ParamError(
    "batchSize",
    `${batchSize} at ${imageSize} px needs ${mib(needed)} buffers but ${adapter.description} ` +
      `allows ${mib(limit)} per buffer: use ${fits} or less (or a GPU with more)`,
  );
}
