/**
 * A JPEG decoder that reproduces libjpeg-turbo's default output bit for bit.
 *
 * Hand-written because the pixels must be the ones PyTorch saw: torchvision's `ImageFolder`
 * decodes with PIL, i.e. libjpeg-turbo with its defaults (the "islow" integer IDCT, "fancy"
 * triangle-filter chroma upsampling, table-driven YCbCr->RGB). image-js decodes with jpeg-js,
 * whose IDCT and nearest-neighbour chroma upsampling differ by up to ~60 grey levels at sharp
 * colour edges (0.7 after normalisation). No JavaScript library decodes like libjpeg-turbo.
 *
 * Covers baseline, extended and progressive Huffman JPEGs with 1 or 3 components, any sampling
 * factors, restart intervals. Anything else (arithmetic coding, lossless, 12-bit, CMYK/YCCK)
 * throws {@linkcode UnsupportedJpegError} and `decodeImage` falls back to image-js.
 *
 * The arithmetic follows libjpeg-turbo's `jidctint.c` (`jpeg_idct_islow`), `jdsample.c`
 * (`h2v1/h1v2/h2v2_fancy_upsample`, `int_upsample`) and `jdcolor.c` (`ycc_rgb_convert`).
 *
 * @module
 */
import type { RgbImage } from "./image.ts";

/** The JPEG uses a feature this decoder leaves to image-js. */
export class UnsupportedJpegError extends Error {
  /** The error's name. */
  override name = "UnsupportedJpegError";
}

/** The JPEG is malformed. */
export class CorruptJpegError extends Error {
  /** The error's name. */
  override name = "CorruptJpegError";
}

/** What {@linkcode decodeJpeg} returns: the pixels and the EXIF orientation (1 if none). */
export interface DecodedJpeg {
  /** The pixels, as stored (orientation not applied). */
  image: RgbImage;
  /** EXIF Orientation, 1-8. */
  orientation: number;
}

const ZIGZAG = new Int32Array([
  0,
  1,
  8,
  16,
  9,
  2,
  3,
  10,
  17,
  24,
  32,
  25,
  18,
  11,
  4,
  5,
  12,
  19,
  26,
  33,
  40,
  48,
  41,
  34,
  27,
  20,
  13,
  6,
  7,
  14,
  21,
  28,
  35,
  42,
  49,
  56,
  57,
  50,
  43,
  36,
  29,
  22,
  15,
  23,
  30,
  37,
  44,
  51,
  58,
  59,
  52,
  45,
  38,
  31,
  39,
  46,
  53,
  60,
  61,
  54,
  47,
  55,
  62,
  63,
]);

interface Huffman {
  /** For code length l (1..16): the largest code of that length, or -1. */
  maxcode: Int32Array;
  /** For code length l: index into `values` of the first code of that length, minus that code. */
  valoff: Int32Array;
  values: Uint8Array;
  /** 9-bit lookahead: (length << 8) | value, 0 if the code is longer than 9 bits. */
  fast: Uint16Array;
}

interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  blocksPerLine: number;
  blocksPerColumn: number;
  /** Blocks per row of `coefs` (padded to whole MCUs in interleaved images). */
  paddedLine: number;
  /** Coefficients, 64 per block, natural order, blocks padded to whole MCUs. */
  coefs: Int32Array;
  /** Width and height of the component's (downsampled) plane. */
  width: number;
  height: number;
  dcPred: number;
  dcTable?: Huffman;
  acTable?: Huffman;
}

interface Frame {
  progressive: boolean;
  width: number;
  height: number;
  maxH: number;
  maxV: number;
  mcusPerLine: number;
  mcusPerColumn: number;
  components: Component[];
}

const FAST_BITS = 9;

function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const maxcode = new Int32Array(18).fill(-1);
  const valoff = new Int32Array(18);
  const fast = new Uint16Array(1 << FAST_BITS);
  let code = 0, k = 0;
  for (let len = 1; len <= 16; len++) {
    valoff[len] = k - code;
    const n = counts[len - 1];
    for (let i = 0; i < n; i++, k++, code++) {
      if (len <= FAST_BITS) {
        const shift = FAST_BITS - len;
        const base = code << shift;
        for (let j = 0; j < 1 << shift; j++) fast[base + j] = (len << 8) | values[k];
      }
    }
    if (n > 0) maxcode[len] = code - 1;
    if (code > 1 << len) throw new CorruptJpegError("bad Huffman table");
    code <<= 1;
  }
  maxcode[17] = 0x7fffffff; // sentinel: a code longer than 16 bits is corrupt data
  return { maxcode, valoff, values, fast };
}

