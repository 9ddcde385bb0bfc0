/**
 * `deno task samples`: d2l §14.2's first look at the data, the first 8 training images above
 * the last 8, written as a PNG.
 *
 * ```sh
 * deno task samples --data ../shared/datasets/hotdog-mini --out samples.png
 * deno task samples --data hotdog --out samples.png     # downloads d2l's hotdog.zip once
 * ```
 *
 * @module
 */
import {
  defaultCacheDir,
  describeSkipped,
  encodeRgbaPng,
  formatProgress,
  resolveDataSource,
  samplesGrid,
} from "@webtune/data";
import { denoEnv, denoFs } from "@webtune/data/deno_fs";
import { type FlagSpec, numberFlag, parseFlags, usage, UsageError } from "./args.ts";

const FLAGS: Record<string, FlagSpec> = {
  data: {
    type: "string",
    default: "hotdog",
    help: "DIR, ZIP, URL, 'hotdog' (d2l's hotdog.zip) or 'synthetic'",
  },
  out: { type: "string", default: "samples.png", help: "PNG file to write" },
  cache: {
    type: "string",
    help: "download cache (default: $WEBTUNE_CACHE or ~/.cache/webtune)",
  },
  tile: { type: "string", default: "128", help: "cell size in pixels" },
  seed: { type: "string", default: "0", help: "seed of --data synthetic" },
};

function tryDefaultCacheDir(): string | undefined {
  try {
    return defaultCacheDir(denoEnv);
  } catch {
    return undefined;
  }
}

/** Runs the command; returns the exit code (0 ok, 1 failure, 2 usage error). */
export async function main(
  args: string[],
  out: (line: string) => void = console.log,
  err: (line: string) => void = console.error,
): Promise<number> {
  try {
    const { values } = parseFlags("samples", args, FLAGS);
    if (values.help) {
      out(
        usage(
          "samples",
          "[--data SRC] [--out FILE.png]",
          "Draw the chapter's 2x8 grid of training images.",
          FLAGS,
        ),
      );
      return 0;
    }
    const file = values.out as string;
    const tile = numberFlag("samples", values, "tile", { integer: true, min: 8 });
    const seed = numberFlag("samples", values, "seed", { integer: true });
    const isTerminal = Deno.stderr.isTerminal();
    const encoder = new TextEncoder();
    const data = await resolveDataSource(values.data as string, {
      fs: denoFs,
      // Only downloads need it; a machine without HOME can still read a folder or a zip.
      cacheDir: (values.cache as string | undefined) ?? tryDefaultCacheDir(),
      seed,
      onStatus: err,
      onDownloadProgress: (p) => {
        if (!isTerminal) return;
        const line = `downloading ${p.url} ${formatProgress(p.received, p.total)}`;
        Deno.stderr.writeSync(
          encoder.encode(`\r\x1b[2K${line}${p.received === p.total ? "\n" : ""}`),
        );
      },
    });
    const grid = await samplesGrid(data.train, { tile });
    const png = encodeRgbaPng(grid.width, grid.height, grid.rgba);
    // Write to a temporary name beside the target, then rename: no half-written PNG.
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) || "/" : ".";
    await Deno.mkdir(dir, { recursive: true });
    const tmp = `${file}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      await Deno.writeFile(tmp, png);
      await Deno.rename(tmp, file);
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
    const undecodable = grid.shown.length < 16 ? ` (${16 - grid.shown.length} cells empty)` : "";
    out(
      `wrote ${file} (${grid.width}x${grid.height}): the first 8 and last 8 of ` +
        `${data.train.labels.length} training images${undecodable} from ${data.description} ` +
        `(classes: ${data.classes.join(", ")})`,
    );
    const ignored = describeSkipped(data.train.ignored);
    if (ignored) err(ignored);
    return 0;
  } catch (e) {
    err(e instanceof Error ? e.message.split("\n")[0] : String(e));
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
