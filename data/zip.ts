/**
 * Reading zip archives safely, in memory.
 *
 * fflate does the inflating, through its streaming `Inflate`. The central directory is parsed
 * here because fflate's `unzip`/`Unzip` do not expose what the safety checks need: the entries'
 * external attributes (a symlink is only visible there), every entry's sizes before anything is
 * inflated (so limits are checked up front), and a way to stop inflating an entry the moment it
 * outgrows its declared size (`unzip` inflates a whole entry into memory first, which a zip bomb
 * exploits).
 *
 * @module
 */
import { Inflate } from "fflate";
import type { DirEntry, FileSource } from "./fs.ts";
import { oneLine } from "./one_line.ts";

/**
 * A zip that is malformed, truncated, unsafe or too big. The message names the archive and is
 * one line (control characters in entry names are escaped).
 */
export class ZipError extends Error {
  /** The error's name. */
  override name = "ZipError";
  /** `message` is made one line with {@linkcode oneLine}. */
  constructor(message: string) {
    super(oneLine(message));
  }
}

/** One file or directory of an archive. */
export interface ZipEntry {
  /** The normalised path inside the archive, `/`-separated, no trailing `/`. */
  path: string;
  /** A folder entry. */
  isDirectory: boolean;
  /** Declared uncompressed size. */
  size: number;
  /** Size of the stored data. */
  compressedSize: number;
  /** 0 stored, 8 deflate. */
  method: number;
  /** CRC-32 of the uncompressed data. */
  crc32: number;
  /** Offset of the local file header. */
  offset: number;
}

/** Options for {@linkcode readZip}. */
export interface ReadZipOptions {
  /** The archive's name for messages. Default `"zip"`. */
  name?: string;
  /** Refuse archives whose entries declare more than this many bytes in all. Default 4 GiB. */
  maxTotalBytes?: number;
  /** Refuse an entry that declares more than this many bytes. Default 512 MiB. */
  maxEntryBytes?: number;
  /**
   * Refuse an entry larger than {@linkcode RATIO_GRACE_BYTES} that is more than this many times
   * its compressed size. Default 100 (as Apache POI's zip-bomb guard): JPEG and PNG files barely
   * compress, while a deflated run of zeros reaches 1000:1.
   */
  maxRatio?: number;
}

/** An archive checked by {@linkcode readZip}; also a {@linkcode FileSource} over its files. */
export interface ZipArchive extends FileSource {
  /** Every entry, vetted. */
  readonly entries: readonly ZipEntry[];
  /** Sum of the entries' declared sizes. */
  readonly totalBytes: number;
  /** Bytes inflated by `readFile` so far (all calls together); shows where a refused entry stopped. */
  readonly inflatedBytes: number;
}

/** Default cap on the declared uncompressed size of an archive. */
export const DEFAULT_MAX_ZIP_BYTES = 4 * 1024 ** 3;
/** Default cap on one entry's uncompressed size. */
export const DEFAULT_MAX_ENTRY_BYTES = 512 * 1024 ** 2;
/** Default cap on an entry's compression ratio (uncompressed / compressed). */
export const DEFAULT_MAX_RATIO = 100;
/** Entries up to this size are exempt from the ratio check (a small text file may compress well). */
export const RATIO_GRACE_BYTES = 1024 ** 2;

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
/**
 * The deflate input fed to fflate at a time. fflate inflates all of a pushed slice before its
 * callback sees the output, and deflate expands at most about 1032:1, so an entry whose data
 * outgrows its declared size is stopped within about 4 MiB of output.
 */
const INFLATE_SLICE = 4 * 1024;

/**
 * Parses and checks a zip archive held in memory. Every entry is vetted before anything is read:
 * paths that would escape the extraction directory (`..`, absolute paths, drive letters),
 * symlinks, encryption, unknown compression, entries past the end of the data, an entry
 * declaring more than `maxEntryBytes` or a compression ratio above `maxRatio`, and a declared
 * total above `maxTotalBytes` are refused with a {@linkcode ZipError}. Files are inflated on
 * `readFile`, streaming, into a buffer of the declared size: inflating stops as soon as an entry
 * outgrows its declared size (so the limits above hold for what is really inflated, whatever the
 * header says), and the CRC-32 is checked.
 *
 * @example
 * ```ts
 * import { zipSync } from "fflate";
 * import { readZip } from "@webtune/data";
 * const bytes = zipSync({ "hotdog/train/a.txt": new TextEncoder().encode("hi") });
 * const zip = readZip(bytes, { name: "demo.zip" });
 * console.log(zip.entries.map((e) => e.path)); // [ "hotdog/train/a.txt" ]
 * console.log(new TextDecoder().decode(await zip.readFile("hotdog/train/a.txt"))); // hi
 * ```
 */