/** Reads entropy-coded bits; past a marker it feeds zeros, as libjpeg does. */
class BitReader {
  data: Uint8Array;
  pos: number;
  acc = 0;
  bits = 0;
  /** A marker stopped the stream (its position stays at `pos`). */
  marker = false;

  constructor(data: Uint8Array, pos: number) {
    this.data = data;
    this.pos = pos;
  }

  fill(): void {
    while (this.bits <= 24) {
      let byte = 0;
      if (!this.marker && this.pos < this.data.length) {
        byte = this.data[this.pos];
        if (byte === 0xff) {
          const next = this.data[this.pos + 1];
          if (next === 0) {
            this.pos += 2;
          } else {
            this.marker = true;
            byte = 0;
          }
        } else {
          this.pos++;
        }
      }
      this.acc = (this.acc << 8) | byte;
      this.bits += 8;
    }
  }

  peek(n: number): number {
    if (this.bits < n) this.fill();
    return (this.acc >>> (this.bits - n)) & ((1 << n) - 1);
  }

  skip(n: number): void {
    this.bits -= n;
  }

  get(n: number): number {
    if (n === 0) return 0;
    const v = this.peek(n);
    this.bits -= n;
    return v;
  }

  decode(h: Huffman): number {
    const look = h.fast[this.peek(FAST_BITS)];
    if (look !== 0) {
      this.bits -= look >> 8;
      return look & 0xff;
    }
    let code = this.get(FAST_BITS);
    let len = FAST_BITS;
    while (code > h.maxcode[len]) {
      code = (code << 1) | this.get(1);
      if (++len > 16) throw new CorruptJpegError("corrupt Huffman data");
    }
    return h.values[code + h.valoff[len]];
  }

  /** Reads `s` bits and sign-extends them (JPEG's EXTEND). */
  receiveExtend(s: number): number {
    if (s === 0) return 0;
    const v = this.get(s);
    return v < 1 << (s - 1) ? v - (1 << s) + 1 : v;
  }

  /** Drops buffered bits and moves to the next marker (restarts, end of scan). */
  reset(): void {
    this.acc = 0;
    this.bits = 0;
    this.marker = false;
  }
}

/**
 * Decodes a JPEG to RGB exactly as libjpeg-turbo (as used by PIL) does with default settings.
 * Throws {@linkcode UnsupportedJpegError} for features it leaves to other decoders and
 * {@linkcode CorruptJpegError} for malformed data.
 *
 * @example
 * ```ts
 * import { encodeJpeg, Image } from "image-js";
 * import { decodeJpeg } from "@webtune/data";
 * const { image } = decodeJpeg(encodeJpeg(new Image(16, 8, { colorModel: "RGBA" })));
 * console.log(image.width, image.height); // 16 8
 * ```
 */
