/**
 * Helpers shared by the data package's tests (not exported from `mod.ts`).
 *
 * @module
 */

/** `../shared` beside the repository, found from this file so tests work from any directory. */
export const SHARED = new URL("../../shared/", import.meta.url);

/** Path of something in `../shared`, e.g. `shared("datasets/hotdog-mini")`. */
export function shared(path: string): string {
  return new URL(path, SHARED).pathname;
}

/** Whether `../shared` is there; prints the reason once when it is not. */
export const HAVE_SHARED: boolean = (() => {
  try {
    Deno.statSync(SHARED);
    return true;
  } catch {
    console.log(`skipping tests that need ../shared: ${SHARED.pathname} does not exist`);
    return false;
  }
})();

/** The hotdog-mini data set's root. */
export const HOTDOG_MINI: string = shared("datasets/hotdog-mini");

/** A temporary directory removed when the returned object is disposed. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "webtune-data-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** SHA-256 hex of bytes, with Web Crypto (tests check our hasher against it). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Writes `files` (relative path → bytes) under `root`, creating folders. */
export async function writeTree(root: string, files: Record<string, Uint8Array>): Promise<void> {
  for (const [path, bytes] of Object.entries(files)) {
    const full = `${root}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(full, bytes);
  }
}
