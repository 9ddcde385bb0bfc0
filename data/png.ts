/**
 * PNG encoding with image-js.
 *
 * @module
 */
import { encodePng, Image } from "image-js";
import type { RgbImage } from "./image.ts";

/**
 * Encodes an {@linkcode RgbImage} as PNG.
 *
 * @example
 * ```ts
 * import { encodeRgbPng, rgbImage } from "@webtune/data";
 * const png = encodeRgbPng(rgbImage(4, 3));
 * console.log(png[1], png[2], png[3]); // 80 78 71 ("PNG")
 * ```
 */
export function encodeRgbPng(img: RgbImage): Uint8Array {
  return encodePng(new Image(img.width, img.height, { data: img.data, colorModel: "RGB" }));
}

/** Encodes 8-bit RGBA pixels (`width * height * 4` bytes) as PNG. */
export function encodeRgbaPng(width: number, height: number, rgba: Uint8Array): Uint8Array {
  return encodePng(new Image(width, height, { data: rgba, colorModel: "RGBA" }));
}