export function decodeJpeg(data: Uint8Array): DecodedJpeg {
  if (data[0] !== 0xff || data[1] !== 0xd8) throw new CorruptJpegError("no SOI marker");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const qt: (Int32Array | undefined)[] = [];
  const dcTables: (Huffman | undefined)[] = [];
  const acTables: (Huffman | undefined)[] = [];
  let frame: Frame | undefined;
  let restartInterval = 0;
  let jfif = false;
  let adobeTransform = -1;
  let orientation = 1;
  let eobrun = 0;
  let pos = 2;
  const u16 = (p: number) => {
    if (p + 2 > data.length) throw new CorruptJpegError("truncated");
    return view.getUint16(p);
  };

  for (;;) {
    // Find the next marker, skipping fill bytes (and garbage, as libjpeg does with a warning).
    while (pos < data.length && data[pos] !== 0xff) pos++;
    while (pos < data.length && data[pos] === 0xff) pos++;
    if (pos >= data.length) throw new CorruptJpegError("truncated (no EOI)");
    const marker = data[pos++];
    if (marker === 0xd9) break; // EOI
    if (marker >= 0xd0 && marker <= 0xd7) continue; // stray RSTn
    const length = u16(pos);
    const end = pos + length;
    if (length < 2) throw new CorruptJpegError("bad segment length");
    if (end > data.length) throw new CorruptJpegError("truncated segment");
    const seg = pos + 2;
    switch (marker) {
      case 0xdb: { // DQT
        let p = seg;
        while (p < end) {
          const pq = data[p] >> 4, tq = data[p] & 15;
          p++;
          if (p + (pq ? 128 : 64) > end) throw new CorruptJpegError("truncated quantisation table");
          const table = new Int32Array(64);
          for (let i = 0; i < 64; i++) {
            table[ZIGZAG[i]] = pq ? view.getUint16(p + 2 * i) : data[p + i];
          }
          p += pq ? 128 : 64;
          qt[tq] = table;
        }
        break;
      }
      case 0xc4: { // DHT
        let p = seg;
        while (p < end) {
          const tc = data[p] >> 4, th = data[p] & 15;
          if (p + 17 > end) throw new CorruptJpegError("truncated Huffman table");
          const counts = data.subarray(p + 1, p + 17);
          let total = 0;
          for (let i = 0; i < 16; i++) total += counts[i];
          if (p + 17 + total > end) throw new CorruptJpegError("truncated Huffman table");
          const values = data.slice(p + 17, p + 17 + total);
          (tc === 0 ? dcTables : acTables)[th] = buildHuffman(counts, values);
          p += 17 + total;
        }
        break;
      }
      case 0xc0:
      case 0xc1:
      case 0xc2: { // SOF0 baseline, SOF1 extended, SOF2 progressive (Huffman)
        if (frame) throw new UnsupportedJpegError("more than one frame");
        if (data[seg] !== 8) throw new UnsupportedJpegError(`${data[seg]}-bit samples`);
        if (seg + 6 > end) throw new CorruptJpegError("truncated frame header");
        const height = u16(seg + 1), width = u16(seg + 3), n = data[seg + 5];
        if (n !== 1 && n !== 3) throw new UnsupportedJpegError(`${n} components`);
        if (seg + 6 + 3 * n > end) throw new CorruptJpegError("truncated frame header");
        if (width === 0 || height === 0) {
          throw new UnsupportedJpegError("size given by a DNL marker");
        }
        const components: Component[] = [];
        for (let i = 0; i < n; i++) {
          const p = seg + 6 + i * 3;
          const h = data[p + 1] >> 4, v = data[p + 1] & 15;
          if (h < 1 || h > 4 || v < 1 || v > 4) throw new CorruptJpegError("bad sampling factors");
          components.push({
            id: data[p],
            h,
            v,
            tq: data[p + 2],
            blocksPerLine: 0,
            blocksPerColumn: 0,
            paddedLine: 0,
            coefs: new Int32Array(0),
            width: 0,
            height: 0,
            dcPred: 0,
          });
        }
        // A single-component image is coded without subsampling whatever its factors say.
        if (n === 1) components[0].h = components[0].v = 1;
        const maxH = Math.max(...components.map((c) => c.h));
        const maxV = Math.max(...components.map((c) => c.v));
        const mcusPerLine = Math.ceil(width / (8 * maxH));
        const mcusPerColumn = Math.ceil(height / (8 * maxV));
        // Every 8x8 block takes at least one bit (its DC code), so a file too short for the
        // blocks its header declares is refused before their memory is allocated.
        let blocks = 0;
        for (const c of components) {
          blocks += Math.ceil(Math.ceil((width * c.h) / maxH) / 8) *
            Math.ceil(Math.ceil((height * c.v) / maxV) / 8);
        }
        if (blocks > 8 * data.length) {
          throw new CorruptJpegError(
            `${width}x${height} needs ${blocks} blocks, more than ${data.length} bytes can hold ` +
              `(truncated or corrupt)`,
          );
        }
        for (const c of components) {
          c.width = Math.ceil((width * c.h) / maxH);
          c.height = Math.ceil((height * c.v) / maxV);
          c.blocksPerLine = Math.ceil(c.width / 8);
          c.blocksPerColumn = Math.ceil(c.height / 8);
          const paddedLine = n === 1 ? c.blocksPerLine : mcusPerLine * c.h;
          const paddedColumn = n === 1 ? c.blocksPerColumn : mcusPerColumn * c.v;
          c.coefs = new Int32Array(paddedLine * paddedColumn * 64);
          c.paddedLine = paddedLine;
          if (maxH % c.h !== 0 || maxV % c.v !== 0) {
            throw new UnsupportedJpegError("non-integral sampling ratios");
          }
        }
        frame = {
          progressive: marker === 0xc2,
          width,
          height,
          maxH,
          maxV,
          mcusPerLine,
          mcusPerColumn,
          components,
        };
        break;
      }
      case 0xc3:
      case 0xc5:
      case 0xc6:
      case 0xc7:
      case 0xc9:
      case 0xca:
      case 0xcb:
      case 0xcd:
      case 0xce:
      case 0xcf:
        throw new UnsupportedJpegError(
          `SOF${marker - 0xc0} (lossless, hierarchical or arithmetic)`,
        );
      case 0xdd: // DRI
        restartInterval = u16(seg);
        break;
      case 0xe0: // APP0: JFIF means YCbCr
        if (
          length >= 7 && data[seg] === 0x4a && data[seg + 1] === 0x46 && data[seg + 2] === 0x49 &&
          data[seg + 3] === 0x46 && data[seg + 4] === 0
        ) jfif = true;
        break;
      case 0xe1: // APP1: Exif orientation
        orientation = exifOrientation(data, seg, end) ?? orientation;
        break;
      case 0xee: // APP14 Adobe: colour transform flag
        if (
          length >= 14 && data[seg] === 0x41 && data[seg + 1] === 0x64 && data[seg + 2] === 0x6f &&
          data[seg + 3] === 0x62 && data[seg + 4] === 0x65
        ) adobeTransform = data[seg + 11];
        break;
      case 0xda: { // SOS
        if (!frame) throw new CorruptJpegError("scan before frame");
        const ns = data[seg];
        if (ns < 1 || ns > frame.components.length) {
          throw new CorruptJpegError(`scan of ${ns} components`);
        }
        if (seg + 4 + ns * 2 > end) throw new CorruptJpegError("truncated scan header");
        const p = seg + 1 + ns * 2;
        const ss = data[p], se = data[p + 1], ah = data[p + 2] >> 4, al = data[p + 2] & 15;
        if (
          frame.progressive &&
          (se > 63 || ss > se || (ss === 0) !== (se === 0) || al > 13 || (ss > 0 && ns !== 1))
        ) {
          throw new CorruptJpegError("bad progressive scan parameters");
        }
        // Which tables the scan decodes with: DC in a first DC pass, AC in any AC pass.
        const needsDc = !frame.progressive || (ss === 0 && ah === 0);
        const needsAc = !frame.progressive || ss > 0;
        const scan: Component[] = [];
        for (let i = 0; i < ns; i++) {
          const id = data[seg + 1 + i * 2], tables = data[seg + 2 + i * 2];
          const c = frame.components.find((c) => c.id === id);
          if (!c) throw new CorruptJpegError("scan names an unknown component");
          c.dcTable = dcTables[tables >> 4];
          c.acTable = acTables[tables & 15];
          if ((needsDc && !c.dcTable) || (needsAc && !c.acTable)) {
            throw new CorruptJpegError("scan uses an undefined Huffman table");
          }
          scan.push(c);
        }
        const reader = new BitReader(data, end);
        eobrun = 0;
        decodeScan(
          frame,
          scan,
          reader,
          restartInterval,
          ss,
          se,
          ah,
          al,
          () => eobrun,
          (v) => (eobrun = v),
        );
        pos = reader.pos;
        continue; // the reader stopped at the next marker
      }
      case 0xdc: // DNL
        throw new UnsupportedJpegError("DNL marker");
      default:
        break; // APPn, COM, ...: skipped
    }
    pos = end;
  }
  if (!frame) throw new CorruptJpegError("no frame");
  for (const c of frame.components) {
    if (!qt[c.tq]) throw new CorruptJpegError("missing quantisation table");
  }
  const planes = frame.components.map((c) => idctPlane(c, qt[c.tq]!));
  const image = toRgb(frame, planes, jfif, adobeTransform);
  return { image, orientation };
}

