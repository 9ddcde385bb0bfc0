/**
 * Turning `--data` into train and test image sets.
 *
 * @module
 */
import type { DecodeOptions } from "./decode.ts";
import { download, type DownloadProgress } from "./download.ts";
import { extractZip } from "./extract.ts";
import {
  basename,
  directorySource,
  type FileSource,
  type FileSystem,
  joinPath,
  subSource,
} from "./fs.ts";
import { createHasher } from "./hash.ts";
import { HOTDOG } from "./hub.ts";
import { LayoutError, scanImageFolder } from "./image_folder.ts";
import { folderImageSet, type ImageSet } from "./image_set.ts";
import { syntheticImageSet, type SyntheticOptions } from "./synthetic.ts";
import { readZip } from "./zip.ts";

/** A resolved data set: its two splits and where they came from. */
export interface DataSource {
  /** What `--data` turned out to be. */
  kind: "directory" | "zip" | "url" | "synthetic";
  /** One line for the run log, e.g. `directory ../shared/datasets/hotdog-mini`. */
  description: string;
  /** The classes, the same in both splits. */
  classes: readonly string[];
  /** The training split. */
  train: ImageSet;
  /** The test split. */
  test: ImageSet;
}

/** Options for {@linkcode resolveDataSource}. */
export interface ResolveOptions {
  /** Needed for paths and URLs (`denoFs` in the CLI). */
  fs?: FileSystem;
  /** Where downloads and their extraction go; needed for URLs. */
  cacheDir?: string;
  /** Seed of the synthetic set. Default 0. */
  seed?: number;
  /** Sizes of the synthetic set. */
  synthetic?: Omit<SyntheticOptions, "seed">;
  /** How images are decoded (pixel cap, EXIF orientation). */
  decode?: Omit<DecodeOptions, "name">;
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Download progress, for a progress bar. */
  onDownloadProgress?: (progress: DownloadProgress) => void;
  /** One-line status messages ("extracting ..."). */
  onStatus?: (line: string) => void;
  /** Retries of a dropped download, and the delay unit between them (see `download`). */
  retries?: number;
  /** Delay unit between download retries, in ms (see `download`). */
  retryDelayMs?: number;
  /** Cap on a zip's declared uncompressed size. */
  maxZipBytes?: number;
  /** Appended when a download host cannot be reached (the CLI names its flags here). */
  offlineHint?: string;
}

const OFFLINE_HINT = "check the network, or use a local copy of the data " +
  "(a folder with train/<class>/ and test/<class>/, or a .zip of one), or the synthetic set";

/**
 * Resolves a `--data` value:
 *
 * - `synthetic`: the generated circles-vs-stripes set, deterministic from `seed`;
 * - `hotdog`: d2l's `hotdog.zip`, downloaded (SHA-1 checked) and extracted into `cacheDir`;
 * - `http://...` / `https://...`: a zip downloaded and extracted into `cacheDir`;
 * - a directory: `train/<class>/*` and `test/<class>/*`, possibly inside one top folder;
 * - a `.zip` file: the same layout, read in memory without extracting.
 *
 * Both splits are listed with torchvision's `ImageFolder` rules and must have the same classes.
 *
 * @example
 * ```ts ignore
 * import { resolveDataSource } from "@webtune/data";
 * import { denoFs } from "@webtune/data/deno_fs";
 * const data = await resolveDataSource("../shared/datasets/hotdog-mini", { fs: denoFs });
 * console.log(data.classes, data.train.labels.length, data.test.labels.length);
 * // [ "hotdog", "not-hotdog" ] 200 50
 * ```
 */
