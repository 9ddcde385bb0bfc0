/**
 * Incremental SHA-1 and SHA-256.
 *
 * Hand-written because Web Crypto's `crypto.subtle.digest` only hashes a whole buffer at once:
 * checking a 260 MB download while it streams (and resuming the hash across a retried request)
 * needs an incremental hash, in Deno and in a browser, without a dependency.
 *
 * @module
 */

/** Hash algorithms {@linkcode createHasher} knows. */
export type HashAlgorithm = "sha1" | "sha256";

/** An incremental hash: feed chunks with `update`, then read `hex()` once. */
export interface Hasher {
  /** The algorithm. */
  readonly algorithm: HashAlgorithm;
  /** Adds bytes to the message. */
  update(chunk: Uint8Array): void;
  /** Finishes and returns the digest as lowercase hex; the hasher cannot be updated after. */
  hex(): string;
}

const K256 = new Uint32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

function sha1Blocks(h: Uint32Array, w: Uint32Array, data: Uint8Array, off: number, end: number) {
  for (; off < end; off += 64) {
    for (let i = 0; i < 16; i++) {
      const p = off + i * 4;
      w[i] = (data[p] << 24) | (data[p + 1] << 16) | (data[p + 2] << 8) | data[p + 3];
    }
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
      w[i] = (x << 1) | (x >>> 31);
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (let i = 0; i < 80; i++) {
      let f: number, k: number;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6;
      }
      const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
}

function sha256Blocks(h: Uint32Array, w: Uint32Array, data: Uint8Array, off: number, end: number) {
  for (; off < end; off += 64) {
    for (let i = 0; i < 16; i++) {
      const p = off + i * 4;
      w[i] = (data[p] << 24) | (data[p + 1] << 16) | (data[p + 2] << 8) | data[p + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15], y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + s1 + ch + K256[i] + w[i]) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (s0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }
}

const INIT: Record<HashAlgorithm, number[]> = {
  sha1: [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0],
  sha256: [
    0x6a09e667,
    0xbb67ae85,
    0x3c6ef372,
    0xa54ff53a,
    0x510e527f,
    0x9b05688c,
    0x1f83d9ab,
    0x5be0cd19,
  ],
};

/**
 * Creates an incremental SHA-1 or SHA-256 hasher.
 *
 * @example
 * ```ts
 * import { createHasher } from "@webtune/data";
 * const h = createHasher("sha1");
 * h.update(new TextEncoder().encode("ab"));
 * h.update(new TextEncoder().encode("c"));
 * console.log(h.hex()); // a9993e364706816aba3e25717850c26c9cd0d89d
 * ```
 */
export function createHasher(algorithm: HashAlgorithm): Hasher {
  const init = INIT[algorithm];
  if (!init) throw new RangeError(`unknown hash algorithm ${algorithm}`);
  const h = new Uint32Array(init);
  const w = new Uint32Array(algorithm === "sha1" ? 80 : 64);
  const blocks = algorithm === "sha1" ? sha1Blocks : sha256Blocks;
  const buffer = new Uint8Array(64);
  let buffered = 0;
  let length = 0;
  let done = false;
  return {
    algorithm,
    update(chunk) {
      if (done) throw new Error("hash already finished");
      length += chunk.length;
      let off = 0;
      if (buffered > 0) {
        const take = Math.min(64 - buffered, chunk.length);
        buffer.set(chunk.subarray(0, take), buffered);
        buffered += take;
        off = take;
        if (buffered < 64) return;
        blocks(h, w, buffer, 0, 64);
        buffered = 0;
      }
      const whole = off + Math.floor((chunk.length - off) / 64) * 64;
      blocks(h, w, chunk, off, whole);
      buffer.set(chunk.subarray(whole), 0);
      buffered = chunk.length - whole;
    },
    hex() {
      if (done) throw new Error("hash already finished");
      done = true;
      const bits = length * 8;
      const pad = new Uint8Array(buffered < 56 ? 64 : 128);
      pad.set(buffer.subarray(0, buffered));
      pad[buffered] = 0x80;
      const view = new DataView(pad.buffer);
      view.setUint32(pad.length - 8, Math.floor(bits / 2 ** 32));
      view.setUint32(pad.length - 4, bits >>> 0);
      blocks(h, w, pad, 0, pad.length);
      return Array.from(h, (x) => x.toString(16).padStart(8, "0")).join("");
    },
  };
}
