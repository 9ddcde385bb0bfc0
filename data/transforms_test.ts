import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { decodeImage } from "./decode.ts";
import { createRng } from "./rng.ts";
import {
  centerCropBox,
  normalizeInto,
  randomResizedCropParams,
  resizedCrop,
  resizedCropInto,
  roundHalfEven,
  testCrop,
  trainCrop,
} from "./transforms.ts";
import type { RgbImage } from "./image.ts";
import { HAVE_SHARED, HOTDOG_MINI, shared } from "./test_util.ts";

/** ImageNet's statistics (the pretrained config's; data does not import models). */
const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

Deno.test("transforms: Python rounding, test sizes and center-crop offsets as torchvision", () => {
  assertEquals([0.5, 1.5, 2.5, 4.5, -0.5, -1.5, 2.4, 2.6].map(roundHalfEven), [
    0,
    2,
    2,
    4,
    -0,
    -2,
    2,
    3,
  ]);
  assertEquals(centerCropBox(256, 256, 224), { top: 16, left: 16, height: 224, width: 224 });
  // round(9 / 2) == 4 in Python, not 5.
  assertEquals(centerCropBox(73, 73, 64), { top: 4, left: 4, height: 64, width: 64 });
});

Deno.test("transforms: RandomResizedCrop boxes stay inside the image and the scale/ratio ranges", () => {
  const rng = createRng(0);
  for (const [w, h] of [[500, 375], [224, 149], [149, 224], [64, 64], [1000, 50], [50, 1000]]) {
    for (let i = 0; i < 500; i++) {
      const b = randomResizedCropParams(w, h, rng);
      assert(b.left >= 0 && b.top >= 0 && b.left + b.width <= w && b.top + b.height <= h);
      assert(b.width > 0 && b.height > 0);
      const fallback = w / h > 4 / 3 * 1.5 || h / w > 4 / 3 * 1.5;
      if (!fallback) {
        // Rounding to whole pixels moves area and ratio a little past the nominal ranges.
        const area = (b.width * b.height) / (w * h);
        assert(area >= 0.08 * 0.8 && area <= 1.0001, `area ${area} for ${w}x${h}`);
        const ratio = b.width / b.height;
        assert(ratio >= 0.75 * 0.85 && ratio <= (4 / 3) * 1.15, `ratio ${ratio}`);
      }
    }
  }
  // A strip far outside the ratio range falls back to a centred crop clamped to 4:3.
  const strip = randomResizedCropParams(1000, 50, {
    float: () => 0.99,
    uniform: (_a, b) => b - 1e-9,
    int: (lo) => lo,
  });
  assertEquals(strip, { top: 0, left: 466, height: 50, width: 67 });
});

Deno.test("transforms: the train transform is deterministic for a seed and flips mirror", () => {
  const img: RgbImage = {
    width: 40,
    height: 30,
    data: Uint8Array.from({ length: 3600 }, (_, i) => (i * 31) % 256),
  };
  const run = (seed: number) => {
    const rng = createRng(seed);
    return Array.from({ length: 5 }, () => trainCrop(img, { size: 16 }, rng));
  };
  const a = run(42), b = run(42), c = run(43);
  assertEquals(a, b);
  assert(JSON.stringify(a.map((t) => t.box)) !== JSON.stringify(c.map((t) => t.box)));

  const crop = a[0].image;
  const plain = new Float32Array(16 * 16 * 3), flipped = new Float32Array(16 * 16 * 3);
  normalizeInto(crop, plain, 0, IMAGENET, false);
  normalizeInto(crop, flipped, 0, IMAGENET, true);
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < 16; x++) {
      for (let c = 0; c < 3; c++) {
        assertEquals(flipped[(y * 16 + x) * 3 + c], plain[(y * 16 + 15 - x) * 3 + c]);
      }
    }
  }
  // flipProbability 0 / 1 decide the coin.
  assertEquals(trainCrop(img, { size: 8, flipProbability: 0 }, createRng(1)).flip, false);
  assertEquals(trainCrop(img, { size: 8, flipProbability: 1 }, createRng(1)).flip, true);
});

