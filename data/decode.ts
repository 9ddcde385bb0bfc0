/**
 * Decoding JPEG and PNG files to {@linkcode RgbImage}s with image-js.
 *
 * @module
 */
import { decode as decodeWithImageJs, type Image } from "image-js";
import type { RgbImage } from "./image.ts";
import { decodeJpeg, UnsupportedJpegError } from "./jpeg.ts";
import { oneLine } from "./one_line.ts";

/**
 * A file that is not an image we can decode, or is too big to. The message names the file and is
 * one line (control characters escaped).
 */
export class DecodeError extends Error {
  /** The error's name. */
  override name = "DecodeError";
  /** `message` is made one line with {@linkcode oneLine}. */
  constructor(message: string) {
    super(oneLine(message));
  }
}

/** Image formats {@linkcode probeImage} recognises. */
export type ImageFormat = "jpeg" | "png";

/** What {@linkcode probeImage} reads from a file's header. */
export interface ImageHeader {
  /** The container format. */
  format: ImageFormat;
  /** Columns, from the header. */
  width: number;
  /** Rows, from the header. */
  height: number;
}

/**
 * Default pixel cap: about PIL's `MAX_IMAGE_PIXELS` (89 478 485), above which PIL warns of a
 * decompression bomb.
 */
export const DEFAULT_MAX_PIXELS = 89_478_485;

/**
 * Reads format and size from a JPEG's SOF marker or a PNG's IHDR chunk without decoding, so a
 * decompression bomb can be refused before any pixel memory is allocated. `undefined` if the
 * bytes are neither format or the header is cut short.
 *
 * @example
 * ```ts
 * import { probeImage } from "@webtune/data";
 * console.log(probeImage(new Uint8Array([1, 2, 3]))); // undefined
 * ```
 */
export function probeImage(bytes: Uint8Array): ImageHeader | undefined {
  const be16 = (p: number) => (bytes[p] << 8) | bytes[p + 1];
  const be32 = (p: number) =>
    ((bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3]) >>> 0;
  if (
    bytes.length >= 24 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
    bytes[3] === 0x47 && be32(12) === 0x49484452 /* IHDR */
  ) {
    return { format: "png", width: be32(16), height: be32(20) };
  }
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  let p = 2;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) return undefined;
    const marker = bytes[p + 1];
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      p += 2;
      continue;
    }
    const length = be16(p + 2);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
      marker !== 0xcc;
    if (isSof) {
      if (p + 9 > bytes.length) return undefined;
      return { format: "jpeg", height: be16(p + 5), width: be16(p + 7) };
    }
    if (marker === 0xda || marker === 0xd9 || length < 2) return undefined; // scan before frame
    p += 2 + length;
  }
  return undefined;
}

/** Options for {@linkcode decodeImage}. */
export interface DecodeOptions {
  /** The file's name for messages. */
  name?: string;
  /** Refuse images with more pixels than this. Default {@linkcode DEFAULT_MAX_PIXELS}. */
  maxPixels?: number;
  /**
   * `"ignore"` (default) keeps the stored pixel order, as torchvision's `ImageFolder` does (PIL's
   * `Image.open` does not apply EXIF orientation), so the pixels match PyTorch's. `"apply"`
   * rotates/flips JPEGs by their EXIF Orientation tag, like PIL's `ImageOps.exif_transpose`.
   */
  exifOrientation?: "ignore" | "apply";
}

/**
 * Decodes a JPEG or PNG to 8-bit RGB, like PIL's `Image.open(f).convert("RGB")`: grey is
 * replicated to R, G and B; alpha is dropped (not composited, as `convert("RGB")` does);
 * 16-bit samples keep their high byte (16-bit grey clips at 255, as PIL's "I;16" does). The header is checked against `maxPixels` before
 * decoding. Throws {@linkcode DecodeError}.
 *
 * JPEGs go through {@linkcode decodeJpeg}, which gives libjpeg-turbo's (so PIL's) pixels
 * exactly; the rare JPEGs it does not handle (arithmetic coding, 12-bit, CMYK) and all PNGs are
 * decoded by image-js (jpeg-js, fast-png). jpeg-js' pixels differ from libjpeg-turbo's by a few
 * grey levels, more at sharp colour edges.
 *
 * @example
 * ```ts
 * import { decodeImage, encodeRgbPng, rgbImage } from "@webtune/data";
 * const png = encodeRgbPng(rgbImage(2, 2));
 * const img = decodeImage(png, { name: "black.png" });
 * console.log(img.width, img.height, img.data.length); // 2 2 12
 * ```
 */
