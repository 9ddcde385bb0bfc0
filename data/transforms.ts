/**
 * d2l §14.2's image transforms with torchvision's semantics, on {@linkcode RgbImage}s:
 *
 * - train: `RandomResizedCrop(size)` → `RandomHorizontalFlip()` → `ToTensor()` → `Normalize`
 * - test: `Resize([r, r])` → `CenterCrop(size)` → `ToTensor()` → `Normalize`
 *
 * The normalisation's mean/std and the test resize `r` are parameters: they belong to the source
 * model (its pretrained config, e.g. ImageNet's mean and r = 256 at 224), which the caller passes.
 *
 * Geometry and resampling follow torchvision 0.14 on PIL images exactly (Python's half-to-even
 * `round`, integer crop boxes, PIL's antialiased bilinear); only the random numbers come from
 * our {@linkcode Rng} instead of torch's generator.
 *
 * @module
 */
import type { RgbImage } from "./image.ts";
import { type Box, resizeBilinear, resizeBilinearInto } from "./resample.ts";

/** `Normalize(mean, std)`'s per-channel RGB statistics (inputs in [0, 1]). */
export interface Normalization {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** A crop rectangle in pixels, named like torchvision's `(i, j, h, w)`. */
export interface CropBox {
  /** First row. */
  top: number;
  /** First column. */
  left: number;
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
}

/** Anything with a uniform [0, 1) source: an {@linkcode Rng}. */
export interface RandomSource {
  /** Uniform in [0, 1). */
  float(): number;
  /** Uniform in [a, b). */
  uniform(a: number, b: number): number;
  /** Uniform integer in [lo, hi). */
  int(lo: number, hi: number): number;
}

/** Python 3's `round()`: halves go to the even neighbour (`round(4.5) == 4`). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Options of the train transform, defaulting to torchvision's `RandomResizedCrop` / flip. */
export interface TrainTransformOptions {
  /** Output side in pixels. */
  size: number;
  /** Range of the crop's area as a fraction of the image's. Default `[0.08, 1]`. */
  scale?: readonly [number, number];
  /** Range of the crop's aspect ratio (width / height). Default `[3/4, 4/3]`. */
  ratio?: readonly [number, number];
  /** Probability of a horizontal flip. Default 0.5. */
  flipProbability?: number;
}

/**
 * torchvision's `RandomResizedCrop.get_params`: up to 10 tries of a random area in `scale` and a
 * log-uniform aspect ratio in `ratio`; if none fits, a centred crop clamped to `ratio`.
 *
 * @example
 * ```ts
 * import { createRng, randomResizedCropParams } from "@webtune/data";
 * const box = randomResizedCropParams(500, 375, createRng(0));
 * console.log(box.left + box.width <= 500 && box.top + box.height <= 375); // true
 * ```
 */
export function randomResizedCropParams(
  width: number,
  height: number,
  rng: RandomSource,
  scale: readonly [number, number] = [0.08, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
): CropBox {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(0, height - h + 1);
      const left = rng.int(0, width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  // Fallback to a central crop.
  const inRatio = width / height;
  let w = width, h = height;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  }
  return {
    top: Math.floor((height - h) / 2),
    left: Math.floor((width - w) / 2),
    height: h,
    width: w,
  };
}

/** torchvision's `CenterCrop` box: offsets `round((side - size) / 2)` (half to even). */
export function centerCropBox(width: number, height: number, size: number): CropBox {
  if (size > width || size > height) {
    throw new RangeError(`center crop ${size} is larger than the ${width}x${height} image`);
  }
  return {
    top: roundHalfEven((height - size) / 2),
    left: roundHalfEven((width - size) / 2),
    height: size,
    width: size,
  };
}

/** Copies the rectangle `box` out of `img` (PIL's `crop` with a box inside the image). */
export function cropRgb(img: RgbImage, box: CropBox): RgbImage {
  const { top, left, width, height } = box;
  if (left < 0 || top < 0 || left + width > img.width || top + height > img.height) {
    throw new RangeError(
      `crop ${JSON.stringify(box)} is outside the ${img.width}x${img.height} image`,
    );
  }
  if (left === 0 && top === 0 && width === img.width && height === img.height) return img;
  const out = new Uint8Array(width * height * 3);
  const row = width * 3;
  for (let y = 0; y < height; y++) {
    const s = ((top + y) * img.width + left) * 3;
    out.set(img.data.subarray(s, s + row), y * row);
  }
  return { width, height, data: out };
}

/**
 * The test transform's geometry: `Resize([resize, resize])` (PIL bilinear) then
 * `CenterCrop(size)`.
 * Returns the `size` x `size` uint8 image; {@linkcode normalizeInto} finishes the transform.
 *
 * @example
 * ```ts
 * import { rgbImage, testCrop } from "@webtune/data";
 * console.log(testCrop(rgbImage(300, 200), 64, 73).width); // 64
 * ```
 */
export function testCrop(img: RgbImage, size: number, resize: number): RgbImage {
  const r = resize;
  const resized = resizeBilinear(img, r, r);
  return cropRgb(resized, centerCropBox(r, r, size));
}

/** The random choices of the train transform for one image. */
export interface TrainCropParams {
  /** The crop, in the original image's pixels. */
  box: CropBox;
  /** Whether to mirror the result left-right. */
  flip: boolean;
}

/**
 * Draws the train transform's random choices for an image of `width` x `height`:
 * `RandomResizedCrop`'s box, then `RandomHorizontalFlip`'s coin, in torchvision's order.
 */
export function trainCropParams(
  width: number,
  height: number,
  options: TrainTransformOptions,
  rng: RandomSource,
): TrainCropParams {
  const box = randomResizedCropParams(width, height, rng, options.scale, options.ratio);
  const flip = rng.float() < (options.flipProbability ?? 0.5);
  return { box, flip };
}

/**
 * Crops `box` and resizes it to `size` x `size` (torchvision's `resized_crop` on a PIL image).
 *
 * `img` may be a downscaled copy of the original kept in memory (see the loader's cache): pass
 * the original's size as `original`; `box` stays in the original's pixels and is mapped onto the
 * copy as a fractional box. With `img` at full size the result is exactly torchvision's.
 */
export function resizedCrop(
  img: RgbImage,
  box: CropBox,
  size: number,
  original: { width: number; height: number } = img,
): RgbImage {
  const [src, region] = cropSource(img, box, original);
  return resizeBilinear(src, size, size, region);
}

/**
 * {@linkcode resizedCrop} + `RandomHorizontalFlip` + `ToTensor` + `Normalize` in one pass:
 * writes the `size` x `size` normalised crop into `out` at `offset` (NHWC), mirrored if `flip`.
 * Same values as `normalizeInto(resizedCrop(...), out, offset, norm, flip)`, with less work.
 */
export function resizedCropInto(
  img: RgbImage,
  box: CropBox,
  size: number,
  original: { width: number; height: number },
  out: Float32Array,
  offset: number,
  norm: Normalization,
  flip: boolean,
): void {
  const [src, region] = cropSource(img, box, original);
  resizeBilinearInto(src, size, size, region, out, offset, normalizationTable(norm), flip);
}

/** The image and box to resample for a crop (see {@linkcode resizedCrop}). */
function cropSource(
  img: RgbImage,
  box: CropBox,
  original: { width: number; height: number },
): [RgbImage, Box] {
  if (img.width === original.width && img.height === original.height) {
    // torchvision crops, then resizes the crop: pixels outside the box never contribute.
    const crop = cropRgb(img, box);
    return [crop, [0, 0, crop.width, crop.height]];
  }
  const sx = img.width / original.width;
  const sy = img.height / original.height;
  return [img, [
    box.left * sx,
    box.top * sy,
    Math.min(img.width, (box.left + box.width) * sx),
    Math.min(img.height, (box.top + box.height) * sy),
  ]];
}

/** What {@linkcode trainCrop} chose and made. */
export interface TrainCrop extends TrainCropParams {
  /** The `size` x `size` crop, not yet flipped. */
  image: RgbImage;
}

/**
 * The train transform's geometry: {@linkcode trainCropParams} then {@linkcode resizedCrop}.
 * {@linkcode normalizeInto} with `flip` finishes the transform.
 *
 * @example
 * ```ts
 * import { createRng, rgbImage, trainCrop } from "@webtune/data";
 * const { image, flip } = trainCrop(rgbImage(320, 240), { size: 224 }, createRng(1));
 * console.log(image.width, image.height, typeof flip); // 224 224 boolean
 * ```
 */
export function trainCrop(
  img: RgbImage,
  options: TrainTransformOptions,
  rng: RandomSource,
  original: { width: number; height: number } = img,
): TrainCrop {
  const params = trainCropParams(original.width, original.height, options, rng);
  return { ...params, image: resizedCrop(img, params.box, options.size, original) };
}

const tables = new Map<string, Float32Array>();

/**
 * `ToTensor()` + `Normalize(mean, std)` as a table: entry `c * 256 + v` is channel `c`'s value
 * for byte `v`, computed in float32 steps like torch's `(x / 255 - mean) / std`, so looking it up
 * is bit-identical to torch. Tables are kept per statistics (a run uses one or two).
 */
export function normalizationTable(norm: Normalization): Float32Array {
  const key = `${norm.mean.join()}/${norm.std.join()}`;
  let lut = tables.get(key);
  if (!lut) {
    lut = new Float32Array(768);
    const f = Math.fround;
    for (let c = 0; c < 3; c++) {
      for (let v = 0; v < 256; v++) {
        lut[c * 256 + v] = f(f(f(v / 255) - f(norm.mean[c])) / f(norm.std[c]));
      }
    }
    tables.set(key, lut);
  }
  return lut;
}

/**
 * `ToTensor()` + `Normalize(mean, std)` of a uint8 image into `out` at
 * `offset`, in NHWC order, optionally mirrored left-right. Bit-identical to torch's float32
 * `(x / 255 - mean) / std` (see {@linkcode normalizationTable}).
 *
 * @example
 * ```ts
 * import { normalizeInto, rgbImage } from "@webtune/data";
 * const out = new Float32Array(3);
 * const imagenet = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
 * normalizeInto(rgbImage(1, 1, new Uint8Array([255, 255, 255])), out, 0, imagenet);
 * console.log(out[0].toFixed(4)); // 2.2489
 * ```
 */
export function normalizeInto(
  img: RgbImage,
  out: Float32Array,
  offset: number,
  norm: Normalization,
  flip = false,
) {
  const table = normalizationTable(norm);
  const { width, height, data } = img;
  if (!flip) {
    for (let i = 0, n = width * height * 3; i < n; i += 3) {
      out[offset + i] = table[data[i]];
      out[offset + i + 1] = table[256 + data[i + 1]];
      out[offset + i + 2] = table[512 + data[i + 2]];
    }
    return;
  }
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const s = row + (width - 1 - x) * 3;
      const o = offset + row + x * 3;
      out[o] = table[data[s]];
      out[o + 1] = table[256 + data[s + 1]];
      out[o + 2] = table[512 + data[s + 2]];
    }
  }
}