Deno.test("transforms: the fused crop+resize+flip+normalise equals the separate steps", () => {
  const img: RgbImage = {
    width: 90,
    height: 70,
    data: Uint8Array.from({ length: 90 * 70 * 3 }, (_, i) => (i * 131 + (i >> 7)) % 256),
  };
  const small: RgbImage = { width: 45, height: 35, data: img.data.slice(0, 45 * 35 * 3) };
  const boxes = [
    { top: 3, left: 5, height: 40, width: 50 }, // upscale to 64: 2-3 taps
    { top: 0, left: 0, height: 70, width: 90 }, // downscale to 16: many taps
    { top: 10, left: 20, height: 16, width: 16 }, // same size: no resampling
  ];
  for (const size of [64, 16]) {
    for (const box of boxes) {
      for (const flip of [false, true]) {
        for (const [src, original] of [[img, img], [small, img]] as const) {
          const a = new Float32Array(size * size * 3), b = new Float32Array(size * size * 3);
          normalizeInto(resizedCrop(src, box, size, original), a, 0, IMAGENET, flip);
          resizedCropInto(src, box, size, original, b, 0, IMAGENET, flip);
          assertEquals(b, a, `size ${size} box ${JSON.stringify(box)} flip ${flip} ${src.width}`);
        }
      }
    }
  }
});

Deno.test("transforms: normalisation equals torch's float32 (x/255 - mean)/std", () => {
  const data = Uint8Array.from({ length: 256 * 3 }, (_, i) => Math.floor(i / 3));
  const out = new Float32Array(data.length);
  normalizeInto({ width: 256, height: 1, data }, out, 0, IMAGENET);
  const f = Math.fround, mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  for (let i = 0; i < data.length; i++) {
    const c = i % 3;
    assertEquals(out[i], f(f(f(data[i] / 255) - f(mean[c])) / f(std[c])));
  }
  assertAlmostEquals(out[0], -2.1179, 1e-4);
  assertAlmostEquals(out[out.length - 1], 2.64, 1e-4);
});

/** Reads a safetensors file: 8-byte little-endian header length, JSON header, raw tensors. */
function readSafetensors(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const tensor = (key: string) => {
    const { dtype, shape, data_offsets: [a, b] } = header[key];
    assertEquals(dtype, "F32");
    const raw = bytes.slice(8 + headerLength + a, 8 + headerLength + b);
    return { shape: shape as number[], data: new Float32Array(raw.buffer) };
  };
  return { metadata: header.__metadata__ as Record<string, string>, tensor };
}

Deno.test({
  name: "transforms: test transform vs torchvision's on three real photos (reference fixture)",
  ignore: !HAVE_SHARED,
  async fn() {
    const ref = readSafetensors(
      await Deno.readFile(shared("fixtures/transforms/test-transform-reference.safetensors")),
    );
    // Measured: max |diff| 0 at 224 and at 64 — bit-identical to torchvision. The JPEG decoder
    // (jpeg.ts) reproduces libjpeg-turbo, the resize Pillow, and the normalisation torch's float32
    // arithmetic. (With image-js' jpeg-js decoder instead, max |diff| was 0.71 at 224 and 0.29 at
    // 64: its IDCT and nearest-neighbour chroma upsampling differ from libjpeg-turbo's.)
    for (let i = 0; i < 3; i++) {
      const file = ref.metadata[`img${i}`];
      const img = decodeImage(await Deno.readFile(`${HOTDOG_MINI}/${file}`), { name: file });
      for (const size of [224, 64]) {
        const { shape, data: expected } = ref.tensor(`img${i}_test_${size}`);
        assertEquals(shape, [3, size, size]);
        const nhwc = new Float32Array(size * size * 3);
        normalizeInto(testCrop(img, size, size === 224 ? 256 : 73), nhwc, 0, IMAGENET);
        let max = 0, sum = 0;
        for (let c = 0; c < 3; c++) {
          for (let p = 0; p < size * size; p++) {
            const d = Math.abs(nhwc[p * 3 + c] - expected[c * size * size + p]);
            max = Math.max(max, d);
            sum += d;
          }
        }
        const mean = sum / expected.length;
        console.log(
          `  ${file} @${size}: max |diff| ${max.toFixed(4)}, mean |diff| ${mean.toFixed(4)}`,
        );
        assertEquals(max, 0, `${file} @${size}: max |diff| ${max}, mean ${mean}`);
      }
    }
  },
});
