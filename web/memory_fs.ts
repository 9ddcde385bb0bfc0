/**
 * A {@linkcode FileSystem} held in memory, so the page can use the data package's `download`
 * (streamed hash check, retries, resume) exactly as the CLI does, with no disk to write to.
 *
 * @module
 */
import type { DirEntry, FileSystem } from "@webtune/data";

/**
 * An empty in-memory file system. Folders exist implicitly; a file is its list of chunks until
 * it is read whole.
 *
 * @example
 * ```ts
 * import { memoryFs } from "./memory_fs.ts";
 * const fs = memoryFs();
 * await fs.writeFile("/a/b.bin", new Uint8Array([1, 2]));
 * console.log((await fs.stat("/a/b.bin"))?.size); // 2
 * ```
 */
export function memoryFs(): FileSystem {
  const files = new Map<string, Uint8Array[]>();
  const size = (chunks: Uint8Array[]) => chunks.reduce((n, c) => n + c.length, 0);
  const whole = (path: string): Uint8Array => {
    const chunks = files.get(path);
    if (!chunks) throw new Error(`${path}: no such file`);
    if (chunks.length !== 1) {
      const out = new Uint8Array(size(chunks));
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      files.set(path, [out]);
    }
    return files.get(path)![0];
  };
  const isDir = (path: string) => [...files.keys()].some((f) => f.startsWith(`${path}/`));
  return {
    stat(path) {
      const chunks = files.get(path);
      if (chunks) return Promise.resolve({ isFile: true, isDirectory: false, size: size(chunks) });
      return Promise.resolve(
        isDir(path) ? { isFile: false, isDirectory: true, size: 0 } : undefined,
      );
    },
    readDir(path) {
      const names = new Map<string, DirEntry>();
      for (const f of files.keys()) {
        if (!f.startsWith(`${path}/`)) continue;
        const [name, ...rest] = f.slice(path.length + 1).split("/");
        names.set(name, {
          name,
          isFile: rest.length === 0,
          isDirectory: rest.length > 0,
          isSymlink: false,
        });
      }
      return Promise.resolve([...names.values()]);
    },
    readFile: (path) => Promise.resolve().then(() => whole(path)),
    async *readChunks(path) {
      yield whole(path);
    },
    openWrite(path, options) {
      const chunks: Uint8Array[] = options?.append ? files.get(path) ?? [] : [];
      files.set(path, chunks);
      return Promise.resolve({
        write(chunk: Uint8Array) {
          // The caller may reuse its buffer: keep a copy.
          chunks.push(chunk.slice());
          return Promise.resolve();
        },
        close: () => Promise.resolve(),
      });
    },
    writeFile(path, data) {
      files.set(path, [data.slice()]);
      return Promise.resolve();
    },
    mkdir: () => Promise.resolve(),
    rename(from, to) {
      const chunks = files.get(from);
      if (!chunks) return Promise.reject(new Error(`${from}: no such file`));
      files.delete(from);
      files.set(to, chunks);
      return Promise.resolve();
    },
    remove(path, options) {
      files.delete(path);
      if (options?.recursive) {
        for (const f of [...files.keys()]) if (f.startsWith(`${path}/`)) files.delete(f);
      }
      return Promise.resolve();
    },
  };
}
