/**
 * The file-system interfaces the data package reads and writes through.
 *
 * The data package runs unchanged in Deno and in a browser, so it never calls `Deno.*` itself:
 * the CLI passes {@linkcode denoFs} (from `deno_fs.ts`), and the web page passes a zip the user
 * dropped ({@linkcode readZip} gives a {@linkcode FileSource}).
 *
 * Paths use `/` as the separator on every platform.
 *
 * @module
 */

/** One entry of a directory listing. Symlinks report what they point to in `isFile`/`isDirectory`. */
export interface DirEntry {
  /** The entry's name, without its folder. */
  name: string;
  /** A file, or a symlink to one. */
  isFile: boolean;
  /** A folder, or a symlink to one. */
  isDirectory: boolean;
  /** The entry itself is a symlink. */
  isSymlink: boolean;
}

/**
 * A read-only tree of files: a directory on disk, a zip in memory, a folder dropped on a page.
 * Paths are relative to the tree's root; `""` is the root.
 */
export interface FileSource {
  /** What to call the tree in messages, e.g. `/data/hotdog` or `hotdog.zip`. */
  readonly name: string;
  /** Lists a directory; rejects if it does not exist. */
  readDir(path: string): Promise<DirEntry[]>;
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array>;
}

/** What {@linkcode FileSystem.stat} reports. */
export interface FileInfo {
  /** A regular file. */
  isFile: boolean;
  /** A folder. */
  isDirectory: boolean;
  /** Size in bytes. */
  size: number;
}

/** A file being written; chunks are written in order. */
export interface FileWriter {
  /** Appends `chunk` (all of it). */
  write(chunk: Uint8Array): Promise<void>;
  /** Closes the file. */
  close(): Promise<void>;
}

/** A writable file system addressed by absolute paths (downloads and extraction need one). */
export interface FileSystem {
  /** `undefined` if nothing exists at `path`. Follows symlinks. */
  stat(path: string): Promise<FileInfo | undefined>;
  /** Lists a folder. */
  readDir(path: string): Promise<DirEntry[]>;
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array>;
  /** Streams a file's bytes. */
  readChunks(path: string): AsyncIterable<Uint8Array>;
  /** Creates (truncates) a file, or appends to it with `append`. */
  openWrite(path: string, options?: { append?: boolean }): Promise<FileWriter>;
  /** Creates (truncates) a file with `data`. */
  writeFile(path: string, data: Uint8Array): Promise<void>;
  /** Creates a directory and its parents; no error if it exists. */
  mkdir(path: string): Promise<void>;
  /** Renames atomically within one file system. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file, or a directory with `recursive`; no error if it does not exist. */
  remove(path: string, options?: { recursive?: boolean }): Promise<void>;
}

/**
 * Joins path parts with `/`, dropping empty parts and doubled separators.
 *
 * @example
 * ```ts
 * import { joinPath } from "@webtune/data";
 * console.log(joinPath("/cache/", "hotdog", "train")); // /cache/hotdog/train
 * ```
 */
export function joinPath(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join("/");
  return joined.replace(/\/{2,}/g, "/");
}

/** The last path component: `basename("a/b/c.zip")` is `c.zip`. */
export function basename(path: string): string {
  const trimmed = path.replace(/[/\\]+$/, "");
  const i = Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\"));
  return trimmed.slice(i + 1);
}

/** Everything before the last path component: `dirname("a/b/c.zip")` is `a/b`. */
export function dirname(path: string): string {
  const trimmed = path.replace(/[/\\]+$/, "");
  const i = Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\"));
  if (i < 0) return ".";
  return i === 0 ? trimmed.slice(0, 1) : trimmed.slice(0, i);
}

/**
 * A {@linkcode FileSource} over the directory `root` of a {@linkcode FileSystem}.
 *
 * @example
 * ```ts ignore
 * import { directorySource } from "@webtune/data";
 * import { denoFs } from "@webtune/data/deno_fs";
 * const source = directorySource(denoFs, "../shared/datasets/hotdog-mini");
 * console.log((await source.readDir("train")).map((e) => e.name));
 * ```
 */
export function directorySource(fs: FileSystem, root: string): FileSource {
  return {
    name: root,
    readDir: (path) => fs.readDir(joinPath(root, path)),
    readFile: (path) => fs.readFile(joinPath(root, path)),
  };
}

/** The subtree `prefix` of `source` as a source of its own. */
export function subSource(source: FileSource, prefix: string): FileSource {
  if (prefix === "") return source;
  return {
    name: joinPath(source.name, prefix),
    readDir: (path) => source.readDir(joinPath(prefix, path)),
    readFile: (path) => source.readFile(joinPath(prefix, path)),
  };
}
