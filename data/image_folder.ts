/**
 * torchvision's `ImageFolder` listing rules over any {@linkcode FileSource}.
 *
 * @module
 */
import { type FileSource, joinPath } from "./fs.ts";

/** torchvision's `IMG_EXTENSIONS`: the files `ImageFolder` lists (case-insensitive). */
export const IMG_EXTENSIONS: readonly string[] = [
  ".jpg",
  ".jpeg",
  ".png",
  ".ppm",
  ".bmp",
  ".pgm",
  ".tif",
  ".tiff",
  ".webp",
];

/** A listed image: its path in the source and its class index. */
export interface FolderSample {
  /** Path in the source, e.g. `train/hotdog/1.jpg`. */
  path: string;
  /** Index of its class in the listing's `classes`. */
  label: number;
}

/** The result of {@linkcode scanImageFolder}. */
export interface ImageFolderListing {
  /** `source.name` + the folder, for messages. */
  name: string;
  /** Class names, sorted by code point like Python's `sorted()`; the label is the index. */
  classes: string[];
  /** Samples in torchvision's order: by class, then by path within the class. */
  samples: FolderSample[];
  /** Files ignored because their extension is not in {@linkcode IMG_EXTENSIONS}. */
  ignored: string[];
}

/** A folder that is not in `ImageFolder` layout. The message names it. */
export class LayoutError extends Error {
  /** The error's name. */
  override name = "LayoutError";
}

/**
 * Compares strings by Unicode code point, as Python's `sorted()` does. (JavaScript's default sort
 * compares UTF-16 code units, which orders characters beyond U+FFFF differently.)
 */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator](), ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next(), y = ib.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/**
 * Lists `dir` of `source` the way `torchvision.datasets.ImageFolder(dir)` does: every
 * subfolder is a class (sorted by code point; label = index); each class's files are found
 * recursively (`sorted(os.walk(...))`, then sorted file names) and kept if their extension is an
 * image extension. Throws {@linkcode LayoutError} for a folder with fewer than two classes or a
 * class without images (torchvision itself accepts one class; a classifier cannot learn from it).
 *
 * @example
 * ```ts ignore
 * import { directorySource, scanImageFolder } from "@webtune/data";
 * import { denoFs } from "@webtune/data/deno_fs";
 * const source = directorySource(denoFs, "../shared/datasets/hotdog-mini");
 * const train = await scanImageFolder(source, "train");
 * console.log(train.classes); // [ "hotdog", "not-hotdog" ]
 * ```
 */
export async function scanImageFolder(
  source: FileSource,
  dir: string,
): Promise<ImageFolderListing> {
  const name = joinPath(source.name, dir);
  let entries;
  try {
    entries = await source.readDir(dir);
  } catch (e) {
    throw new LayoutError(`${name}: cannot list the folder (${(e as Error).message})`);
  }
  const classes = entries.filter((e) => e.isDirectory).map((e) => e.name).sort(compareCodePoints);
  if (classes.length < 2) {
    throw new LayoutError(
      `${name}: needs at least 2 class folders, found ${classes.length}` +
        (classes.length ? ` (${classes[0]})` : ""),
    );
  }
  const samples: FolderSample[] = [];
  const ignored: string[] = [];
  for (let label = 0; label < classes.length; label++) {
    const files = await walk(source, joinPath(dir, classes[label]));
    let count = 0;
    for (const path of files) {
      const lower = path.toLowerCase();
      if (IMG_EXTENSIONS.some((ext) => lower.endsWith(ext))) {
        samples.push({ path, label });
        count++;
      } else {
        ignored.push(path);
      }
    }
    if (count === 0) {
      throw new LayoutError(
        `${joinPath(name, classes[label])}: class folder has no image files ` +
          `(${IMG_EXTENSIONS.join(" ")})`,
      );
    }
  }
  return { name, classes, samples, ignored };
}

/** All files under `dir`, in the order of torchvision's `sorted(os.walk(dir))` + `sorted(files)`. */
async function walk(source: FileSource, dir: string): Promise<string[]> {
  const roots: { root: string; files: string[] }[] = [];
  const visit = async (root: string, depth: number) => {
    if (depth > 64) throw new LayoutError(`${joinPath(source.name, root)}: folders nest too deep`);
    const entries = await source.readDir(root);
    roots.push({ root, files: entries.filter((e) => e.isFile).map((e) => e.name) });
    for (const e of entries) if (e.isDirectory) await visit(joinPath(root, e.name), depth + 1);
  };
  await visit(dir, 0);
  roots.sort((a, b) => compareCodePoints(a.root, b.root));
  return roots.flatMap(({ root, files }) =>
    files.sort(compareCodePoints).map((f) => joinPath(root, f))
  );
}
