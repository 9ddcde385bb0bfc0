/**
 * A generated two-class image set for offline smoke runs: `circles` (one to three filled discs)
 * versus `stripes` (parallel bands at a random angle). Both classes draw their colours from the
 * same distribution, so a network has to learn shape, which a CNN does within an epoch or two.
 * Every image is a pure function of (seed, split, index): no files, same pixels everywhere.
 *
 * @module
 */
import type { RgbImage } from "./image.ts";
import type { ImageSet } from "./image_set.ts";
import { Rng } from "./rng.ts";

/** Options for {@linkcode syntheticImageSet}. */
export interface SyntheticOptions {
  /** Seed of the whole set. Default 0. */
  seed?: number;
  /** Images per class. Default 100 for `train`, 25 for `test` (like hotdog-mini). */
  perClass?: number;
  /** Side of the square images. Default 96. */
  imageSize?: number;
}

/** The synthetic set's classes, sorted as an image folder's would be. */
export const SYNTHETIC_CLASSES: readonly string[] = ["circles", "stripes"];

/**
 * The `train` or `test` split of the synthetic set, as an {@linkcode ImageSet}: class 0 images
 * first, then class 1, like an image folder.
 *
 * @example
 * ```ts
 * import { syntheticImageSet } from "@webtune/data";
 * const train = syntheticImageSet("train", { seed: 1, perClass: 4 });
 * const img = await train.load(0);
 * console.log(train.classes, train.labels.length, img.width); // [ "circles", "stripes" ] 8 96
 * ```
 */
export function syntheticImageSet(
  split: "train" | "test",
  options: SyntheticOptions = {},
): ImageSet {
  const seed = options.seed ?? 0;
  const perClass = options.perClass ?? (split === "train" ? 100 : 25);
  const size = options.imageSize ?? 96;
  const labels = new Int32Array(2 * perClass);
  labels.fill(1, perClass);
  const paths = Array.from(
    labels,
    (label, i) => `${split}/${SYNTHETIC_CLASSES[label]}/${String(i % perClass).padStart(4, "0")}`,
  );
  return {
    name: `synthetic(seed=${seed})/${split}`,
    classes: SYNTHETIC_CLASSES,
    labels,
    paths,
    ignored: [],
    probe: () => Promise.resolve({ width: size, height: size }),
    load(index: number) {
      if (!(index >= 0 && index < labels.length)) {
        return Promise.reject(new RangeError(`synthetic ${split}: no image ${index}`));
      }
      // One generator per image, seeded from (seed, split, index): random access, reproducible.
      const rng = new Rng(
        Math.imul(seed, 0x9e3779b1) ^ (split === "train" ? 0 : 0x5bd1e995) ^ index * 7919,
      );
      return Promise.resolve(labels[index] === 0 ? circles(size, rng) : stripes(size, rng));
    },
  };
}

function randomColor(rng: Rng): [number, number, number] {
  return [rng.int(0, 256), rng.int(0, 256), rng.int(0, 256)];
}

function contrasting(rng: Rng, other: [number, number, number]): [number, number, number] {
  for (;;) {
    const c = randomColor(rng);
    if (Math.abs(c[0] - other[0]) + Math.abs(c[1] - other[1]) + Math.abs(c[2] - other[2]) > 150) {
      return c;
    }
  }
}

function paint(
  size: number,
  rng: Rng,
  pick: (x: number, y: number) => boolean,
  a: number[],
  b: number[],
): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0, o = 0; y < size; y++) {
    for (let x = 0; x < size; x++, o += 3) {
      const c = pick(x + 0.5, y + 0.5) ? b : a;
      for (let k = 0; k < 3; k++) {
        const v = c[k] + rng.int(-12, 13); // a little sensor noise
        data[o + k] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { width: size, height: size, data };
}

function circles(size: number, rng: Rng): RgbImage {
  const bg = randomColor(rng);
  const fg = contrasting(rng, bg);
  const discs = Array.from({ length: rng.int(1, 4) }, () => ({
    cx: rng.uniform(0.2, 0.8) * size,
    cy: rng.uniform(0.2, 0.8) * size,
    r: rng.uniform(0.1, 0.25) * size,
  }));
  return paint(
    size,
    rng,
    (x, y) => discs.some((d) => (x - d.cx) ** 2 + (y - d.cy) ** 2 < d.r ** 2),
    bg,
    fg,
  );
}

function stripes(size: number, rng: Rng): RgbImage {
  const bg = randomColor(rng);
  const fg = contrasting(rng, bg);
  const angle = rng.uniform(0, Math.PI);
  const period = rng.uniform(0.12, 0.3) * size;
  const phase = rng.uniform(0, period);
  const cos = Math.cos(angle), sin = Math.sin(angle);
  return paint(
    size,
    rng,
    (x, y) => ((x * cos + y * sin + phase) % period + period) % period < period / 2,
    bg,
    fg,
  );
}
