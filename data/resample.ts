/**
 * PIL's bilinear resize, reproduced bit for bit.
 *
 * Hand-written because no JavaScript library resamples the way torchvision's PIL path does, and
 * the pretrained ResNet-18 (and the reference outputs we test against) saw PIL's pixels. PIL's
 * `Image.resize(size, BILINEAR)` (Pillow `libImaging/Resample.c`) is not "sample 4 neighbours":
 * when it shrinks, the triangle filter's support is widened by the shrink factor (antialiasing),
 * it runs separably (horizontal pass, then vertical), its weights are converted to 22-bit fixed
 * point, and the intermediate image is rounded to uint8 between the passes. Canvas, image-js's
 * `resize` and tfjs' `resizeBilinear` each differ by several grey levels on real photos.
 *
 * @module
 */
import type { RgbImage } from "./image.ts";

/** Pillow's `PRECISION_BITS` for 8-bit images: 32 - 8 - 2. */
const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

/** A crop box in source pixels, `[left, top, right, bottom]`; fractions allowed as in PIL. */
export type Box = readonly [number, number, number, number];

/** Per-output-pixel source window and fixed-point weights for one axis. */
interface AxisCoeffs {
  ksize: number;
  /** `[xmin, count]` per output pixel. */
  bounds: Int32Array;
  /** `ksize` weights per output pixel, 22-bit fixed point. */
  weights: Int32Array;
}

