/**
 * d2l §14.2's first look at the data: the first 8 training images (hot dogs) above the last 8
 * (not hot dogs), as one picture.
 *
 * @module
 */
import { DecodeError } from "./decode.ts";
import type { ImageSet } from "./image_set.ts";
import { encodeRgbaPng } from "./png.ts";
import { resizeBilinear } from "./resample.ts";

/** Options for {@linkcode samplesGrid}. */
export interface SamplesGridOptions {
  /** Images per row. Default 8, as in the chapter. */
  count?: number;
  /** Side of the square cell each image is fitted into, in pixels. Default 128. */
  tile?: number;
  /** Space between and around cells. Default 4. */
  gap?: number;
  /** Background colour. Default white. */
  background?: readonly [number, number, number];
}

/** A picture as 8-bit RGBA (what a canvas's `ImageData` takes). */
export interface SamplesGrid {
  /** Columns. */
  width: number;
  /** Rows. */
  height: number;
  /** `width * height * 4` bytes. */
  rgba: Uint8Array;
  /** The images shown, row by row. */
  shown: { index: number; path: string; label: number }[];
}

/**
 * Renders the chapter's 2 x 8 grid: row 1 is `train[0..7]`, row 2 is `train[-1], train[-2], ...`
 * (`[train_imgs[-i - 1] for i in range(8)]`). Each image is fitted into its cell keeping its
 * aspect ratio (PIL bilinear), since the photos "vary in size and aspect ratio". Undecodable
 * files are passed over.
 *
 * @example
 * ```ts
 * import { samplesGrid, syntheticImageSet } from "@webtune/data";
 * const grid = await samplesGrid(syntheticImageSet("train", { perClass: 8 }), { tile: 32 });
 * console.log(grid.width, grid.height); // 292 76
 * ```
 */
export async function samplesGrid(
  train: ImageSet,
  options: SamplesGridOptions = {},
): Promise<SamplesGrid> {
  const count = options.count ?? 8;
  const tile = options.tile ?? 128;
  const gap = options.gap ?? 4;
  const [br, bg, bb] = options.background ?? [255, 255, 255];
  const width = count * tile + (count + 1) * gap;
  const height = 2 * tile + 3 * gap;
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < rgba.length; i += 4) {
    rgba[i] = br;
    rgba[i + 1] = bg;
    rgba[i + 2] = bb;
    rgba[i + 3] = 255;
  }
  const n = train.labels.length;
  const shown: SamplesGrid["shown"] = [];
  const rows = [
    { start: 0, step: 1 },
    { start: n - 1, step: -1 },
  ];
  for (let row = 0; row < 2; row++) {
    let index = rows[row].start;
    for (let col = 0; col < count && index >= 0 && index < n; index += rows[row].step) {
      let img;
      try {
        img = await train.load(index);
      } catch (e) {
        if (e instanceof DecodeError) continue;
        throw e;
      }
      const s = Math.min(tile / img.width, tile / img.height);
      const w = Math.max(1, Math.round(img.width * s));
      const h = Math.max(1, Math.round(img.height * s));
      const fitted = resizeBilinear(img, w, h);
      const x0 = gap + col * (tile + gap) + Math.floor((tile - w) / 2);
      const y0 = gap + row * (tile + gap) + Math.floor((tile - h) / 2);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const src = (y * w + x) * 3;
          const dst = ((y0 + y) * width + x0 + x) * 4;
          rgba[dst] = fitted.data[src];
          rgba[dst + 1] = fitted.data[src + 1];
          rgba[dst + 2] = fitted.data[src + 2];
        }
      }
      shown.push({ index, path: train.paths[index], label: train.labels[index] });
      col++;
    }
  }
  return { width, height, rgba, shown };
}

/**
 * {@linkcode samplesGrid} encoded as PNG bytes.
 *
 * @example
 * ```ts
 * import { samplesGridPng, syntheticImageSet } from "@webtune/data";
 * const png = await samplesGridPng(syntheticImageSet("train", { perClass: 8 }));
 * console.log(png.length > 0); // true
 * ```
 */
export async function samplesGridPng(
  train: ImageSet,
  options: SamplesGridOptions = {},
): Promise<Uint8Array> {
  const grid = await samplesGrid(train, options);
  return encodeRgbaPng(grid.width, grid.height, grid.rgba);
}
