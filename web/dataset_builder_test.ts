import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { encodeRgbPng, resolveDataSource, rgbImage } from "@webtune/data";
import { denoFs } from "@webtune/data/deno_fs";
import { classNameProblem, DatasetBuilder } from "./dataset_builder.ts";

/** A PNG of one flat colour, so each file's content says which image it is. */
function png(value: number): Blob {
  const img = rgbImage(8, 6, new Uint8Array(8 * 6 * 3).fill(value));
  return new Blob([encodeRgbPng(img) as Uint8Array<ArrayBuffer>], { type: "image/png" });
}

async function filled(perClass: Record<string, number>): Promise<DatasetBuilder> {
  const builder = new DatasetBuilder();
  let v = 0;
  for (const [name, n] of Object.entries(perClass)) {
    builder.addClass(name);
    const files = Array.from({ length: n }, (_, i) => ({ name: `shot ${i}.png`, blob: png(v++) }));
    assertEquals(await builder.addImages(name, files), 0);
  }
  return builder;
}

Deno.test("dataset builder: the exported zip is read by the CLI's --data (zip, ImageFolder)", async () => {
  const builder = await filled({ hotdog: 5, "not-hotdog": 4 });
  const dir = await Deno.makeTempDir({ prefix: "webtune-builder-" });
  try {
    const path = `${dir}/my-set.zip`;
    await Deno.writeFile(path, await builder.toZip("my-set"));
    // resolveDataSource is what `deno task finetune --data my-set.zip` calls (cli/sources.ts).
    const data = await resolveDataSource(path, { fs: denoFs, cacheDir: `${dir}/cache` });
    assertEquals(data.kind, "zip");
    assertEquals(data.classes, ["hotdog", "not-hotdog"]);
    // 20% held out per class: round(5 × 0.2) = 1, round(4 × 0.2) = 1.
    assertEquals(Array.from(data.train.labels), [0, 0, 0, 0, 1, 1, 1]);
    assertEquals(Array.from(data.test.labels), [0, 1]);
    const image = await data.test.load(0);
    assertEquals([image.width, image.height], [8, 6]);
    assertEquals(data.train.ignored, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dataset builder: the test split is fixed by the seed, not by the order of adding", async () => {
  const a = await filled({ cats: 10, dogs: 10 });
  const b = new DatasetBuilder();
  b.addClass("cats");
  b.addClass("dogs");
  // The same files added in reverse order.
  for (const cls of a.classes) {
    await b.addImages(
      cls.name,
      [...cls.images].reverse().map((i) => ({ name: i.name, blob: i.blob })),
    );
  }
  const names = (x: DatasetBuilder) =>
    x.splitImages().test.map((list) => list.map((i) => i.name).sort());
  assertEquals(names(a), names(b));
  assertEquals(names(a).map((l) => l.length), [2, 2]);
  const other = names(Object.assign(a, { split: { kind: "fraction", fraction: 0.2, seed: 1 } }));
  assert(JSON.stringify(other) !== JSON.stringify(names(b)), "seed 1 splits like seed 0");
});

Deno.test("dataset builder: a separate test set, removal, and what blocks an export", async () => {
  const builder = await filled({ a: 2, b: 1 });
  assertEquals(
    builder.problem(),
    'class "b" needs at least 2 images (one is held out for testing)',
  );
  builder.split = { kind: "separate" };
  assertEquals(builder.problem(), 'class "a" has no test images');
  await builder.addImages("a", [{ name: "t.png", blob: png(90) }], "test");
  await builder.addImages("b", [{ name: "t.png", blob: png(91) }], "test");
  assertEquals(builder.problem(), undefined);
  const { train, test } = builder.splitImages();
  assertEquals([train[0].length, train[1].length, test[0].length, test[1].length], [2, 1, 1, 1]);

  builder.removeImage(builder.classes[1].images[0].id);
  assertEquals(builder.problem(), 'class "b" has no training images');
  await assertRejects(() => builder.toZip(), Error, "cannot export the data set");
  builder.removeClass("b");
  assertEquals(builder.problem(), "add at least two classes");

  // Not images: left out and counted.
  const skipped = await builder.addImages("a", [
    { name: "notes.txt", blob: new Blob(["hello"]) },
    { name: "a.png", blob: png(3) },
  ]);
  assertEquals(skipped, 1);
  // Same name twice in a class: the second gets a suffix instead of overwriting the first.
  assertEquals(builder.classes[0].images.map((i) => i.name), ["shot_0.png", "shot_1.png", "a.png"]);
  await builder.addImages("a", [{ name: "a.png", blob: png(4) }]);
  assertEquals(builder.classes[0].images.at(-1)!.name, "a-2.png");
});

Deno.test("dataset builder: class names that cannot be folders are refused", () => {
  for (const bad of ["", " cat", "a/b", "..", ".hidden", 'x"y']) {
    assert(classNameProblem(bad, []) !== undefined, bad);
  }
  assertEquals(classNameProblem("hot dog", []), undefined);
  const builder = new DatasetBuilder();
  builder.addClass("cat");
  assertThrows(() => builder.addClass("cat"), Error, 'already a class "cat"');
});
