/**
 * Checks of a run's batches against the device and BatchNorm, made before the first step so a
 * run never fails (or silently computes garbage) after minutes of work.
 *
 * @module
 */
import { finalFeatureSide, largestActivationBytes } from "@webtune/models";
import type { AdapterReport } from "./backend.ts";
import { balancedMicroBatch, microBatchThatFits } from "./micro_batch.ts";
import { ParamError, type RunConfig } from "./run_config.ts";

const mib = (n: number) => `${Math.ceil(n / 2 ** 20)} MiB`;

/**
 * The micro-batch a run uses: `microBatch` if set (refused if it does not fit), else the largest
 * equal split of `batchSize` whose largest tensor fits in one WebGPU storage buffer binding.
 * Without this an oversized buffer is a WebGPU validation error that tfjs does not surface:
 * measured on llvmpipe (128 MiB per binding), a 200 MB tensor silently reads back as zeros.
 * Batch 128 at 224 px needs 392 MiB, so llvmpipe runs it as 4 × 32.
 *
 * @example
 * ```ts ignore
 * chooseMicroBatch(await setupBackend(), { batchSize: 128, imageSize: 224 }); // 32 on llvmpipe
 * ```
 */
export function chooseMicroBatch(
  adapter: AdapterReport | undefined,
  config: Pick<RunConfig, "batchSize" | "imageSize" | "microBatch">,
): number {
  const { batchSize, imageSize, microBatch } = config;
  const limit = adapter?.backend === "webgpu"
    ? adapter.limits?.maxStorageBufferBindingSize
    : undefined;
  const perImage = largestActivationBytes(1, imageSize);
  const fits = microBatchThatFits(batchSize, perImage, limit);
  const device = `${adapter?.description} allows ${mib(limit ?? 0)} per buffer`;
  if (fits < 1) {
    throw new ParamError(
      "imageSize",
      `${imageSize} px needs ${mib(perImage)} per image in one buffer but ${device}`,
    );
  }
  if (microBatch === undefined) return balancedMicroBatch(batchSize, fits);
  if (microBatch > fits) {
    throw new ParamError(
      "microBatch",
      `${microBatch} at ${imageSize} px needs ${
        mib(largestActivationBytes(microBatch, imageSize))
      } buffers but ${device}: ${fits} fits`,
    );
  }
  return Math.min(microBatch, batchSize);
}

/**
 * Throws a {@linkcode ParamError} when some training slice (a batch, or a micro-batch of one)
 * would hold a single image while layer4's feature map is 1 × 1: BatchNorm in train mode then
 * sees one value per channel, which PyTorch refuses too ("expected more than 1 value per
 * channel"). Checked up front instead of failing at the end of the first epoch.
 */
export function assertSlicesNormalise(
  trainSize: number,
  config: Pick<RunConfig, "batchSize" | "imageSize">,
  microBatch: number,
): void {
  const side = finalFeatureSide(config.imageSize);
  if (side * side > 1) return;
  const { batchSize } = config;
  const batches = [Math.min(batchSize, trainSize), trainSize % batchSize];
  for (const batch of batches.filter((n) => n > 0)) {
    const slices = batch > microBatch ? [microBatch, batch % microBatch] : [batch];
    if (slices.includes(1)) {
      throw new ParamError(
        "batchSize",
        `${batchSize} (micro-batch ${microBatch}) leaves a training slice of 1 image out of ` +
          `${trainSize}; at ${config.imageSize} px BatchNorm cannot train on one value per channel`,
      );
    }
  }
}
