/**
 * Downloads a file into a cache, checked against a known hash.
 *
 * Generic on purpose: the data set (`hotdog.zip`, SHA-1) and the torchvision checkpoint
 * (`resnet18-f37072fd.pth`, SHA-256 prefix) both come through here.
 *
 * @module
 */
import { createHasher, type HashAlgorithm, type Hasher } from "./hash.ts";
import { basename, dirname, type FileSystem, type FileWriter } from "./fs.ts";

/** An expected digest: the full hex digest, or a prefix of at least 8 hex digits. */
export interface Checksum {
  /** The hash function. */
  algorithm: HashAlgorithm;
  /** Expected digest in hex: all of it, or its first 8 or more digits. */
  hex: string;
}

/** What {@linkcode DownloadOptions.onProgress} receives, once per chunk received. */
export interface DownloadProgress {
  /** The URL being downloaded. */
  url: string;
  /** Bytes of the file received so far (counting bytes kept from earlier attempts). */
  received: number;
  /** The file's size if the server said; `undefined` otherwise. */
  total: number | undefined;
  /** 1 for the first request, 2 after the first retry, ... */
  attempt: number;
}

/** Options for {@linkcode download}. */
export interface DownloadOptions {
  /** Where to write: `denoFs` in the CLI. */
  fs: FileSystem;
  /** Checked on the downloaded bytes and on a cached file before it is reused. */
  checksum?: Checksum;
  /** Called as bytes arrive; the CLI draws a progress bar from it. */
  onProgress?: (progress: DownloadProgress) => void;
  /** How many times a dropped connection or a 5xx answer is retried. Default 3. */
  retries?: number;
  /** Wait before retry `n` is `retryDelayMs * n` milliseconds. Default 500. */
  retryDelayMs?: number;
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Appended to the error when the host cannot be reached, e.g. "pass --data DIR|ZIP". */
  offlineHint?: string;
}

/** What {@linkcode download} did. */
export interface DownloadResult {
  /** The destination path. */
  path: string;
  /** Its size in bytes. */
  size: number;
  /** Its digest (full hex) in the checksum's algorithm, or SHA-256 if none was given. */
  hex: string;
  /** True if a good file was already there and nothing was requested. */
  cached: boolean;
}

/** A download failed: unreachable host, HTTP error, connection dropped too often. */
export class DownloadError extends Error {
  /** The error's name. */
  override name = "DownloadError";
}

/** The bytes did not hash to the expected digest; the file has been deleted. */
export class ChecksumError extends DownloadError {
  /** The error's name. */
  override name = "ChecksumError";
}

/** True if `hex` (a full digest) matches `checksum` (a full digest or a prefix of one). */
export function checksumMatches(hex: string, checksum: Checksum): boolean {
  const want = checksum.hex.toLowerCase();
  if (!/^[0-9a-f]{8,}$/.test(want)) {
    throw new RangeError(`checksum ${checksum.hex} must be at least 8 hex digits`);
  }
  return hex.toLowerCase().startsWith(want);
}

/**
 * Downloads `url` to `dest` unless a file with the right checksum is already there.
 *
 * The body streams to a temporary file beside `dest` while it is hashed; only a complete file
 * with the right digest is renamed to `dest`, so `dest` is never partial. A connection that drops
 * mid-body is retried, resuming with an HTTP `Range` request when the server allows it. A digest
 * mismatch deletes the download and throws {@linkcode ChecksumError}; an unreachable host throws
 * {@linkcode DownloadError} naming the URL.
 *
 * @example
 * ```ts ignore
 * import { download, HOTDOG } from "@webtune/data";
 * import { denoFs } from "@webtune/data/deno_fs";
 * const { path, cached } = await download(HOTDOG.url, "/tmp/webtune/hotdog.zip", {
 *   fs: denoFs,
 *   checksum: HOTDOG.checksum,
 *   onProgress: (p) => console.log(p.received, p.total),
 * });
 * ```
 */
