/**
 * Where a command's data and weights come from: local paths, URLs downloaded into the cache
 * (hash-checked), or the chapter's defaults.
 *
 * @module
 */
import {
  type DataSource,
  defaultCacheDir,
  download,
  type DownloadProgress,
  resolveDataSource,
} from "@webtune/data";
import { denoEnv, denoFs } from "@webtune/data/deno_fs";
import {
  PRETRAINED_CONFIGS,
  readWeights,
  type StateDict,
  torchvisionHashPrefix,
  verifyHashPrefix,
} from "@webtune/models";
import { formatProgress } from "./format_progress.ts";

/** The cache directory: `$WEBTUNE_CACHE`, else `$XDG_CACHE_HOME/webtune`, else `~/.cache/webtune`. */
export function cacheDir(): string {
  return defaultCacheDir(denoEnv);
}

/** {@linkcode cacheDir}, or undefined where there is none (no HOME): only downloads need it. */
function tryCacheDir(): string | undefined {
  try {
    return cacheDir();
  } catch {
    return undefined;
  }
}

/** Draws a download bar on stderr when it is a terminal; prints nothing otherwise. */
function downloadBar(): (p: DownloadProgress) => void {
  if (!Deno.stderr.isTerminal()) return () => {};
  const encoder = new TextEncoder();
  return (p) =>
    Deno.stderr.writeSync(
      encoder.encode(`\r\x1b[2Kdownloading ${p.url} ${formatProgress(p.received, p.total)}`),
    );
}

/**
 * Resolves `--data` (dir, zip, URL, `synthetic`, or `hotdog` = d2l's download); errors about
 * the source name the flag. `cache` overrides the cache directory.
 */
export async function openData(
  spec: string,
  seed: number,
  log: (line: string) => void,
  cache?: string,
): Promise<DataSource> {
  try {
    return await resolveDataSource(spec, {
      fs: denoFs,
      cacheDir: cache ?? tryCacheDir(),
      seed,
      onDownloadProgress: downloadBar(),
      onStatus: log,
      offlineHint: "check the network, or pass --data DIR|ZIP with a local copy of the data " +
        "(a folder with train/<class>/ and test/<class>/, or a .zip of one), or --data synthetic",
    });
  } catch (e) {
    // data names the source it could not read; the shell says which flag gave it.
    if (e instanceof Error && e.message.startsWith(`${spec}: `)) e.message = `--data ${e.message}`;
    throw e;
  }
}

/**
 * Reads `--weights`: a local `.pth`/`.safetensors`, or a URL downloaded into the cache. The
 * torchvision URLs of the pretrained configs are checked against their SHA-256 prefix, as
 * torchvision does.
 */
export async function openWeights(spec: string, log: (line: string) => void): Promise<StateDict> {
  let path = spec;
  if (/^https?:\/\//i.test(spec)) {
    const fileName = new URL(spec).pathname.split("/").pop() || "weights.pth";
    path = `${cacheDir()}/${fileName}`;
    const known = Object.values(PRETRAINED_CONFIGS).find((c) => c.url === spec);
    const result = await download(spec, path, {
      fs: denoFs,
      checksum: known ? { algorithm: "sha256", hex: known.hashPrefix } : undefined,
      onProgress: downloadBar(),
      offlineHint: "check the network, or pass --weights FILE with a local .pth or .safetensors " +
        "(e.g. ../shared/fixtures/food101-resnet18/food101-64-resnet18.pth)",
    });
    log(`weights: ${spec} (${result.cached ? "cached" : "downloaded"} at ${path})`);
  } else {
    log(`weights: ${path}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read weights (${(e as Error).message})`);
  }
  // torchvision names checkpoints `<name>-<sha256 prefix>.pth` and checks the prefix on load.
  const hashPrefix = torchvisionHashPrefix(path);
  if (hashPrefix) await verifyHashPrefix(bytes, hashPrefix, path);
  return readWeights(bytes, path);
}
