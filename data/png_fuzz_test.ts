/**
 * Fuzzes PNG decoding (decodeImage: the header probe, then image-js/fast-png) with mutated and
 * truncated files in every colour model the data sets use: every case must return an image or
 * throw a DecodeError naming the file (see tests/fuzz.ts).
 */
import { encodePng, Image } from "image-js";
import { errorWithPrefix, fuzzTest } from "../tests/fuzz.ts";
import { DecodeError, decodeImage } from "./decode.ts";

const pattern = (n: number, max = 255) => Uint8Array.from({ length: n }, (_, i) => (i * 37) % max);

fuzzTest(import.meta.url, {
  name: "png",
  seeds: () => [
    encodePng(new Image(7, 5, { colorModel: "RGB", data: pattern(7 * 5 * 3) })),
    encodePng(new Image(6, 4, { colorModel: "RGBA", data: pattern(6 * 4 * 4) })),
    encodePng(new Image(5, 3, { colorModel: "GREY", data: pattern(15) })),
    encodePng(new Image(4, 4, { colorModel: "GREYA", data: pattern(32) })),
    encodePng(
      new Image(3, 2, {
        colorModel: "RGB",
        bitDepth: 16,
        data: Uint16Array.from({ length: 18 }, (_, i) => i * 3000),
      }),
    ),
  ],
  run: (bytes) => decodeImage(bytes, { name: "fuzz.png" }),
  isClean: errorWithPrefix(DecodeError, "fuzz.png: "),
});
