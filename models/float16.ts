/**
 * 16-bit float decoding for checkpoints saved in half precision or bfloat16.
 *
 * @module
 */

/** IEEE 754 half → number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const bf16Scratch = new DataView(new ArrayBuffer(4));
/** bfloat16 (the top half of a float32) at byte `i` → number. */
export function bf16ToFloat(v: DataView, i: number): number {
  bf16Scratch.setUint32(0, v.getUint16(i, true) << 16, true);
  return bf16Scratch.getFloat32(0, true);
}
