import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { fillNormal, type Random } from "./init.ts";

/** The textbook Box-Muller with `Math.cos`/`Math.sin`: what `fillNormal` must equal bit for bit. */
function boxMuller(out: Float32Array, std: number, random: Random): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    const r = std * Math.sqrt(-2 * Math.log(1 - random()));
    const theta = 2 * Math.PI * random();
    out[i] = r * Math.cos(theta);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

/** A seeded xorshift32 uniform on [0, 1) (the test's own, independent of data/rng.ts). */
function xorshift(seed: number): Random {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/** Replays `values` in a cycle. */
function cycle(values: number[]): Random {
  let i = 0;
  return () => values[i++ % values.length];
}

/** Indices where the two arrays' bits differ (so -0 vs 0 and NaN payloads count). */
function bitDifferences(a: Float32Array, b: Float32Array): number[] {
  const ua = new Uint32Array(a.buffer), ub = new Uint32Array(b.buffer);
  const out: number[] = [];
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) out.push(i);
  return out;
}

function assertSameAsBoxMuller(length: number, std: number, random: () => Random): void {
  const got = fillNormal(new Float32Array(length), std, random());
  const want = boxMuller(new Float32Array(length), std, random());
  const diff = bitDifferences(got, want);
  assertEquals(
    diff.length,
    0,
    `first difference at ${diff[0]}: ${got[diff[0]]} vs Math.cos/sin's ${want[diff[0]]}`,
  );
}

Deno.test("fillNormal equals Box-Muller with Math.cos/sin bit for bit over 4 million draws", () => {
  for (const [seed, std] of [[1, 0.05], [2, 1], [3, 1e-3]]) {
    assertSameAsBoxMuller(1_333_333, std, () => xorshift(seed)); // odd: the last sin is unused
  }
});

Deno.test("fillNormal is exact at the quadrant edges and for constant generators", () => {
  const edges = [0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1 - 2 ** -32];
  const near = edges.flatMap((e) => [e, e + 2 ** -32, e - 2 ** -32].filter((u) => u >= 0));
  // Each angle with a zero radius (u = 0: 0 · cos keeps cos's sign) and with a non-zero one.
  for (const turn of near) {
    for (const radius of [0, 0.5, 1 - 2 ** -32]) {
      assertSameAsBoxMuller(6, 0.1, () => cycle([radius, turn]));
    }
  }
  // parity_test's generator: every draw 0.5.
  assertSameAsBoxMuller(1001, 0.02, () => () => 0.5);
});

Deno.test("fillNormal falls back to Math.cos/sin for a generator outside [0, 1)", () => {
  for (const bad of [1, 1.25, -0.25, 4.75, 2 ** 40 + 0.5, NaN]) {
    assertSameAsBoxMuller(4, 0.1, () => cycle([0.3, bad]));
  }
});

Deno.test("fillNormal draws N(0, std²)", () => {
  const std = 0.3;
  const x = fillNormal(new Float32Array(200_000), std, xorshift(7));
  let sum = 0, squares = 0;
  for (const v of x) {
    sum += v;
    squares += v * v;
  }
  const mean = sum / x.length;
  // 5 standard errors of the sample mean and of the sample variance.
  assertAlmostEquals(mean, 0, 5 * std / Math.sqrt(x.length));
  assertAlmostEquals(squares / x.length, std * std, 5 * std * std * Math.sqrt(2 / x.length));
  assert(x.every(Number.isFinite));
});
