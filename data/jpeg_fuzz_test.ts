/**
 * Fuzzes the JPEG decoder with mutated and truncated files, from libjpeg-turbo's encodings
 * (baseline, progressive, subsampled, restart markers, grey): the exact decoder must return an
 * image or throw its own CorruptJpegError/UnsupportedJpegError, and decodeImage (which falls back
 * to image-js) a DecodeError naming the file (see tests/fuzz.ts).
 */
import { errorWithPrefix, fuzzTest } from "../tests/fuzz.ts";
import { DecodeError, decodeImage } from "./decode.ts";
import { CorruptJpegError, decodeJpeg, UnsupportedJpegError } from "./jpeg.ts";

const { vectors }: { vectors: { jpeg: string }[] } = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/jpeg_vectors.json", import.meta.url)),
);
const seeds = () => vectors.map((v) => Uint8Array.from(atob(v.jpeg), (c) => c.charCodeAt(0)));

fuzzTest(import.meta.url, {
  name: "jpeg (exact decoder)",
  seeds,
  run: (bytes) => decodeJpeg(bytes),
  isClean: (e) =>
    (e instanceof CorruptJpegError || e instanceof UnsupportedJpegError) &&
    !e.message.includes("\n"),
});

fuzzTest(import.meta.url, {
  name: "jpeg (decodeImage)",
  seeds,
  run: (bytes) => decodeImage(bytes, { name: "fuzz.jpg" }),
  isClean: errorWithPrefix(DecodeError, "fuzz.jpg: "),
});
