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

Deno.test("jpeg: malformed tables, scans and segments are CorruptJpegErrors, not TypeErrors", () => {
  const baseline = bytes(VECTORS.vectors[0].jpeg);
  const marker = (m: number) => baseline.findIndex((b, i) => b === 0xff && baseline[i + 1] === m);
  // Found by jpeg_fuzz_test: a scan naming a Huffman table that was never defined.
  const noTable = baseline.slice();
  const sos = marker(0xda);
  noTable[sos + 6] = 0x33; // component 1 uses DC table 3 and AC table 3
  assertThrows(() => decodeJpeg(noTable), CorruptJpegError, "scan uses an undefined Huffman table");
  // A segment length below 2, and a quantisation table cut short by its segment length.
  const zeroLength = baseline.slice();
  zeroLength.set([0, 0], marker(0xdb) + 2);
  assertThrows(() => decodeJpeg(zeroLength), CorruptJpegError, "bad segment length");
  const shortDqt = baseline.slice();
  shortDqt.set([0, 10], marker(0xdb) + 2);
  assertThrows(() => decodeJpeg(shortDqt), CorruptJpegError, "truncated quantisation table");
  // A frame declaring far more blocks than the file holds is refused before allocating them.
  const huge = baseline.slice();
  huge.set([0x7f, 0xff, 0x7f, 0xff], marker(0xc0) + 5);
  assertThrows(() => decodeJpeg(huge), CorruptJpegError, "32767x32767 needs");
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
