import { assertEquals, assertThrows } from "@std/assert";
import { encodeJpeg, encodePng, Image } from "image-js";
import { DecodeError, decodeImage, orient, probeImage } from "./decode.ts";
import { rgbImage } from "./image.ts";
import { HAVE_SHARED, HOTDOG_MINI } from "./test_util.ts";

Deno.test("decode: PNG grey, grey+alpha, RGBA and 16-bit become 8-bit RGB like PIL's convert('RGB')", () => {
  const grey = encodePng(new Image(2, 1, { colorModel: "GREY", data: new Uint8Array([10, 200]) }));
  assertEquals(decodeImage(grey).data, new Uint8Array([10, 10, 10, 200, 200, 200]));
  const greyA = encodePng(new Image(1, 1, { colorModel: "GREYA", data: new Uint8Array([77, 0]) }));
  assertEquals(decodeImage(greyA).data, new Uint8Array([77, 77, 77]));
  const rgba = encodePng(
    new Image(1, 1, { colorModel: "RGBA", data: new Uint8Array([1, 2, 3, 0]) }),
  );
  assertEquals(decodeImage(rgba).data, new Uint8Array([1, 2, 3]), "alpha dropped, not composited");
  const deep = encodePng(
    new Image(1, 1, {
      colorModel: "RGB",
      bitDepth: 16,
      data: new Uint16Array([0xff00, 0x1234, 0x00ff]),
    }),
  );
  assertEquals(decodeImage(deep).data, new Uint8Array([0xff, 0x12, 0x00]));
  const grey16 = encodePng(
    new Image(2, 1, { colorModel: "GREY", bitDepth: 16, data: new Uint16Array([200, 4000]) }),
  );
  assertEquals(
    decodeImage(grey16).data,
    new Uint8Array([200, 200, 200, 255, 255, 255]),
    "PIL's I;16 clips",
  );
  assertEquals(probeImage(grey), { format: "png", width: 2, height: 1 });
});

Deno.test("decode: JPEG header is probed without decoding; a pixel cap refuses bombs early", () => {
  const jpeg = encodeJpeg(new Image(40, 30, { colorModel: "RGBA" }));
  assertEquals(probeImage(jpeg), { format: "jpeg", width: 40, height: 30 });
  assertEquals(decodeImage(jpeg).width, 40);
  // Forge a 60000x60000 SOF: refused from the header alone.
  const forged = jpeg.slice();
  const sof = forged.findIndex((b, i) => b === 0xff && forged[i + 1] === 0xc0);
  forged.set([0xea, 0x60, 0xea, 0x60], sof + 5);
  assertThrows(
    () => decodeImage(forged, { name: "bomb.jpg" }),
    DecodeError,
    "bomb.jpg: 60000x60000 is more than 89478485 pixels",
  );
  assertThrows(
    () => decodeImage(jpeg, { name: "small.jpg", maxPixels: 100 }),
    DecodeError,
    "possible decompression bomb",
  );
});

Deno.test("decode: corrupt, truncated and non-image bytes throw one-line DecodeErrors naming the file", () => {
  const jpeg = encodeJpeg(new Image(64, 48, { colorModel: "RGBA" }));
  for (
    const [name, bytes] of [
      ["cut.jpg", jpeg.slice(0, jpeg.length >> 1)],
      ["text.jpg", new TextEncoder().encode("definitely not a jpeg")],
      ["empty.png", new Uint8Array(0)],
    ] as const
  ) {
    const e = assertThrows(() => decodeImage(bytes, { name }), DecodeError);
    assertEquals(e.message.startsWith(`${name}: `), true, e.message);
    assertEquals(e.message.includes("\n"), false);
  }
});

Deno.test("decode: a header declaring more pixels than the file's bytes can hold is refused before decoding", () => {
  // Found by png_fuzz_test: one byte of an RGBA PNG's width set to 1 made it 16777222x4
  // (under the pixel cap); fast-png then allocated and filtered 268 MB from 100 bytes of data.
  const png = encodePng(new Image(6, 4, { colorModel: "RGBA" }));
  const wide = png.slice();
  wide[16] = 1;
  assertThrows(
    () => decodeImage(wide, { name: "wide.png" }),
    DecodeError,
    `wide.png: 16777222x4 pixels cannot fit in its ${png.length} bytes (truncated or corrupt)`,
  );
  // The same for a JPEG: every 8x8 block takes at least one bit.
  const jpeg = encodeJpeg(new Image(40, 30, { colorModel: "RGBA" }));
  const sof = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
  const tall = jpeg.slice();
  tall.set([0x7f, 0xff, 0x7f, 0xff], sof + 5); // 32767x32767, with the pixel cap raised
  assertThrows(
    () => decodeImage(tall, { name: "tall.jpg", maxPixels: 2 ** 31 }),
    DecodeError,
    "cannot fit in",
  );
});

Deno.test("decode: names with control characters still give one-line messages", () => {
  const e = assertThrows(
    () => decodeImage(new Uint8Array(3), { name: "evil\nname.jpg" }),
    DecodeError,
  );
  assertEquals(
    e.message.startsWith("evil\\u000aname.jpg: not a JPEG or PNG file"),
    true,
    e.message,
  );
});

Deno.test("decode: EXIF orientations rotate/flip like PIL's exif_transpose", () => {
  // 3x2 image, pixel value = index.
  const img = rgbImage(3, 2, Uint8Array.from({ length: 18 }, (_, i) => Math.floor(i / 3)));
  const px = (o: number) => {
    const r = orient(img, o);
    return [
      r.width,
      r.height,
      ...Array.from({ length: r.width * r.height }, (_, i) => r.data[i * 3]),
    ];
  };
  // Source rows: [0 1 2] / [3 4 5].
  assertEquals(px(1), [3, 2, 0, 1, 2, 3, 4, 5]);
  assertEquals(px(2), [3, 2, 2, 1, 0, 5, 4, 3]);
  assertEquals(px(3), [3, 2, 5, 4, 3, 2, 1, 0]);
  assertEquals(px(4), [3, 2, 3, 4, 5, 0, 1, 2]);
  assertEquals(px(5), [2, 3, 0, 3, 1, 4, 2, 5]);
  assertEquals(px(6), [2, 3, 3, 0, 4, 1, 5, 2]); // rotate 90° clockwise
  assertEquals(px(7), [2, 3, 5, 2, 4, 1, 3, 0]);
  assertEquals(px(8), [2, 3, 2, 5, 1, 4, 0, 3]); // rotate 90° counter-clockwise
});

Deno.test({
  name: "decode: a real hotdog-mini JPEG",
  ignore: !HAVE_SHARED,
  async fn() {
    const img = decodeImage(await Deno.readFile(`${HOTDOG_MINI}/test/hotdog/13355622.jpg`));
    assertEquals([img.width, img.height, img.data.length], [149, 224, 149 * 224 * 3]);
  },
});
