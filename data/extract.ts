/**
 * Extracting a checked zip archive to disk.
 *
 * @module
 */
import { basename, dirname, type FileSystem, joinPath } from "./fs.ts";
import { readZip, type ReadZipOptions, type ZipArchive } from "./zip.ts";

/** Options for {@linkcode extractZip}. */
export interface ExtractOptions extends ReadZipOptions {
  /** Called after each file is written. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Extracts `zip` (bytes, or an archive from {@linkcode readZip}) into the new directory `dest`.
 *
 * Every entry is checked by {@linkcode readZip} before anything is written (no `..`, absolute
 * paths or symlinks; capped sizes per entry and in total, and a capped compression ratio; each
 * entry stops inflating as soon as it passes its declared size, so the caps hold for what is
 * really inflated).
 * Files go to a temporary directory beside `dest` that is renamed to `dest` only when all of
 * them are written, so `dest` exists only complete; on any error the temporary directory is
 * removed. Fails if `dest` already exists. Returns the number of files written.
 *
 * @example
 * ```ts ignore
 * import { extractZip } from "@webtune/data";
 * import { denoFs } from "@webtune/data/deno_fs";
 * const bytes = await Deno.readFile("/tmp/webtune/hotdog.zip");
 * await extractZip(denoFs, bytes, "/tmp/webtune/hotdog", { name: "hotdog.zip" });
 * ```
 */
export async function extractZip(
  fs: FileSystem,
  zip: Uint8Array | ZipArchive,
  dest: string,
  options: ExtractOptions = {},
): Promise<number> {
  const archive = zip instanceof Uint8Array ? readZip(zip, options) : zip;
  if (await fs.stat(dest)) throw new Error(`${dest}: already exists; not extracting over it`);
  const parent = dirname(dest);
  await fs.mkdir(parent);
  const tmp = joinPath(parent, `.${basename(dest)}.${Math.random().toString(36).slice(2)}.partial`);
  const files = archive.entries.filter((e) => !e.isDirectory);
  try {
    await fs.mkdir(tmp);
    const made = new Set<string>();
    for (const entry of archive.entries) {
      if (entry.isDirectory) {
        await fs.mkdir(joinPath(tmp, entry.path));
        made.add(entry.path);
      }
    }
    let done = 0;
    for (const entry of files) {
      const dir = dirname(entry.path);
      if (dir !== "." && !made.has(dir)) {
        await fs.mkdir(joinPath(tmp, dir));
        made.add(dir);
      }
      await fs.writeFile(joinPath(tmp, entry.path), await archive.readFile(entry.path));
      options.onProgress?.(++done, files.length);
    }
    await fs.rename(tmp, dest);
    return files.length;
  } catch (e) {
    await fs.remove(tmp, { recursive: true });
    throw e;
  }
}
