import { assertEquals, assertThrows } from "@std/assert";
import { resizeBilinear } from "./resample.ts";
import type { RgbImage } from "./image.ts";
import { sha256Hex } from "./test_util.ts";

// Expected outputs were produced by Pillow 12.3 (`Image.resize(size, Image.BILINEAR, box=...)`
// on the same generated images); its resampling code is unchanged since Pillow 7, which the
// torchvision reference fixture used.
function pattern(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      data[o] = (x * 37 + y * 11) % 256;
      data[o + 1] = (x * x * 5 + y * 29) % 256;
      data[o + 2] = (x * y * 13 + 7) % 256;
    }
  }
  return { width: w, height: h, data };
}

Deno.test("resample: matches Pillow exactly on small down- and upscales", async () => {
  const src = pattern(13, 9);
  assertEquals(Array.from(resizeBilinear(src, 5, 4).data), [
    48,
    34,
    19,
    133,
    86,
    43,
    151,
    151,
    72,
    73,
    124,
    89,
    158,
    138,
    77,
    70,
    93,
    47,
    155,
    144,
    120,
    150,
    124,
    138,
    95,
    130,
    127,
    180,
    114,
    119,
    96,
    159,
    77,
    178,
    176,
    129,
    101,
    112,
    118,
    121,
    126,
    114,
    200,
    127,
    116,
    118,
    212,
    93,
    172,
    137,
    121,
    78,
    125,
    124,
    143,
    121,
    129,
    166,
    118,
    140,
  ]);
  assertEquals(Array.from(resizeBilinear(src, 6, 5, [1.5, 2.25, 11.75, 8.5]).data), [
    97,
    90,
    66,
    160,
    137,
    120,
    219,
    170,
    170,
    90,
    95,
    145,
    95,
    165,
    155,
    154,
    115,
    93,
    109,
    124,
    96,
    172,
    171,
    160,
    180,
    153,
    122,
    67,
    94,
    101,
    107,
    125,
    138,
    166,
    133,
    101,
    123,
    161,
    127,
    186,
    189,
    120,
    157,
    90,
    87,
    56,
    131,
    136,
    121,
    110,
    97,
    180,
    150,
    130,
    138,
    198,
    148,
    195,
    195,
    131,
    142,
    89,
    146,
    71,
    156,
    111,
    136,
    126,
    134,
    193,
    103,
    104,
    152,
    215,
    142,
    190,
    100,
    100,
    57,
    96,
    110,
    85,
    149,
    145,
    150,
    91,
    125,
    200,
    132,
    137,
  ]);
  const digests: [number, number, string][] = [
    [30, 20, "f91ea8d5938a21be301ae3a02f92774911c3779c20f8ef9c7353f52e0c1aabee"],
    [7, 9, "1218a3f1771e89f75012a5dc0c3be3cf3be71d36ecfb035ca021f22619d668bb"],
    [224, 224, "87afb5b018d0e408127deb708e3e21595ea6603cab2d2d5c21d3e130744bfd6d"],
  ];
  for (const [w, h, digest] of digests) {
    assertEquals(await sha256Hex(resizeBilinear(src, w, h).data), digest, `13x9 -> ${w}x${h}`);
  }
});

Deno.test("resample: matches Pillow exactly on wide antialiased downscales and a box", async () => {
  const src = pattern(301, 203);
  assertEquals(
    await sha256Hex(resizeBilinear(src, 64, 43).data),
    "4f89d99505f2081c7979c5d7f1f43efff6621d48b5d668e069208ad2fdbe00bc",
  );
  assertEquals(
    await sha256Hex(resizeBilinear(src, 150, 101).data),
    "4f400b455c4e6f36794fca0ecad12a670214bf4bad9ad13e28e394d1046bece8",
  );
  assertEquals(
    await sha256Hex(resizeBilinear(src, 224, 224, [10, 20, 250, 190]).data),
    "a74a47cc68fc419f4ec97e9f9a980f34ab1f7802ab84dd3c7448d94cb206fda0",
  );
});

Deno.test("resample: same size is a copy; bad sizes and boxes throw", () => {
  const src = pattern(4, 3);
  const same = resizeBilinear(src, 4, 3);
  assertEquals(same.data, src.data);
  assertThrows(() => resizeBilinear(src, 0, 3), RangeError);
  assertThrows(() => resizeBilinear(src, 2, 2, [0, 0, 5, 3]), RangeError);
});
