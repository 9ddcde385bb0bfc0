/**
 * A labelled list of images that can be loaded one by one: an image folder (on disk or in a
 * zip) or the synthetic set. The batch loader and the samples grid work on this.
 *
 * @module
 */
import { DecodeError, decodeImage, type DecodeOptions, probeImage } from "./decode.ts";
import type { FileSource } from "./fs.ts";
import type { RgbImage } from "./image.ts";
import type { ImageFolderListing } from "./image_folder.ts";
import { ZipError } from "./zip.ts";

/** A file left out of a data set, and why. */
export interface SkippedFile {
  /** The file's path in its source. */
  path: string;
  /** Why it was left out, one line. */
  reason: string;
}

/** A labelled list of images. */
export interface ImageSet {
  /** For messages, e.g. `../shared/datasets/hotdog-mini/train`. */
  readonly name: string;
  /** Class names; a label is an index into this. */
  readonly classes: readonly string[];
  /** One label per image. */
  readonly labels: Int32Array;
  /** One path (or synthetic name) per image, for messages. */
  readonly paths: readonly string[];
  /** Files the listing left out (e.g. not an image extension). */
  readonly ignored: readonly SkippedFile[];
  /** Reads image `index`'s size from its header without decoding. Throws `DecodeError`. */
  probe(index: number): Promise<{ width: number; height: number }>;
  /** Decodes image `index` to RGB at its full size. Throws `DecodeError`. */
  load(index: number): Promise<RgbImage>;
}

/**
 * The {@linkcode ImageSet} of an image-folder listing, decoding files from `source` on demand.
 *
 * @example
 * ```ts ignore
 * import { directorySource, folderImageSet, scanImageFolder } from "@webtune/data";
 * import { denoFs } from "@webtune/data/deno_fs";
 * const source = directorySource(denoFs, "../shared/datasets/hotdog-mini");
 * const train = folderImageSet(source, await scanImageFolder(source, "train"));
 * const first = await train.load(0);
 * console.log(train.classes[train.labels[0]], first.width, first.height);
 * ```
 */
export function folderImageSet(
  source: FileSource,
  listing: ImageFolderListing,
  decodeOptions: Omit<DecodeOptions, "name"> = {},
): ImageSet {
  const paths = listing.samples.map((s) => s.path);
  const read = async (index: number) => {
    try {
      return await source.readFile(paths[index]);
    } catch (e) {
      // A hostile or corrupt archive (zip bomb, CRC mismatch) stops the run instead of being
      // skipped like one unreadable file: nothing in it can be trusted.
      if (e instanceof ZipError) throw e;
      throw new DecodeError(`${paths[index]}: cannot read (${(e as Error).message})`);
    }
  };
  return {
    name: listing.name,
    classes: listing.classes,
    labels: Int32Array.from(listing.samples, (s) => s.label),
    paths,
    ignored: listing.ignored.map((path) => ({ path, reason: "not an image file extension" })),
    async probe(index) {
      const header = probeImage(await read(index));
      if (!header) throw new DecodeError(`${paths[index]}: not a JPEG or PNG file`);
      return header;
    },
    async load(index) {
      return decodeImage(await read(index), { ...decodeOptions, name: paths[index] });
    },
  };
}