type Scan = Component[];

function decodeScan(
  frame: Frame,
  scan: Scan,
  r: BitReader,
  restartInterval: number,
  ss: number,
  se: number,
  ah: number,
  al: number,
  getEob: () => number,
  setEob: (v: number) => void,
): void {
  const progressive = frame.progressive;
  let decodeBlock: (c: Component, off: number) => void;
  if (!progressive) {
    decodeBlock = (c, off) => {
      const coefs = c.coefs;
      const t = r.decode(c.dcTable!);
      c.dcPred += r.receiveExtend(t);
      coefs[off] = c.dcPred;
      for (let k = 1; k < 64;) {
        const rs = r.decode(c.acTable!);
        const s = rs & 15, run = rs >> 4;
        if (s === 0) {
          if (run < 15) break;
          k += 16;
          continue;
        }
        k += run;
        if (k > 63) break;
        coefs[off + ZIGZAG[k]] = r.receiveExtend(s);
        k++;
      }
    };
  } else if (ss === 0) {
    decodeBlock = ah === 0
      ? (c, off) => {
        const t = r.decode(c.dcTable!);
        c.dcPred += r.receiveExtend(t);
        c.coefs[off] = c.dcPred * (1 << al);
      }
      : (c, off) => {
        if (r.get(1)) c.coefs[off] |= 1 << al;
      };
  } else if (ah === 0) {
    decodeBlock = (c, off) => {
      let eob = getEob();
      if (eob > 0) {
        setEob(eob - 1);
        return;
      }
      const coefs = c.coefs;
      for (let k = ss; k <= se;) {
        const rs = r.decode(c.acTable!);
        const s = rs & 15, run = rs >> 4;
        if (s === 0) {
          if (run < 15) {
            eob = (1 << run) - 1 + r.get(run);
            setEob(eob);
            break;
          }
          k += 16;
          continue;
        }
        k += run;
        if (k > 63) break;
        coefs[off + ZIGZAG[k]] = r.receiveExtend(s) * (1 << al);
        k++;
      }
    };
  } else {
    // Successive approximation refinement of AC coefficients (libjpeg's decode_mcu_AC_refine).
    const p1 = 1 << al, m1 = -1 << al;
    decodeBlock = (c, off) => {
      const coefs = c.coefs;
      let k = ss;
      let eob = getEob();
      if (eob === 0) {
        for (; k <= se; k++) {
          const rs = r.decode(c.acTable!);
          let run = rs >> 4;
          const s = rs & 15;
          let value = 0;
          if (s !== 0) {
            value = r.get(1) ? p1 : m1;
          } else if (run !== 15) {
            eob = 1 << run;
            if (run) eob += r.get(run);
            break;
          }
          for (; k <= se; k++) {
            const z = off + ZIGZAG[k];
            if (coefs[z] !== 0) {
              if (r.get(1) && (coefs[z] & p1) === 0) coefs[z] += coefs[z] >= 0 ? p1 : m1;
            } else {
              if (run === 0) {
                if (value !== 0) coefs[z] = value;
                break;
              }
              run--;
            }
          }
        }
      }
      if (eob > 0) {
        for (; k <= se; k++) {
          const z = off + ZIGZAG[k];
          if (coefs[z] !== 0 && r.get(1) && (coefs[z] & p1) === 0) {
            coefs[z] += coefs[z] >= 0 ? p1 : m1;
          }
        }
        eob--;
      }
      setEob(eob);
    };
  }

  const single = scan.length === 1;
  const total = single
    ? scan[0].blocksPerLine * scan[0].blocksPerColumn
    : frame.mcusPerLine * frame.mcusPerColumn;
  const resetScan = () => {
    for (const c of scan) c.dcPred = 0;
    setEob(0);
  };
  resetScan();
  for (let unit = 0; unit < total; unit++) {
    if (restartInterval && unit > 0 && unit % restartInterval === 0) {
      // Expect RSTn: drop leftover bits, step over the marker, reset predictions.
      r.reset();
      let p = r.pos;
      while (
        p < r.data.length && !(r.data[p] === 0xff && r.data[p + 1] >= 0xd0 && r.data[p + 1] <= 0xd7)
      ) {
        if (r.data[p] === 0xff && r.data[p + 1] !== 0 && r.data[p + 1] !== 0xff) break; // other marker
        p++;
      }
      if (r.data[p] === 0xff && r.data[p + 1] >= 0xd0 && r.data[p + 1] <= 0xd7) p += 2;
      r.pos = p;
      resetScan();
    }
    if (single) {
      const c = scan[0];
      const row = Math.floor(unit / c.blocksPerLine), col = unit % c.blocksPerLine;
      const line = c.paddedLine;
      decodeBlock(c, (row * line + col) * 64);
    } else {
      const mcuRow = Math.floor(unit / frame.mcusPerLine), mcuCol = unit % frame.mcusPerLine;
      for (const c of scan) {
        const line = c.paddedLine;
        for (let v = 0; v < c.v; v++) {
          for (let h = 0; h < c.h; h++) {
            const row = mcuRow * c.v + v, col = mcuCol * c.h + h;
            decodeBlock(c, (row * line + col) * 64);
          }
        }
      }
    }
  }
  // Leave the reader at the marker that ends the scan.
  r.reset();
  let p = r.pos;
  while (
    p + 1 < r.data.length &&
    !(r.data[p] === 0xff && r.data[p + 1] !== 0 &&
      !(r.data[p + 1] >= 0xd0 && r.data[p + 1] <= 0xd7))
  ) p++;
  r.pos = p;
}

