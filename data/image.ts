/**
 * The in-memory image type the data pipeline works on.
 *
 * @module
 */

/**
 * An 8-bit RGB image, rows top to bottom, pixels interleaved `R G B R G B ...` (HWC). This is the
 * layout PIL's `Image.convert("RGB")` gives torchvision, so the transforms can follow PIL exactly.
 */
export interface RgbImage {
  /** Columns. */
  width: number;
  /** Rows. */
  height: number;
  /** `width * height * 3` bytes. */
  data: Uint8Array;
}

/**
 * Makes an {@linkcode RgbImage}, zero-filled unless `data` is given.
 *
 * @example
 * ```ts
 * import { rgbImage } from "@webtune/data";
 * const img = rgbImage(2, 1, new Uint8Array([255, 0, 0, 0, 0, 255]));
 * console.log(img.width, img.height); // 2 1
 * ```
 */
export function rgbImage(width: number, height: number, data?: Uint8Array): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`image size must be positive integers, got ${width}x${height}`);
  }
  const bytes = data ?? new Uint8Array(width * height * 3);
  if (bytes.length !== width * height * 3) {
    throw new RangeError(`RGB data for ${width}x${height} must hold ${width * height * 3} bytes`);
  }
  return { width, height, data: bytes };
}
