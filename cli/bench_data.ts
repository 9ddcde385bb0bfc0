/**
 * Throughput of the data pipeline alone, for `deno task bench`.
 *
 * @module
 */
import { createBatchLoader, createRng, type ImageSet, type TransformSpec } from "@webtune/data";
import { RESNET18_IMAGENET, testResizeFor } from "@webtune/models";

/** Options for {@linkcode benchDataPipeline}. */
export interface BenchDataOptions {
  /** Output side. Default 224. */
  size?: number;
  /** Default 64. */
  batchSize?: number;
  /** Epochs to run, at least 2. Default 3. */
  epochs?: number;
  /** `train` (RandomResizedCrop + flip, default) or `test` (resize + center crop). */
  transform?: "train" | "test";
  /** Seed of the shuffling and augmentation. Default 0. */
  seed?: number;
  /** Passed to the loader. */
  cacheBytes?: number;
}

/** What {@linkcode benchDataPipeline} measured. */
export interface BenchDataResult {
  /** Images decoded and served. */
  images: number;
  /** Output side in pixels. */
  size: number;
  /** Which transform was timed. */
  transform: "train" | "test";
  /** Decoding every image once (the loader's prepare step) plus the first epoch's batches. */
  firstEpoch: { seconds: number; imagesPerSecond: number };
  /** Mean of the later epochs, served from the decoded-image cache. */
  laterEpochs: { seconds: number; imagesPerSecond: number };
  /** Images held in memory after decoding, and their bytes. */
  cachedImages: number;
  /** Bytes of those images. */
  cachedBytes: number;
  /** Files left out (not images, or undecodable). */
  skipped: number;
}

/**
 * Runs `epochs` epochs of the batch loader over `set` with nothing consuming the batches (each
 * is released at once, as a training loop would after its step) and reports images per second
 * for the first epoch (decode included) and the later ones (cached).
 *
 * @example
 * ```ts
 * import { syntheticImageSet } from "@webtune/data";
 * import { benchDataPipeline } from "./bench_data.ts";
 * const r = await benchDataPipeline(syntheticImageSet("train", { perClass: 8 }), { size: 64, epochs: 2 });
 * console.log(r.images, r.laterEpochs.imagesPerSecond > 0); // 16 true
 * ```
 */
export async function benchDataPipeline(
  set: ImageSet,
  options: BenchDataOptions = {},
): Promise<BenchDataResult> {
  const size = options.size ?? 224;
  const epochs = Math.max(2, options.epochs ?? 3);
  const kind = options.transform ?? "train";
  // The chapter's source model decides the normalisation and the test resize.
  const pretrained = RESNET18_IMAGENET;
  const transform: TransformSpec = kind === "train"
    ? { kind, size }
    : { kind, size, resize: testResizeFor(pretrained, size) };
  const loader = createBatchLoader(set, {
    transform,
    normalize: { mean: pretrained.mean, std: pretrained.std },
    batchSize: options.batchSize ?? 64,
    rng: createRng(options.seed ?? 0),
    cacheBytes: options.cacheBytes,
  });
  const times: number[] = [];
  let t0 = performance.now();
  const report = await loader.prepare();
  for (let e = 0; e < epochs; e++) {
    for await (const batch of loader.epoch()) batch.release();
    const t1 = performance.now();
    times.push((t1 - t0) / 1000);
    t0 = t1;
  }
  const later = times.slice(1).reduce((a, b) => a + b, 0) / (times.length - 1);
  return {
    images: loader.size,
    size,
    transform: kind,
    firstEpoch: { seconds: times[0], imagesPerSecond: loader.size / times[0] },
    laterEpochs: { seconds: later, imagesPerSecond: loader.size / later },
    cachedImages: report.cachedImages,
    cachedBytes: report.cachedBytes,
    skipped: report.skipped.length,
  };
}