export function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): RgbImage {
  const name = options.name ?? "image";
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const header = probeImage(bytes);
  if (!header) {
    throw new DecodeError(`${name}: not a JPEG or PNG file (or its header is cut short)`);
  }
  if (header.width < 1 || header.height < 1) {
    throw new DecodeError(`${name}: invalid size ${header.width}x${header.height}`);
  }
  if (header.width * header.height > maxPixels) {
    throw new DecodeError(
      `${name}: ${header.width}x${header.height} is more than ${maxPixels} pixels ` +
        `(possible decompression bomb); not decoding it`,
    );
  }
  const capacity = header.format === "png" ? pngCapacity(bytes) : jpegCapacity(bytes);
  if (header.width * header.height > capacity) {
    throw new DecodeError(
      `${name}: ${header.width}x${header.height} pixels cannot fit in its ${bytes.length} bytes ` +
        `(truncated or corrupt); not decoding it`,
    );
  }
  let exactError: Error | undefined;
  if (header.format === "jpeg") {
    try {
      const { image, orientation } = decodeJpeg(bytes);
      return options.exifOrientation === "apply" ? orient(image, orientation) : image;
    } catch (e) {
      // Unsupported features, and damage libjpeg might tolerate differently: try image-js.
      exactError = e as Error;
    }
  }
  let image: Image;
  try {
    image = decodeWithImageJs(bytes);
  } catch (e) {
    const why = exactError && !(exactError instanceof UnsupportedJpegError)
      ? exactError
      : e as Error;
    throw new DecodeError(`${name}: cannot decode ${header.format} (${why.message})`);
  }
  if (image.width !== header.width || image.height !== header.height) {
    throw new DecodeError(`${name}: decoded size differs from the header (corrupt file)`);
  }
  let rgb = toRgb(image, name);
  if (options.exifOrientation === "apply") {
    const orientation = image.meta?.tiff?.fields?.get(274);
    if (typeof orientation === "number") rgb = orient(rgb, orientation);
  }
  return rgb;
}

/** Deflate's best case: 258 bytes from one length/distance pair of at least 2 bits. */
const MAX_DEFLATE_RATIO = 1032;

/**
 * The most pixels a PNG's image data (its IDAT chunks) can inflate to, at its bit depth and
 * colour type. Checked before decoding so that a header declaring a huge image in a few bytes
 * (a fuzzed or hostile file) is refused before the decoder allocates for it.
 */
function pngCapacity(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const channels = [1, 0, 3, 1, 2, 0, 4][bytes[25]] || 1;
  const bitsPerPixel = Math.max(1, bytes[24]) * channels;
  let data = 0;
  for (let p = 8; p + 8 <= bytes.length;) {
    const length = view.getUint32(p);
    const type = view.getUint32(p + 4);
    if (type === 0x49444154 /* IDAT */) data += Math.min(length, bytes.length - p - 8);
    if (type === 0x49454e44 /* IEND */) break;
    p += 12 + length;
  }
  return Math.floor((data * MAX_DEFLATE_RATIO * 8) / bitsPerPixel);
}

/** The most pixels a JPEG of this many bytes can code: each 8x8 block takes at least 1 bit. */
function jpegCapacity(bytes: Uint8Array): number {
  return bytes.length * 8 * 64;
}

function toRgb(image: Image, name: string): RgbImage {
  const { width, height, data, channels, bitDepth } = image.getRawImage();
  const out = new Uint8Array(width * height * 3);
  const shift = bitDepth === 16 ? 8 : 0;
  const n = width * height;
  const model = image.colorModel;
  // PIL quirk, kept for parity: a 16-bit grey PNG opens as mode "I;16", whose conversion to RGB
  // clips to 255 instead of taking the high byte (16-bit RGB and grey+alpha keep the high byte).
  const clipGrey16 = model === "GREY" && bitDepth === 16;
  if (model === "GREY" || model === "GREYA") {
    for (let i = 0, s = 0; i < n; i++, s += channels) {
      const v = clipGrey16 ? Math.min(data[s], 255) : data[s] >> shift;
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    }
  } else if (model === "RGB" || model === "RGBA") {
    for (let i = 0, s = 0, o = 0; i < n; i++, s += channels, o += 3) {
      out[o] = data[s] >> shift;
      out[o + 1] = data[s + 1] >> shift;
      out[o + 2] = data[s + 2] >> shift;
    }
  } else {
    throw new DecodeError(`${name}: unsupported colour model ${model}`);
  }
  return { width, height, data: out };
}

/**
 * Applies an EXIF orientation (1-8) so the image shows upright, as PIL's
 * `ImageOps.exif_transpose` does.
 */
export function orient(img: RgbImage, orientation: number): RgbImage {
  if (orientation < 2 || orientation > 8) return img;
  const { width: w, height: h, data: src } = img;
  const swap = orientation >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  // Source coordinates as sx = ax*x + bx*y + cx, sy = ay*x + by*y + cy, per orientation.
  const [ax, bx, cx, ay, by, cy] = ({
    2: [-1, 0, w - 1, 0, 1, 0],
    3: [-1, 0, w - 1, 0, -1, h - 1],
    4: [1, 0, 0, 0, -1, h - 1],
    5: [0, 1, 0, 1, 0, 0],
    6: [0, 1, 0, -1, 0, h - 1],
    7: [0, -1, w - 1, -1, 0, h - 1],
    8: [0, -1, w - 1, 1, 0, 0],
  } as Record<number, number[]>)[orientation];
  const out = new Uint8Array(w * h * 3);
  for (let y = 0, o = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++, o += 3) {
      const s = ((ay * x + by * y + cy) * w + (ax * x + bx * y + cx)) * 3;
      out[o] = src[s];
      out[o + 1] = src[s + 1];
      out[o + 2] = src[s + 2];
    }
  }
  return { width: ow, height: oh, data: out };
}