// jidctint.c constants (CONST_BITS 13).
const FIX_0_298631336 = 2446;
const FIX_0_390180644 = 3196;
const FIX_0_541196100 = 4433;
const FIX_0_765366865 = 6270;
const FIX_0_899976223 = 7373;
const FIX_1_175875602 = 9633;
const FIX_1_501321110 = 12299;
const FIX_1_847759065 = 15137;
const FIX_1_961570560 = 16069;
const FIX_2_053119869 = 16819;
const FIX_2_562915447 = 20995;
const FIX_3_072711026 = 25172;

/** libjpeg's post-IDCT range limit: index with `(x + 128... )` masked to 10 bits, as C does. */
const IDCT_LIMIT = (() => {
  const t = new Uint8Array(1024);
  for (let i = 0; i < 1024; i++) {
    // idct_range_limit[x & 1023] for x centred on 0: 0..127 -> 128..255, 128..511 -> 255,
    // 512..895 -> 0, 896..1023 -> 0..127.
    t[i] = i < 128 ? i + 128 : i < 512 ? 255 : i < 896 ? 0 : i - 896;
  }
  return t;
})();

/**
 * libjpeg's DESCALE (add half, arithmetic shift right) for pass 1 (11 bits) and pass 2 (18
 * bits), on doubles: the products can exceed 32 bits, and multiplying by a power of two is exact.
 */