export async function resolveDataSource(
  spec: string,
  options: ResolveOptions = {},
): Promise<DataSource> {
  if (spec === "synthetic") {
    const seed = options.seed ?? 0;
    const train = syntheticImageSet("train", { ...options.synthetic, seed });
    return {
      kind: "synthetic",
      description: `synthetic circles-vs-stripes images (seed ${seed})`,
      classes: train.classes,
      train,
      test: syntheticImageSet("test", { ...options.synthetic, seed }),
    };
  }
  const fs = options.fs;
  if (!fs) throw new Error(`${spec}: reading files needs a file system (options.fs)`);

  if (spec === "hotdog" || /^https?:\/\//i.test(spec)) {
    const url = spec === "hotdog" ? HOTDOG.url : spec;
    if (!options.cacheDir) throw new Error(`${spec}: downloading needs a cache directory`);
    const isHotdog = url === HOTDOG.url;
    const file = isHotdog ? "hotdog.zip" : urlFileName(url);
    const zipPath = joinPath(options.cacheDir, file);
    const result = await download(url, zipPath, {
      fs,
      checksum: isHotdog ? HOTDOG.checksum : undefined,
      onProgress: options.onDownloadProgress,
      fetch: options.fetch,
      retries: options.retries,
      retryDelayMs: options.retryDelayMs,
      offlineHint: options.offlineHint ?? OFFLINE_HINT,
    });
    const dir = zipPath.replace(/\.zip$/i, "") +
      (zipPath.toLowerCase().endsWith(".zip") ? "" : ".d");
    if (!(await fs.stat(dir))?.isDirectory) {
      options.onStatus?.(`extracting ${zipPath} to ${dir}`);
      await extractZip(fs, await fs.readFile(zipPath), dir, {
        name: zipPath,
        maxTotalBytes: options.maxZipBytes,
      });
    }
    const opened = await openDataSource(directorySource(fs, dir), options.decode);
    return {
      ...opened,
      kind: "url",
      description: `${url} (${
        result.cached ? "cached" : "downloaded"
      } at ${zipPath}, extracted to ${dir})`,
    };
  }

  const info = await fs.stat(spec);
  if (!info) throw new Error(`${spec}: no such file or directory`);
  if (info.isDirectory) {
    return await openDataSource(directorySource(fs, spec), options.decode);
  }
  const bytes = await fs.readFile(spec);
  const zip = readZip(bytes, { name: spec, maxTotalBytes: options.maxZipBytes });
  return await openDataSource(zip, options.decode);
}

/**
 * Opens a data set laid out as `train/<class>/*` and `test/<class>/*` in any
 * {@linkcode FileSource}: a directory, a zip read with `readZip` (what the web page does with a
 * dropped file), ... The layout may sit inside a single top folder (`hotdog/train/...`).
 *
 * @example
 * ```ts ignore
 * import { openDataSource, readZip } from "@webtune/data";
 * const zip = readZip(new Uint8Array(await file.arrayBuffer()), { name: file.name });
 * const data = await openDataSource(zip);
 * ```
 */
export async function openDataSource(
  source: FileSource,
  decode: Omit<DecodeOptions, "name"> = {},
): Promise<DataSource> {
  const root = await findLayoutRoot(source);
  const tree = subSource(source, root);
  const trainListing = await scanImageFolder(tree, "train");
  const testListing = await scanImageFolder(tree, "test");
  const a = trainListing.classes, b = testListing.classes;
  if (a.length !== b.length || a.some((c, i) => c !== b[i])) {
    throw new LayoutError(
      `${tree.name}: train classes (${a.join(", ")}) differ from test classes (${b.join(", ")})`,
    );
  }
  return {
    kind: "entries" in source ? "zip" : "directory",
    description: tree.name,
    classes: a,
    train: folderImageSet(tree, trainListing, decode),
    test: folderImageSet(tree, testListing, decode),
  };
}

/** `""` if `train/` and `test/` are at the top, else the single top folder holding them. */
async function findLayoutRoot(source: FileSource): Promise<string> {
  const top = await source.readDir("");
  const dirs = top.filter((e) => e.isDirectory).map((e) => e.name);
  if (dirs.includes("train") && dirs.includes("test")) return "";
  // macOS zips add __MACOSX/; hidden folders are never the data.
  const candidates = dirs.filter((d) => d !== "__MACOSX" && !d.startsWith("."));
  if (candidates.length === 1) {
    const inner = (await source.readDir(candidates[0])).filter((e) => e.isDirectory).map((e) =>
      e.name
    );
    if (inner.includes("train") && inner.includes("test")) return candidates[0];
  }
  const found = top.map((e) => e.name + (e.isDirectory ? "/" : "")).slice(0, 8).join(" ");
  throw new LayoutError(
    `${source.name}: not in the hotdog layout (train/<class>/... and test/<class>/..., ` +
      `optionally inside one top folder); found: ${found || "nothing"}`,
  );
}

/** A cache file name for a URL: its last path segment plus a short hash of the whole URL. */
function urlFileName(url: string): string {
  const last = basename(new URL(url).pathname) || "download";
  const h = createHasher("sha1");
  h.update(new TextEncoder().encode(url));
  const tag = h.hex().slice(0, 8);
  const dot = last.lastIndexOf(".");
  return dot > 0 ? `${last.slice(0, dot)}-${tag}${last.slice(dot)}` : `${last}-${tag}`;
}
