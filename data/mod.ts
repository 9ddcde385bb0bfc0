/**
 * webtune's data pipeline: getting d2l's hot-dog data (download, checksum, safe unzip), reading
 * it with torchvision's `ImageFolder` rules, its transforms with torchvision's semantics
 * (PIL-exact resampling), and batches for training. Runs unchanged in Deno and in a browser;
 * the one Deno-specific piece, `denoFs`, is in `@webtune/data/deno_fs`. It knows nothing of
 * models: the normalisation and test resize come from the caller (the model's pretrained
 * config), and its errors name the file and the problem, never a CLI flag.
 *
 * @example
 * ```ts ignore
 * import { createBatchLoader, createRng, resolveDataSource } from "@webtune/data";
 * import { denoFs } from "@webtune/data/deno_fs";
 * const data = await resolveDataSource("../shared/datasets/hotdog-mini", { fs: denoFs });
 * const rng = createRng(0);
 * const normalize = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }; // the model's
 * const train = createBatchLoader(data.train, {
 *   transform: { kind: "train", size: 224 },
 *   normalize,
 *   batchSize: 32,
 *   rng,
 * });
 * for await (const batch of train.epoch()) console.log(batch.shape);
 * ```
 *
 * @module
 */
export { defaultCacheDir } from "./cache_dir.ts";
export { decodeImage, probeImage } from "./decode.ts";
export { download, type DownloadProgress } from "./download.ts";
export { extractZip } from "./extract.ts";
export {
  directorySource,
  type DirEntry,
  type FileSource,
  type FileSystem,
  joinPath,
} from "./fs.ts";
export { createHasher } from "./hash.ts";
export { HOTDOG } from "./hub.ts";
export { type RgbImage, rgbImage } from "./image.ts";
export { scanImageFolder } from "./image_folder.ts";
export { folderImageSet, type ImageSet, type SkippedFile } from "./image_set.ts";
export { decodeJpeg } from "./jpeg.ts";
export {
  createBatchLoader,
  describeSkipped,
  type PrepareReport,
  type TransformSpec,
} from "./loader.ts";
export { encodeRgbaPng, encodeRgbPng } from "./png.ts";
export { resizeBilinear } from "./resample.ts";
export { createRng, type Rng } from "./rng.ts";
export { samplesGrid, samplesGridPng } from "./samples.ts";
export { type DataSource, openDataSource, resolveDataSource } from "./source.ts";
export { limitImageSet } from "./subset.ts";
export { oneLine } from "./one_line.ts";
export { syntheticImageSet } from "./synthetic.ts";
export { type TestTransform, testTransformBatch } from "./test_batch.ts";
export {
  type Normalization,
  normalizeInto,
  randomResizedCropParams,
  testCrop,
  trainCrop,
} from "./transforms.ts";
export { readZip } from "./zip.ts";