export async function download(
  url: string,
  dest: string,
  options: DownloadOptions,
): Promise<DownloadResult> {
  const { fs, checksum } = options;
  const algorithm: HashAlgorithm = checksum?.algorithm ?? "sha256";
  if (checksum) checksumMatches("", checksum); // throws early on a malformed checksum

  const existing = await fs.stat(dest);
  if (existing?.isFile) {
    const hasher = createHasher(algorithm);
    for await (const chunk of fs.readChunks(dest)) hasher.update(chunk);
    const hex = hasher.hex();
    if (!checksum || checksumMatches(hex, checksum)) {
      return { path: dest, size: existing.size, hex, cached: true };
    }
    // A stale or damaged cache entry: fetch it again, as d2l's download() does.
    await fs.remove(dest);
  }

  await fs.mkdir(dirname(dest));
  const tmp = `${dirname(dest)}/.${basename(dest)}.${randomSuffix()}.part`;
  try {
    const { size, hex } = await fetchToFile(url, tmp, algorithm, options);
    if (checksum && !checksumMatches(hex, checksum)) {
      await fs.remove(tmp);
      throw new ChecksumError(
        `${url}: ${algorithm} of the download is ${hex}, expected ${checksum.hex}; ` +
          `deleted the downloaded file`,
      );
    }
    await fs.rename(tmp, dest);
    return { path: dest, size, hex, cached: false };
  } finally {
    await fs.remove(tmp);
  }
}

async function fetchToFile(
  url: string,
  tmp: string,
  algorithm: HashAlgorithm,
  options: DownloadOptions,
): Promise<{ size: number; hex: string }> {
  const fetchFn = options.fetch ?? globalThis.fetch;
  const retries = options.retries ?? 3;
  const delayMs = options.retryDelayMs ?? 500;
  const hint = options.offlineHint ? `; ${options.offlineHint}` : "";
  let hasher: Hasher = createHasher(algorithm);
  let writer: FileWriter = await options.fs.openWrite(tmp);
  let received = 0;
  let total: number | undefined;
  try {
    for (let attempt = 1;; attempt++) {
      const retry = async (why: string) => {
        if (attempt > retries) {
          throw new DownloadError(`${url}: ${why}; gave up after ${attempt} attempts${hint}`);
        }
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs * attempt));
      };
      let response: Response;
      try {
        response = await fetchFn(url, {
          headers: received > 0 ? { Range: `bytes=${received}-` } : {},
        });
      } catch (e) {
        if (received === 0) {
          // Nothing came through at all: the host is unreachable or we are offline.
          throw new DownloadError(`cannot download ${url}: ${oneLine(e)}${hint}`);
        }
        await retry(`reconnecting failed (${oneLine(e)})`);
        continue;
      }

      if (response.status === 206 && received > 0) {
        const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(
          response.headers.get("content-range") ?? "",
        );
        if (!range || Number(range[1]) !== received) {
          await response.body?.cancel();
          throw new DownloadError(`${url}: the server resumed at the wrong offset`);
        }
        if (range[2] !== "*") total = Number(range[2]);
      } else if (response.status === 200) {
        if (received > 0) {
          // The server ignored the Range request: start over.
          await writer.close();
          writer = await options.fs.openWrite(tmp);
          hasher = createHasher(algorithm);
          received = 0;
        }
        const length = response.headers.get("content-length");
        const encoded = response.headers.get("content-encoding");
        total = length !== null && !encoded ? Number(length) : undefined;
      } else {
        await response.body?.cancel();
        const why = `HTTP ${response.status} ${response.statusText}`.trim();
        if (response.status >= 500) {
          await retry(why);
          continue;
        }
        throw new DownloadError(`cannot download ${url}: ${why}`);
      }

      if (!response.body) throw new DownloadError(`${url}: the response has no body`);
      try {
        for await (const chunk of response.body) {
          await writer.write(chunk);
          hasher.update(chunk);
          received += chunk.length;
          options.onProgress?.({ url, received, total, attempt });
        }
      } catch (e) {
        await retry(
          `connection dropped after ${received} of ${total ?? "?"} bytes (${oneLine(e)})`,
        );
        continue;
      }
      if (total !== undefined && received < total) {
        await retry(`connection closed after ${received} of ${total} bytes`);
        continue;
      }
      return { size: received, hex: hasher.hex() };
    }
  } finally {
    await writer.close().catch(() => {});
  }
}

function oneLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.split("\n")[0];
}

function randomSuffix(): string {
  return Math.floor(Math.random() * 2 ** 32).toString(36);
}
