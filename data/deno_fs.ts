/**
 * The Deno adapter for {@linkcode FileSystem}: the only file in the data package that uses
 * `Deno.*`. The CLI imports it; the browser build never does.
 *
 * @example
 * ```ts ignore
 * import { denoFs } from "@webtune/data/deno_fs";
 * console.log(await denoFs.stat("/tmp"));
 * ```
 *
 * @module
 */
import type { DirEntry, FileInfo, FileSystem, FileWriter } from "./fs.ts";

export type { FileSystem } from "./fs.ts";

/** {@linkcode FileSystem} on the local disk through Deno's APIs. */
export const denoFs: FileSystem = {
  async stat(path: string): Promise<FileInfo | undefined> {
    try {
      const info = await Deno.stat(path);
      return { isFile: info.isFile, isDirectory: info.isDirectory, size: info.size };
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
  },

  async readDir(path: string): Promise<DirEntry[]> {
    const entries: DirEntry[] = [];
    for await (const e of Deno.readDir(path)) {
      let { isFile, isDirectory } = e;
      if (e.isSymlink) {
        // Follow symlinks like torchvision's os.walk(followlinks=True) and os.scandir().is_dir().
        try {
          const target = await Deno.stat(`${path}/${e.name}`);
          isFile = target.isFile;
          isDirectory = target.isDirectory;
        } catch {
          // A dangling link is neither.
        }
      }
      entries.push({ name: e.name, isFile, isDirectory, isSymlink: e.isSymlink });
    }
    return entries;
  },

  readFile: (path: string) => Deno.readFile(path),

  async *readChunks(path: string): AsyncIterable<Uint8Array> {
    using file = await Deno.open(path, { read: true });
    for await (const chunk of file.readable) yield chunk;
  },

  async openWrite(path: string, options?: { append?: boolean }): Promise<FileWriter> {
    const file = await Deno.open(path, {
      write: true,
      create: true,
      append: options?.append ?? false,
      truncate: !options?.append,
    });
    return {
      async write(chunk: Uint8Array) {
        let off = 0;
        while (off < chunk.length) off += await file.write(chunk.subarray(off));
      },
      close: () => Promise.resolve(file.close()),
    };
  },

  writeFile: (path: string, data: Uint8Array) => Deno.writeFile(path, data),

  mkdir: (path: string) => Deno.mkdir(path, { recursive: true }),

  rename: (from: string, to: string) => Deno.rename(from, to),

  async remove(path: string, options?: { recursive?: boolean }): Promise<void> {
    try {
      await Deno.remove(path, { recursive: options?.recursive ?? false });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  },
};

/**
 * Reads an environment variable, or `undefined` where env access is not granted. Passed to
 * {@linkcode defaultCacheDir} by the CLI.
 */
export function denoEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