function descale11(x: number): number {
  return Math.floor((x + 1024) * 0.00048828125);
}
function descale18(x: number): number {
  return Math.floor((x + 131072) * 0.000003814697265625);
}

/** Runs `jpeg_idct_islow` on every block; returns the component's plane (padded to blocks). */
function idctPlane(c: Component, q: Int32Array): { data: Uint8Array; stride: number } {
  const line = c.paddedLine;
  const rows = c.coefs.length / 64 / line;
  const stride = line * 8;
  const out = new Uint8Array(stride * rows * 8);
  const ws = new Float64Array(64);
  const coefs = c.coefs;
  for (let br = 0; br < rows; br++) {
    for (let bc = 0; bc < line; bc++) {
      const off = (br * line + bc) * 64;
      // Pass 1: columns.
      for (let col = 0; col < 8; col++) {
        const i = off + col;
        if (
          coefs[i + 8] === 0 && coefs[i + 16] === 0 && coefs[i + 24] === 0 && coefs[i + 32] === 0 &&
          coefs[i + 40] === 0 && coefs[i + 48] === 0 && coefs[i + 56] === 0
        ) {
          const dc = coefs[i] * q[col] * 4;
          for (let k = 0; k < 8; k++) ws[k * 8 + col] = dc;
          continue;
        }
        let z2 = coefs[i + 16] * q[col + 16];
        let z3 = coefs[i + 48] * q[col + 48];
        let z1 = (z2 + z3) * FIX_0_541196100;
        let tmp2 = z1 + z3 * -FIX_1_847759065;
        let tmp3 = z1 + z2 * FIX_0_765366865;
        z2 = coefs[i] * q[col];
        z3 = coefs[i + 32] * q[col + 32];
        let tmp0 = (z2 + z3) * 8192;
        let tmp1 = (z2 - z3) * 8192;
        const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
        tmp0 = coefs[i + 56] * q[col + 56];
        tmp1 = coefs[i + 40] * q[col + 40];
        tmp2 = coefs[i + 24] * q[col + 24];
        tmp3 = coefs[i + 8] * q[col + 8];
        z1 = tmp0 + tmp3;
        z2 = tmp1 + tmp2;
        z3 = tmp0 + tmp2;
        let z4 = tmp1 + tmp3;
        const z5 = (z3 + z4) * FIX_1_175875602;
        tmp0 *= FIX_0_298631336;
        tmp1 *= FIX_2_053119869;
        tmp2 *= FIX_3_072711026;
        tmp3 *= FIX_1_501321110;
        z1 *= -FIX_0_899976223;
        z2 *= -FIX_2_562915447;
        z3 = z3 * -FIX_1_961570560 + z5;
        z4 = z4 * -FIX_0_390180644 + z5;
        tmp0 += z1 + z3;
        tmp1 += z2 + z4;
        tmp2 += z2 + z3;
        tmp3 += z1 + z4;
        ws[col] = descale11(tmp10 + tmp3);
        ws[56 + col] = descale11(tmp10 - tmp3);
        ws[8 + col] = descale11(tmp11 + tmp2);
        ws[48 + col] = descale11(tmp11 - tmp2);
        ws[16 + col] = descale11(tmp12 + tmp1);
        ws[40 + col] = descale11(tmp12 - tmp1);
        ws[24 + col] = descale11(tmp13 + tmp0);
        ws[32 + col] = descale11(tmp13 - tmp0);
      }
      // Pass 2: rows.
      for (let row = 0; row < 8; row++) {
        const w = row * 8;
        const o = (br * 8 + row) * stride + bc * 8;
        let z2 = ws[w + 2], z3 = ws[w + 6];
        let z1 = (z2 + z3) * FIX_0_541196100;
        let tmp2 = z1 + z3 * -FIX_1_847759065;
        let tmp3 = z1 + z2 * FIX_0_765366865;
        let tmp0 = (ws[w] + ws[w + 4]) * 8192;
        let tmp1 = (ws[w] - ws[w + 4]) * 8192;
        const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
        tmp0 = ws[w + 7];
        tmp1 = ws[w + 5];
        tmp2 = ws[w + 3];
        tmp3 = ws[w + 1];
        z1 = tmp0 + tmp3;
        z2 = tmp1 + tmp2;
        z3 = tmp0 + tmp2;
        let z4 = tmp1 + tmp3;
        const z5 = (z3 + z4) * FIX_1_175875602;
        tmp0 *= FIX_0_298631336;
        tmp1 *= FIX_2_053119869;
        tmp2 *= FIX_3_072711026;
        tmp3 *= FIX_1_501321110;
        z1 *= -FIX_0_899976223;
        z2 *= -FIX_2_562915447;
        z3 = z3 * -FIX_1_961570560 + z5;
        z4 = z4 * -FIX_0_390180644 + z5;
        tmp0 += z1 + z3;
        tmp1 += z2 + z4;
        tmp2 += z2 + z3;
        tmp3 += z1 + z4;
        out[o] = IDCT_LIMIT[descale18(tmp10 + tmp3) & 1023];
        out[o + 7] = IDCT_LIMIT[descale18(tmp10 - tmp3) & 1023];
        out[o + 1] = IDCT_LIMIT[descale18(tmp11 + tmp2) & 1023];
        out[o + 6] = IDCT_LIMIT[descale18(tmp11 - tmp2) & 1023];
        out[o + 2] = IDCT_LIMIT[descale18(tmp12 + tmp1) & 1023];
        out[o + 5] = IDCT_LIMIT[descale18(tmp12 - tmp1) & 1023];
        out[o + 3] = IDCT_LIMIT[descale18(tmp13 + tmp0) & 1023];
        out[o + 4] = IDCT_LIMIT[descale18(tmp13 - tmp0) & 1023];
      }
    }
  }
  return { data: out, stride };
}

