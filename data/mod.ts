/**
 * webtune's data pipeline: getting d2l's hot-dog data (download, checksum, safe unzip), reading
 * it with torchvision's `ImageFolder` rules, its transforms with torchvision's semantics
 * (PIL-exact resampling), and batches for training. Runs unchanged in Deno and in a browser;
 * the one Deno-specific piece, `denoFs`, is in `@webtune/data/deno_fs`.
 *
 * @example
 * ```ts ignore
 * import { createBatchLoader, createRng, resolveDataSource } from "@webtune/data";
 * import { denoFs } from "@webtune/data/deno_fs";
 * const data = await resolveDataSource("../shared/datasets/hotdog-mini", { fs: denoFs });
 * const rng = createRng(0);
 * const train = createBatchLoader(data.train, { transform: { kind: "train", size: 224 }, batchSize: 32, rng });
 * for await (const batch of train.epoch()) console.log(batch.shape);
 * ```
 *
 * @module
 */
export * from "./bench.ts";
export * from "./cache_dir.ts";
export * from "./decode.ts";
export * from "./download.ts";
export * from "./extract.ts";
export * from "./one_line.ts";
export * from "./fs.ts";
export * from "./hash.ts";
export * from "./hub.ts";
export * from "./image.ts";
export * from "./image_folder.ts";
export * from "./image_set.ts";
export * from "./jpeg.ts";
export * from "./loader.ts";
export * from "./png.ts";
export * from "./progress.ts";
export * from "./resample.ts";
export * from "./rng.ts";
export * from "./samples.ts";
export * from "./source.ts";
export * from "./synthetic.ts";
export * from "./transforms.ts";
export * from "./zip.ts";