export function readZip(bytes: Uint8Array, options: ReadZipOptions = {}): ZipArchive {
  const name = options.name ?? "zip";
  const maxTotal = options.maxTotalBytes ?? DEFAULT_MAX_ZIP_BYTES;
  const maxEntry = options.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  const maxRatio = options.maxRatio ?? DEFAULT_MAX_RATIO;
  const fail = (what: string): never => {
    throw new ZipError(`${name}: ${what}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (p: number) => view.getUint16(p, true);
  const u32 = (p: number) => view.getUint32(p, true);
  const u64 = (p: number) => Number(view.getBigUint64(p, true));

  // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
  let eocd = -1;
  for (let p = bytes.length - 22; p >= Math.max(0, bytes.length - 22 - 65535); p--) {
    if (u32(p) === EOCD && p + 22 + u16(p + 20) === bytes.length) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) fail("not a zip file, or truncated (no end-of-central-directory record)");
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== EOCD64_LOCATOR) {
      fail("zip64 end-of-central-directory locator missing");
    }
    const rec = u64(loc + 8);
    if (rec + 56 > bytes.length || u32(rec) !== EOCD64) {
      fail("zip64 record is missing or truncated");
    }
    count = u64(rec + 32);
    cdSize = u64(rec + 40);
    cdOffset = u64(rec + 48);
  }
  if (cdOffset + cdSize > bytes.length) {
    fail("truncated (central directory past the end of the data)");
  }

  const entries: ZipEntry[] = [];
  const utf8 = new TextDecoder("utf-8");
  const latin1 = new TextDecoder("latin1");
  let totalBytes = 0;
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > bytes.length || u32(p) !== CENTRAL) {
      fail(`central directory entry ${i} is corrupt`);
    }
    const madeBy = u16(p + 4) >> 8;
    const flags = u16(p + 8);
    const method = u16(p + 10);
    const crc32 = u32(p + 16);
    let compressedSize = u32(p + 20);
    let size = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    const external = u32(p + 38);
    let offset = u32(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > bytes.length) {
      fail(`central directory entry ${i} is truncated`);
    }
    const rawName = bytes.subarray(p + 46, p + 46 + nameLen);
    const entryName = (flags & 0x800 ? utf8 : latin1).decode(rawName);
    // Zip64 sizes live in extra field 0x0001, in this order, only for the fields that overflowed.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = u16(e), len = u16(e + 2);
      const fieldEnd = e + 4 + len;
      if (fieldEnd > extraEnd) fail(`entry ${entryName} has a corrupt extra field`);
      if (id === 0x0001) {
        let q = e + 4;
        const next = (): number => {
          if (q + 8 > fieldEnd) fail(`entry ${entryName} has a truncated zip64 extra field`);
          q += 8;
          return u64(q - 8);
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (offset === 0xffffffff) offset = next();
      }
      e = fieldEnd;
    }
    p = extraEnd + commentLen;

    const unixMode = madeBy === 3 || madeBy === 19 ? external >>> 16 : 0;
    if ((unixMode & S_IFMT) === S_IFLNK) fail(`entry ${entryName} is a symlink; refusing it`);
    const path = safePath(entryName, fail);
    const isDirectory = entryName.endsWith("/") || entryName.endsWith("\\") ||
      (unixMode & S_IFMT) === S_IFDIR || (external & 0x10) !== 0;
    if (path === "") {
      if (isDirectory) continue; // "./" entries
      fail(`entry ${JSON.stringify(entryName)} has an empty name`);
    }
    if (flags & 0x1) fail(`entry ${entryName} is encrypted`);
    if (!isDirectory && method !== 0 && method !== 8) {
      fail(
        `entry ${entryName} uses compression method ${method}; only stored and deflate are supported`,
      );
    }
    if (offset + 30 > cdOffset) fail(`entry ${entryName} starts past the file data (truncated?)`);
    if (!isDirectory && size > maxEntry) {
      fail(
        `entry ${entryName} declares ${size} bytes uncompressed, more than the ${maxEntry} ` +
          `allowed per entry; refusing it as a possible zip bomb`,
      );
    }
    if (!isDirectory && size > RATIO_GRACE_BYTES && size > maxRatio * compressedSize) {
      fail(
        `entry ${entryName} inflates ${compressedSize} bytes to ${size} (ratio ` +
          `${Math.round(size / Math.max(1, compressedSize))}:1, more than the ${maxRatio}:1 ` +
          `allowed); refusing it as a possible zip bomb`,
      );
    }
    totalBytes += size;
    if (totalBytes > maxTotal) {
      fail(
        `declares more than ${maxTotal} bytes uncompressed (entry ${entryName} brings it to ` +
          `${totalBytes}); refusing it as a possible zip bomb`,
      );
    }
    entries.push({ path, isDirectory, size, compressedSize, method, crc32, offset });
  }
  return makeArchive(name, bytes, entries, totalBytes, cdOffset);
}

/** Normalises an entry name, refusing any that would land outside the extraction directory. */
function safePath(raw: string, fail: (what: string) => never): string {
  if (raw.includes("\0")) fail(`entry ${JSON.stringify(raw)} has a NUL in its name`);
  if (/^[/\\]/.test(raw) || /^[A-Za-z]:/.test(raw)) {
    fail(`entry ${raw} has an absolute path; refusing it`);
  }
  const parts: string[] = [];
  for (const part of raw.split(/[/\\]/)) {
    if (part === "" || part === ".") continue;
    if (part === "..") fail(`entry ${raw} would escape the target directory; refusing it`);
    parts.push(part);
  }
  return parts.join("/");
}

function makeArchive(
  name: string,
  bytes: Uint8Array,
  entries: ZipEntry[],
  totalBytes: number,
  dataEnd: number,
): ZipArchive {
  const files = new Map<string, ZipEntry>();
  // Directory path -> children; implied parents of files count as directories.
  const dirs = new Map<string, Map<string, DirEntry>>([["", new Map()]]);
  const addDir = (path: string) => {
    if (dirs.has(path)) return;
    const cut = path.lastIndexOf("/");
    const parent = cut < 0 ? "" : path.slice(0, cut);
    addDir(parent);
    dirs.get(parent)!.set(path.slice(cut + 1), {
      name: path.slice(cut + 1),
      isFile: false,
      isDirectory: true,
      isSymlink: false,
    });
    dirs.set(path, new Map());
  };
  for (const entry of entries) {
    if (entry.isDirectory) {
      addDir(entry.path);
      continue;
    }
    const cut = entry.path.lastIndexOf("/");
    const parent = cut < 0 ? "" : entry.path.slice(0, cut);
    addDir(parent);
    const base = entry.path.slice(cut + 1);
    if (dirs.has(entry.path)) {
      throw new ZipError(`${name}: ${entry.path} is both a file and a folder`);
    }
    dirs.get(parent)!.set(base, { name: base, isFile: true, isDirectory: false, isSymlink: false });
    files.set(entry.path, entry);
  }
  const norm = (path: string) => path.split("/").filter((s) => s !== "" && s !== ".").join("/");
  let inflatedBytes = 0;
  const count = (n: number) => {
    inflatedBytes += n;
  };
  return {
    name,
    entries,
    totalBytes,
    get inflatedBytes() {
      return inflatedBytes;
    },
    readDir(path: string): Promise<DirEntry[]> {
      const children = dirs.get(norm(path));
      if (!children) return Promise.reject(new ZipError(`${name}: no folder ${path}`));
      return Promise.resolve([...children.values()]);
    },
    readFile(path: string): Promise<Uint8Array> {
      const entry = files.get(norm(path));
      if (!entry) return Promise.reject(new ZipError(`${name}: no file ${path}`));
      try {
        return Promise.resolve(readEntry(name, bytes, entry, dataEnd, count));
      } catch (e) {
        return Promise.reject(e);
      }
    },
  };
}

function readEntry(
  name: string,
  bytes: Uint8Array,
  entry: ZipEntry,
  dataEnd: number,
  onInflated: (bytes: number) => void,
): Uint8Array {
  const where = `${name}: entry ${entry.path}`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(entry.offset, true) !== LOCAL) {
    throw new ZipError(`${where} has no local header (corrupt archive)`);
  }
  const start = entry.offset + 30 + view.getUint16(entry.offset + 26, true) +
    view.getUint16(entry.offset + 28, true);
  if (start + entry.compressedSize > dataEnd) {
    throw new ZipError(`${where} runs past the end of the file data (truncated archive)`);
  }
  const data = bytes.subarray(start, start + entry.compressedSize);
  let out: Uint8Array;
  if (entry.method === 0) {
    if (entry.compressedSize !== entry.size) throw new ZipError(`${where}: stored sizes disagree`);
    out = data.slice();
  } else {
    // The declared size is safe to allocate: readZip capped it per entry and by the compression
    // ratio against the compressed bytes really present. Output past it stops inflating.
    out = new Uint8Array(entry.size);
    let pos = 0;
    let ended = false;
    const inflater = new Inflate((chunk, final) => {
      onInflated(chunk.length);
      if (pos + chunk.length > entry.size) {
        throw new ZipError(`${where} inflates past its declared ${entry.size} bytes (zip bomb?)`);
      }
      out.set(chunk, pos);
      pos += chunk.length;
      if (final) ended = true;
    });
    try {
      if (data.length === 0) inflater.push(data, true);
      for (let off = 0; off < data.length; off += INFLATE_SLICE) {
        const end = Math.min(off + INFLATE_SLICE, data.length);
        inflater.push(data.subarray(off, end), end === data.length);
      }
    } catch (e) {
      if (e instanceof ZipError) throw e;
      throw new ZipError(`${where}: corrupt deflate data (${(e as Error).message})`);
    }
    if (!ended || pos !== entry.size) {
      throw new ZipError(
        `${where}: inflated ${pos} bytes, expected ${entry.size} (corrupt archive)`,
      );
    }
  }
  if (crc32(out) !== entry.crc32) throw new ZipError(`${where}: CRC-32 mismatch (corrupt archive)`);
  return out;
}

let crcTable: Int32Array | undefined;

/** CRC-32 (IEEE), as zip uses; fflate does not export its own. */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  const table = crcTable;
  let crc = -1;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}