/** Upsamples a component plane to full size the way libjpeg-turbo's jdsample.c does. */
function upsample(
  c: Component,
  plane: { data: Uint8Array; stride: number },
  fx: number,
  fy: number,
  outW: number,
  outH: number,
): Uint8Array {
  const { data: src, stride } = plane;
  const w = c.width, h = c.height;
  const out = new Uint8Array(outW * outH);
  const row = (y: number) => (y < 0 ? 0 : y >= h ? h - 1 : y) * stride; // context rows clamp
  if (fx === 1 && fy === 1) {
    for (let y = 0; y < outH; y++) out.set(src.subarray(y * stride, y * stride + outW), y * outW);
    return out;
  }
  const fancyH2 = fx === 2 && w > 2;
  if (fx === 2 && fy === 1 && fancyH2) {
    const tmp = new Uint8Array(w * 2);
    for (let y = 0; y < outH; y++) {
      h2v1Row(src, y * stride, w, tmp);
      out.set(tmp.subarray(0, outW), y * outW);
    }
    return out;
  }
  if (fx === 1 && fy === 2) {
    for (let y = 0; y < outH; y++) {
      const near = Math.floor(y / 2);
      const far = y % 2 === 0 ? near - 1 : near + 1;
      const bias = y % 2 === 0 ? 1 : 2;
      const a = row(near), b = row(far);
      for (let x = 0; x < outW; x++) out[y * outW + x] = (src[a + x] * 3 + src[b + x] + bias) >> 2;
    }
    return out;
  }
  if (fx === 2 && fy === 2 && fancyH2) {
    const tmp = new Uint8Array(w * 2);
    for (let y = 0; y < outH; y++) {
      const near = Math.floor(y / 2);
      const far = y % 2 === 0 ? near - 1 : near + 1;
      h2v2Row(src, row(near), row(far), w, tmp);
      out.set(tmp.subarray(0, outW), y * outW);
    }
    return out;
  }
  // int_upsample / h2v1_upsample / h2v2_upsample: replicate each sample fx x fy times.
  for (let y = 0; y < outH; y++) {
    const s = Math.floor(y / fy) * stride;
    for (let x = 0; x < outW; x++) out[y * outW + x] = src[s + Math.floor(x / fx)];
  }
  return out;
}

function h2v1Row(src: Uint8Array, s: number, w: number, out: Uint8Array): void {
  let o = 0;
  let inv = src[s];
  out[o++] = inv;
  out[o++] = (inv * 3 + src[s + 1] + 2) >> 2;
  for (let x = 1; x < w - 1; x++) {
    inv = src[s + x] * 3;
    out[o++] = (inv + src[s + x - 1] + 1) >> 2;
    out[o++] = (inv + src[s + x + 1] + 2) >> 2;
  }
  inv = src[s + w - 1];
  out[o++] = (inv * 3 + src[s + w - 2] + 1) >> 2;
  out[o] = inv;
}

