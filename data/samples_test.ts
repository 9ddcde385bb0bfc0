import { assertEquals } from "@std/assert";
import { decodeImage } from "./decode.ts";
import { samplesGrid, samplesGridPng } from "./samples.ts";
import { syntheticImageSet } from "./synthetic.ts";

Deno.test("samples grid: first 8 then last 8 (reversed), fitted into cells; PNG round-trips", async () => {
  const train = syntheticImageSet("train", { perClass: 10, imageSize: 20 });
  const grid = await samplesGrid(train, { tile: 16, gap: 2 });
  assertEquals([grid.width, grid.height, grid.rgba.length], [
    8 * 16 + 9 * 2,
    2 * 16 + 3 * 2,
    146 * 38 * 4,
  ]);
  assertEquals(grid.shown.map((s) => s.index), [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    19,
    18,
    17,
    16,
    15,
    14,
    13,
    12,
  ]);
  assertEquals(grid.shown.map((s) => s.label), [...Array(8).fill(0), ...Array(8).fill(1)]);
  const png = await samplesGridPng(train, { tile: 16, gap: 2 });
  const back = decodeImage(png);
  assertEquals([back.width, back.height], [146, 38]);
  // The corner is background (white); the first cell's centre is image.
  assertEquals(Array.from(back.data.subarray(0, 3)), [255, 255, 255]);
});