function triangle(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

/** Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear (triangle) filter. */
function precompute(inSize: number, in0: number, in1: number, outSize: number): AxisCoeffs {
  // PIL passes the box as C floats; the difference is taken in float, then widened.
  const f0 = Math.fround(in0);
  const scale = Math.fround(Math.fround(in1) - f0) / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 1 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = f0 + (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = triangle((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const w = x < xmax ? (ww !== 0 ? k[x] / ww : k[x]) : 0;
      const fixed = w * (1 << PRECISION_BITS);
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + fixed) : Math.trunc(0.5 + fixed);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

/**
 * Resizes `src` to `width` x `height` with PIL's bilinear filter, optionally from a sub-rectangle
 * `box` of the source (PIL's `resize(size, BILINEAR, box)`; box edges may be fractional).
 * Matches Pillow's output exactly for RGB images.
 *
 * @example
 * ```ts
 * import { resizeBilinear, rgbImage } from "@webtune/data";
 * const small = resizeBilinear(rgbImage(448, 300), 224, 150);
 * console.log(small.width, small.height); // 224 150
 * ```
 */
export function resizeBilinear(
  src: RgbImage,
  width: number,
  height: number,
  box: Box = [0, 0, src.width, src.height],
): RgbImage {
  const pass = horizontalPass(src, width, height, box);
  if (!pass.vert) return pass.tmp === src ? { width, height, data: src.data.slice() } : pass.tmp;
  const out: RgbImage = { width, height, data: new Uint8Array(width * height * 3) };
  resampleVertical(pass.tmp, out, pass.rowFirst, pass.vert);
  return out;
}

/**
 * {@linkcode resizeBilinear} fused with a per-channel lookup into float32: writes
 * `table[c * 256 + value]` for every output sample into `out` at `offset` (NHWC), mirrored
 * left-right with `flip`. With the normalisation table this is resize + `ToTensor` + `Normalize`
 * in one pass, without the intermediate uint8 image; the values are the same.
 */
export function resizeBilinearInto(
  src: RgbImage,
  width: number,
  height: number,
  box: Box,
  out: Float32Array,
  offset: number,
  table: Float32Array,
  flip: boolean,
): void {
  const pass = horizontalPass(src, width, height, box);
  if (pass.vert) {
    resampleVerticalInto(
      pass.tmp,
      width,
      height,
      pass.rowFirst,
      pass.vert,
      out,
      offset,
      table,
      flip,
    );
    return;
  }
  const d = pass.tmp.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 3;
      const o = offset + (y * width + (flip ? width - 1 - x : x)) * 3;
      out[o] = table[d[s]];
      out[o + 1] = table[256 + d[s + 1]];
      out[o + 2] = table[512 + d[s + 2]];
    }
  }
}

interface HorizontalPass {
  /** The horizontally resampled rows (or `src` itself if no horizontal pass was needed). */
  tmp: RgbImage;
  /** The source row `tmp`'s first row came from. */
  rowFirst: number;
  /** Vertical coefficients, or undefined if no vertical pass is needed. */
  vert?: AxisCoeffs;
}

function horizontalPass(src: RgbImage, width: number, height: number, box: Box): HorizontalPass {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resize target must be positive integers, got ${width}x${height}`);
  }
  const [x0, y0, x1, y1] = box;
  if (x0 < 0 || y0 < 0 || x1 > src.width || y1 > src.height || x1 <= x0 || y1 <= y0) {
    throw new RangeError(`resize box [${box}] is outside the ${src.width}x${src.height} image`);
  }
  const needH = width !== src.width || x0 !== 0 || x1 !== width;
  const needV = height !== src.height || y0 !== 0 || y1 !== height;
  const vert = precompute(src.height, y0, y1, height);
  if (!needH) return { tmp: src, rowFirst: 0, vert: needV ? vert : undefined };
  // Only the rows the vertical pass reads go through the horizontal pass, as in PIL.
  const rowFirst = vert.bounds[0];
  const rowLast = vert.bounds[height * 2 - 2] + vert.bounds[height * 2 - 1];
  const tmp = {
    width,
    height: rowLast - rowFirst,
    data: new Uint8Array(width * (rowLast - rowFirst) * 3),
  };
  resampleHorizontal(src, tmp, rowFirst, precompute(src.width, x0, x1, width));
  return { tmp, rowFirst, vert: needV ? vert : undefined };
}

// No clip8 in the passes: the triangle filter's weights are non-negative and, in 22-bit fixed
// point, sum to 2^22 plus at most half a unit per tap, so every sum lies in [0, 256 * 2^22) and
// `sum >> 22` is already Pillow's clipped byte. The 2- and 3-tap cases (every upscale, and mild
// downscales) are unrolled: they are most of the work in RandomResizedCrop.

function resampleHorizontal(src: RgbImage, dst: RgbImage, rowOffset: number, c: AxisCoeffs) {
  const { ksize, bounds, weights } = c;
  const s = src.data;
  const d = dst.data;
  const sw3 = src.width * 3;
  const dw = dst.width;
  let o = 0;
  for (let y = 0; y < dst.height; y++) {
    const rowStart = (y + rowOffset) * sw3;
    for (let x = 0; x < dw; x++) {
      const n = bounds[x * 2 + 1];
      const kBase = x * ksize;
      let p = rowStart + bounds[x * 2] * 3;
      if (n === 2) {
        const w0 = weights[kBase], w1 = weights[kBase + 1];
        d[o++] = (HALF + s[p] * w0 + s[p + 3] * w1) >> PRECISION_BITS;
        d[o++] = (HALF + s[p + 1] * w0 + s[p + 4] * w1) >> PRECISION_BITS;
        d[o++] = (HALF + s[p + 2] * w0 + s[p + 5] * w1) >> PRECISION_BITS;
      } else if (n === 3) {
        const w0 = weights[kBase], w1 = weights[kBase + 1], w2 = weights[kBase + 2];
        d[o++] = (HALF + s[p] * w0 + s[p + 3] * w1 + s[p + 6] * w2) >> PRECISION_BITS;
        d[o++] = (HALF + s[p + 1] * w0 + s[p + 4] * w1 + s[p + 7] * w2) >> PRECISION_BITS;
        d[o++] = (HALF + s[p + 2] * w0 + s[p + 5] * w1 + s[p + 8] * w2) >> PRECISION_BITS;
      } else {
        let r = HALF, g = HALF, b = HALF;
        for (let i = 0; i < n; i++) {
          const w = weights[kBase + i];
          r += s[p] * w;
          g += s[p + 1] * w;
          b += s[p + 2] * w;
          p += 3;
        }
        d[o++] = r >> PRECISION_BITS;
        d[o++] = g >> PRECISION_BITS;
        d[o++] = b >> PRECISION_BITS;
      }
    }
  }
}

function resampleVertical(src: RgbImage, dst: RgbImage, rowOffset: number, c: AxisCoeffs) {
  const { ksize, bounds, weights } = c;
  const s = src.data;
  const d = dst.data;
  const w3 = dst.width * 3;
  for (let y = 0; y < dst.height; y++) {
    const n = bounds[y * 2 + 1];
    const kBase = y * ksize;
    const o = y * w3;
    const p = (bounds[y * 2] - rowOffset) * w3;
    if (n === 2) {
      const w0 = weights[kBase], w1 = weights[kBase + 1];
      const p1 = p + w3;
      for (let x = 0; x < w3; x++) {
        d[o + x] = (HALF + s[p + x] * w0 + s[p1 + x] * w1) >> PRECISION_BITS;
      }
    } else if (n === 3) {
      const w0 = weights[kBase], w1 = weights[kBase + 1], w2 = weights[kBase + 2];
      const p1 = p + w3, p2 = p + 2 * w3;
      for (let x = 0; x < w3; x++) {
        d[o + x] = (HALF + s[p + x] * w0 + s[p1 + x] * w1 + s[p2 + x] * w2) >> PRECISION_BITS;
      }
    } else {
      for (let x = 0; x < w3; x++) {
        let acc = HALF;
        let q = p + x;
        for (let i = 0; i < n; i++) {
          acc += s[q] * weights[kBase + i];
          q += w3;
        }
        d[o + x] = acc >> PRECISION_BITS;
      }
    }
  }
}

function resampleVerticalInto(
  src: RgbImage,
  width: number,
  height: number,
  rowOffset: number,
  c: AxisCoeffs,
  out: Float32Array,
  offset: number,
  table: Float32Array,
  flip: boolean,
) {
  const { ksize, bounds, weights } = c;
  const s = src.data;
  const w3 = width * 3;
  // Mirroring writes pixel x to column width-1-x; channels keep their order.
  const step = flip ? -3 : 3;
  for (let y = 0; y < height; y++) {
    const n = bounds[y * 2 + 1];
    const k = y * ksize;
    const p0 = (bounds[y * 2] - rowOffset) * w3;
    let o = offset + y * w3 + (flip ? w3 - 3 : 0);
    if (n === 2) {
      const w0 = weights[k], w1 = weights[k + 1];
      const p1 = p0 + w3;
      for (let x = 0; x < w3; x += 3, o += step) {
        const a = p0 + x, b = p1 + x;
        out[o] = table[(HALF + s[a] * w0 + s[b] * w1) >> PRECISION_BITS];
        out[o + 1] = table[256 + ((HALF + s[a + 1] * w0 + s[b + 1] * w1) >> PRECISION_BITS)];
        out[o + 2] = table[512 + ((HALF + s[a + 2] * w0 + s[b + 2] * w1) >> PRECISION_BITS)];
      }
    } else if (n === 3) {
      const w0 = weights[k], w1 = weights[k + 1], w2 = weights[k + 2];
      const p1 = p0 + w3, p2 = p1 + w3;
      for (let x = 0; x < w3; x += 3, o += step) {
        const a = p0 + x, b = p1 + x, d = p2 + x;
        out[o] = table[(HALF + s[a] * w0 + s[b] * w1 + s[d] * w2) >> PRECISION_BITS];
        out[o + 1] = table[
          256 + ((HALF + s[a + 1] * w0 + s[b + 1] * w1 + s[d + 1] * w2) >> PRECISION_BITS)
        ];
        out[o + 2] = table[
          512 + ((HALF + s[a + 2] * w0 + s[b + 2] * w1 + s[d + 2] * w2) >> PRECISION_BITS)
        ];
      }
    } else {
      for (let x = 0; x < w3; x += 3, o += step) {
        let r = HALF, g = HALF, b = HALF;
        for (let i = 0, q = p0 + x; i < n; i++, q += w3) {
          const w = weights[k + i];
          r += s[q] * w;
          g += s[q + 1] * w;
          b += s[q + 2] * w;
        }
        out[o] = table[r >> PRECISION_BITS];
        out[o + 1] = table[256 + (g >> PRECISION_BITS)];
        out[o + 2] = table[512 + (b >> PRECISION_BITS)];
      }
    }
  }
}
