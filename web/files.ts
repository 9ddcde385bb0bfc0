/**
 * Browser files as the data package's {@linkcode FileSource}: a folder picked with
 * `webkitdirectory` or dropped on the page (see `drop.ts`). A `.zip` goes through `readZip`
 * instead. Uses only `Blob`/`File`, so Deno tests it too.
 *
 * @module
 */
import type { DirEntry, FileSource } from "@webtune/data";

/** A file and its path inside the picked or dropped folder (`/`-separated). */
export interface PathFile {
  path: string;
  file: File;
}

/** The bytes of a browser file. */
export async function fileBytes(file: Blob): Promise<Uint8Array> {
  return new Uint8Array(await file.arrayBuffer());
}

/**
 * A read-only {@linkcode FileSource} over files with relative paths. Directories are implied by
 * the paths, as in a zip; files are read only when asked for, so a big folder costs nothing
 * until its images are decoded.
 */
export function filesSource(name: string, files: readonly PathFile[]): FileSource {
  const byPath = new Map<string, File>();
  const dirs = new Map<string, Map<string, DirEntry>>([["", new Map()]]);
  for (const { path, file } of files) {
    const parts = path.split("/").filter(Boolean);
    byPath.set(parts.join("/"), file);
    for (let i = 0; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!dirs.has(dir)) dirs.set(dir, new Map());
      const isFile = i === parts.length - 1;
      dirs.get(dir)!.set(parts[i], {
        name: parts[i],
        isFile,
        isDirectory: !isFile,
        isSymlink: false,
      });
    }
  }
  const clean = (path: string) => path.split("/").filter(Boolean).join("/");
  return {
    name,
    readDir(path) {
      const entries = dirs.get(clean(path));
      if (!entries) return Promise.reject(new Error(`${name}/${path}: no such folder`));
      return Promise.resolve([...entries.values()]);
    },
    readFile(path) {
      const file = byPath.get(clean(path));
      if (!file) return Promise.reject(new Error(`${name}/${path}: no such file`));
      return fileBytes(file);
    },
  };
}
