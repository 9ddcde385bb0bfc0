import { assertEquals, assertThrows } from "@std/assert";
import { DecodeError, decodeImage } from "./decode.ts";
import { CorruptJpegError, decodeJpeg, UnsupportedJpegError } from "./jpeg.ts";
import { sha256Hex } from "./test_util.ts";

// Generated with Pillow (libjpeg-turbo) from a synthetic pattern; see the file's "generator".
const VECTORS: {
  vectors: { name: string; width: number; height: number; rgbSha256: string; jpeg: string }[];
} = JSON.parse(await Deno.readTextFile(new URL("./testdata/jpeg_vectors.json", import.meta.url)));

const bytes = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

Deno.test("jpeg: identical to libjpeg-turbo (PIL) on baseline, progressive, subsampled, restart, grey", async () => {
  for (const v of VECTORS.vectors) {
    const { image, orientation } = decodeJpeg(bytes(v.jpeg));
    assertEquals([image.width, image.height], [v.width, v.height], v.name);
    assertEquals(await sha256Hex(image.data), v.rgbSha256, v.name);
    assertEquals(orientation, v.name.includes("Orientation 6") ? 6 : 1, v.name);
  }
});

Deno.test("jpeg: EXIF orientation is applied only when asked", () => {
  const v = VECTORS.vectors.find((v) => v.name.includes("Orientation 6"))!;
  const stored = decodeImage(bytes(v.jpeg));
  const upright = decodeImage(bytes(v.jpeg), { exifOrientation: "apply" });
  assertEquals([stored.width, stored.height, upright.width, upright.height], [24, 16, 16, 24]);
  // Rotated 90° clockwise: the stored bottom-left pixel is now top-left.
  assertEquals(upright.data.subarray(0, 3), stored.data.subarray(15 * 24 * 3, 15 * 24 * 3 + 3));
});

Deno.test("jpeg: unsupported coding is reported as such; truncation as corruption", () => {
  const baseline = bytes(VECTORS.vectors[0].jpeg);
  const arithmetic = baseline.slice();
  const sof = arithmetic.findIndex((b, i) => b === 0xff && arithmetic[i + 1] === 0xc0);
  arithmetic[sof + 1] = 0xc9; // SOF9: arithmetic coding
  assertThrows(() => decodeJpeg(arithmetic), UnsupportedJpegError, "SOF9");
  assertThrows(
    () => decodeJpeg(baseline.subarray(0, baseline.length >> 1)),
    CorruptJpegError,
    "truncated",
  );
  // decodeImage falls back to image-js, which cannot do either: one DecodeError naming the file.
  assertThrows(
    () => decodeImage(baseline.subarray(0, 400), { name: "cut.jpg" }),
    DecodeError,
    "cut.jpg: cannot decode jpeg",
  );
});