function h2v2Row(src: Uint8Array, a: number, b: number, w: number, out: Uint8Array): void {
  let o = 0;
  let thiscolsum = src[a] * 3 + src[b];
  let nextcolsum = src[a + 1] * 3 + src[b + 1];
  out[o++] = (thiscolsum * 4 + 8) >> 4;
  out[o++] = (thiscolsum * 3 + nextcolsum + 7) >> 4;
  let lastcolsum = thiscolsum;
  thiscolsum = nextcolsum;
  for (let x = 2; x < w; x++) {
    nextcolsum = src[a + x] * 3 + src[b + x];
    out[o++] = (thiscolsum * 3 + lastcolsum + 8) >> 4;
    out[o++] = (thiscolsum * 3 + nextcolsum + 7) >> 4;
    lastcolsum = thiscolsum;
    thiscolsum = nextcolsum;
  }
  out[o++] = (thiscolsum * 3 + lastcolsum + 8) >> 4;
  out[o] = (thiscolsum * 4 + 7) >> 4;
}

// jdcolor.c's YCbCr -> RGB tables (SCALEBITS 16).
const CR_R = new Int32Array(256), CB_B = new Int32Array(256);
const CR_G = new Int32Array(256), CB_G = new Int32Array(256);
{
  const fix = (x: number) => Math.floor(x * 65536 + 0.5);
  for (let i = 0; i < 256; i++) {
    const x = i - 128;
    CR_R[i] = (fix(1.402) * x + 32768) >> 16;
    CB_B[i] = (fix(1.772) * x + 32768) >> 16;
    CR_G[i] = -fix(0.71414) * x;
    CB_G[i] = -fix(0.34414) * x + 32768;
  }
}

function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function toRgb(
  frame: Frame,
  planes: { data: Uint8Array; stride: number }[],
  jfif: boolean,
  adobeTransform: number,
): RgbImage {
  const { width, height } = frame;
  const out = new Uint8Array(width * height * 3);
  const full = frame.components.map((c, i) =>
    upsample(c, planes[i], frame.maxH / c.h, frame.maxV / c.v, width, height)
  );
  if (full.length === 1) {
    const g = full[0];
    for (let i = 0, o = 0; i < g.length; i++, o += 3) out[o] = out[o + 1] = out[o + 2] = g[i];
    return { width, height, data: out };
  }
  // libjpeg's guess of the colour space (jdapimin.c): JFIF or Adobe transform 1 means YCbCr;
  // Adobe transform 0 or component ids 'R','G','B' mean RGB; anything else is taken as YCbCr.
  const ids = frame.components.map((c) => c.id);
  const rgb = !jfif && (adobeTransform === 0 ||
    (adobeTransform < 0 && ids[0] === 0x52 && ids[1] === 0x47 && ids[2] === 0x42));
  const [y, cb, cr] = full;
  if (rgb) {
    for (let i = 0, o = 0; i < y.length; i++, o += 3) {
      out[o] = y[i];
      out[o + 1] = cb[i];
      out[o + 2] = cr[i];
    }
  } else {
    for (let i = 0, o = 0; i < y.length; i++, o += 3) {
      const Y = y[i], b = cb[i], r = cr[i];
      out[o] = clamp255(Y + CR_R[r]);
      out[o + 1] = clamp255(Y + ((CB_G[b] + CR_G[r]) >> 16));
      out[o + 2] = clamp255(Y + CB_B[b]);
    }
  }
  return { width, height, data: out };
}

/** The Orientation tag (0x0112) of an APP1 Exif segment, if present and sane. */
function exifOrientation(data: Uint8Array, seg: number, end: number): number | undefined {
  if (
    end - seg < 14 || data[seg] !== 0x45 || data[seg + 1] !== 0x78 || data[seg + 2] !== 0x69 ||
    data[seg + 3] !== 0x66 || data[seg + 4] !== 0 || data[seg + 5] !== 0
  ) return undefined;
  const tiff = seg + 6;
  const little = data[tiff] === 0x49;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const u16 = (p: number) => view.getUint16(p, little);
  const u32 = (p: number) => view.getUint32(p, little);
  const ifd = tiff + u32(tiff + 4);
  if (ifd + 2 > end) return undefined;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > end) return undefined;
    if (u16(e) === 0x0112) {
      const v = u16(e + 8);
      return v >= 1 && v <= 8 ? v : undefined;
    }
  }
  return undefined;
}
