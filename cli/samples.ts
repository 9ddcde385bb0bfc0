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
import { atomicWrite } from "@webtune/core";
import { describeSkipped, encodeRgbaPng, samplesGrid } from "@webtune/data";
import { denoFs } from "@webtune/data/deno_fs";
import { defineCommand, main } from "./shell.ts";
import { openData } from "./sources.ts";

/** The `samples` command. */
export const samplesCommand = defineCommand({
  name: "samples",
  synopsis: "[--data SRC] [--out FILE.png]",
  description: "Draw the chapter's 2x8 grid of training images.",
  flags: {
    data: {
      kind: "string",
      default: "hotdog",
      placeholder: "SRC",
      help: "DIR, ZIP, URL, 'hotdog' (d2l's hotdog.zip) or 'synthetic'",
    },
    out: { kind: "string", default: "samples.png", placeholder: "FILE", help: "PNG file to write" },
    cache: {
      kind: "string",
      placeholder: "DIR",
      help: "download cache (default: $WEBTUNE_CACHE or ~/.cache/webtune)",
    },
    tile: { kind: "number", integer: true, min: 8, default: 128, help: "cell size in pixels" },
    seed: { kind: "number", integer: true, default: 0, help: "seed of --data synthetic" },
  },
  async run({ values, out, err }) {
    const file = values.out;
    const data = await openData(values.data, values.seed, err, values.cache);
    const grid = await samplesGrid(data.train, { tile: values.tile });
    // A temporary name beside the target, then a rename: no half-written PNG.
    await atomicWrite(denoFs, file, encodeRgbaPng(grid.width, grid.height, grid.rgba));
    const undecodable = grid.shown.length < 16 ? ` (${16 - grid.shown.length} cells empty)` : "";
    out(
      `wrote ${file} (${grid.width}x${grid.height}): the first 8 and last 8 of ` +
        `${data.train.labels.length} training images${undecodable} from ${data.description} ` +
        `(classes: ${data.classes.join(", ")})`,
    );
    const ignored = describeSkipped(data.train.ignored);
    if (ignored) err(ignored);
  },
});

if (import.meta.main) await main(samplesCommand);
