import { assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { syntheticImageSet } from "./synthetic.ts";

Deno.test("synthetic: random access is deterministic; classes are balanced; splits differ", async () => {
  const train = syntheticImageSet("train", { seed: 1, perClass: 5, imageSize: 24 });
  const test = syntheticImageSet("test", { seed: 1, perClass: 5, imageSize: 24 });
  assertEquals(Array.from(train.labels), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
  assertEquals(train.paths[6], "train/stripes/0001");
  assertEquals((await train.load(3)).data, (await train.load(3)).data);
  assertNotEquals((await train.load(3)).data, (await train.load(4)).data);
  assertNotEquals((await train.load(3)).data, (await test.load(3)).data);
  assertEquals(await train.probe(0), { width: 24, height: 24 });
  await assertRejects(() => train.load(10), RangeError);
});
