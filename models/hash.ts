/**
 * Download integrity as torchvision checks it.
 *
 * @module
 */

/**
 * Throws unless the SHA-256 of `bytes` starts with `hashPrefix`: torchvision names its files
 * `<name>-<first 8 hex digits of sha256>.pth` and `load_state_dict_from_url(check_hash=True)`
 * compares that prefix. Uses Web Crypto, so it runs in a browser too.
 *
 * @example
 * ```ts
 * import { RESNET18_IMAGENET, verifyHashPrefix } from "@webtune/models";
 * const bytes = new Uint8Array(await (await fetch(RESNET18_IMAGENET.url)).arrayBuffer());
 * await verifyHashPrefix(bytes, RESNET18_IMAGENET.hashPrefix, "resnet18-f37072fd.pth");
 * ```
 */
export async function verifyHashPrefix(
  bytes: Uint8Array,
  hashPrefix: string,
  fileName: string,
): Promise<void> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  if (!hex.startsWith(hashPrefix.toLowerCase())) {
    throw new Error(
      `${fileName}: SHA-256 ${hex.slice(0, 16)}… does not start with ${hashPrefix} ` +
        "(corrupt or incomplete download?)",
    );
  }
}

/**
 * The SHA-256 prefix a torchvision-style file name carries (`<name>-<8+ hex digits>.pth`), or
 * `undefined` for other names: what {@linkcode verifyHashPrefix} checks against.
 *
 * @example
 * ```ts
 * import { torchvisionHashPrefix } from "@webtune/models";
 * console.log(torchvisionHashPrefix("resnet18-f37072fd.pth")); // f37072fd
 * ```
 */
export function torchvisionHashPrefix(fileName: string): string | undefined {
  return fileName.match(/-([0-9a-f]{8,})\.pth$/)?.[1];
}
