/**
 * Source weights by URL: downloaded in the page with the data package's `download` (the CLI's
 * code: streamed, hash-checked, retried) into memory, checked against the SHA-256 prefix a
 * torchvision file name carries, as `deno task finetune --weights URL` does.
 *
 * @module
 */
import { download, type DownloadProgress } from "@webtune/data";
import { torchvisionHashPrefix } from "@webtune/models";
import { memoryFs } from "./memory_fs.ts";

/** The host answered nothing the page may read: CORS refused, or it is unreachable. */
export class UnreachableError extends Error {
  override name = "UnreachableError";
}

/** Options for {@linkcode fetchWeights}. */
export interface FetchWeightsOptions {
  onProgress?: (progress: DownloadProgress) => void;
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/**
 * Downloads a checkpoint; resolves to its file name and bytes. A digest that does not match
 * the name's hash prefix rejects with the data package's `ChecksumError`; a host that refuses
 * cross-origin requests (or cannot be reached) rejects with {@linkcode UnreachableError}, whose
 * one-line message says to download the file and pick it instead.
 *
 * @example
 * ```ts ignore
 * const { name, bytes } = await fetchWeights(RESNET18_IMAGENET.url, {
 *   onProgress: (p) => console.log(p.received, p.total),
 * });
 * ```
 */
export async function fetchWeights(
  url: string,
  options: FetchWeightsOptions = {},
): Promise<{ name: string; bytes: Uint8Array }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${url}: not a URL`);
  }
  const name = parsed.pathname.split("/").pop() || "weights.pth";
  const prefix = torchvisionHashPrefix(name);
  const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  // A browser reports a CORS refusal as a bare network error, indistinguishable from an
  // unreachable host; either way nothing was received and only the file picker is left.
  let refused = false, received = 0;
  const watched: typeof fetch = async (input, init) => {
    try {
      return await fetchFn(input, init);
    } catch (e) {
      refused = received === 0;
      throw e;
    }
  };
  const fs = memoryFs();
  try {
    await download(url, `/${name}`, {
      fs,
      fetch: watched,
      checksum: prefix ? { algorithm: "sha256", hex: prefix } : undefined,
      onProgress: (p) => {
        received = p.received;
        options.onProgress?.(p);
      },
      retries: 2,
      retryDelayMs: 200,
    });
  } catch (e) {
    // The data package's ChecksumError (by name: data exports download, not its errors).
    if (refused && !(e instanceof Error && e.name === "ChecksumError")) {
      throw new UnreachableError(
        `${parsed.host} does not let web pages download its files (a cross-origin request ` +
          `refused), or cannot be reached: download ${name} yourself and pick it below.`,
      );
    }
    throw e;
  }
  return { name, bytes: await fs.readFile(`/${name}`) };
}
