import { assertEquals, assertRejects } from "@std/assert";
import { denoFs } from "./deno_fs.ts";
import { directorySource } from "./fs.ts";
import { compareCodePoints, LayoutError, scanImageFolder } from "./image_folder.ts";
import { encodeRgbPng } from "./png.ts";
import { rgbImage } from "./image.ts";
import { HAVE_SHARED, HOTDOG_MINI, tempDir, writeTree } from "./test_util.ts";

const png = encodeRgbPng(rgbImage(4, 4));

Deno.test({
  name: "image folder: hotdog-mini lists like torchvision (100/100 train, 25/25 test, hotdog=0)",
  ignore: !HAVE_SHARED,
  async fn() {
    const source = directorySource(denoFs, HOTDOG_MINI);
    const train = await scanImageFolder(source, "train");
    const test = await scanImageFolder(source, "test");
    assertEquals(train.classes, ["hotdog", "not-hotdog"]);
    assertEquals(test.classes, ["hotdog", "not-hotdog"]);
    const count = (l: typeof train, label: number) =>
      l.samples.filter((s) => s.label === label).length;
    assertEquals([count(train, 0), count(train, 1), count(test, 0), count(test, 1)], [
      100,
      100,
      25,
      25,
    ]);
    // Sorted by class, then by file name within the class.
    assertEquals(train.samples.slice(0, 100).every((s) => s.label === 0), true);
    const names = train.samples.slice(0, 100).map((s) => s.path);
    assertEquals(names, [...names].sort(compareCodePoints));
    assertEquals(names[0], "train/hotdog/10020170.jpg");
    assertEquals(train.ignored, []);
  },
});

Deno.test("image folder: code-point order, nested folders, non-image files ignored", async () => {
  await using dir = await tempDir();
  await writeTree(dir.path, {
    "train/b/x.png": png,
    "train/a/é.png": png,
    "train/a/B.PNG": png,
    "train/a/a.jpg": png,
    "train/a/sub/z.png": png,
    "train/a/notes.txt": new TextEncoder().encode("hi"),
    "train/B/1.jpeg": png,
    "train/a 1/q.png": png,
  });
  const listing = await scanImageFolder(directorySource(denoFs, dir.path), "train");
  // Python: sorted(["b", "a", "B", "a 1"]) == ["B", "a", "a 1", "b"].
  assertEquals(listing.classes, ["B", "a", "a 1", "b"]);
  assertEquals(listing.samples, [
    { path: "train/B/1.jpeg", label: 0 },
    { path: "train/a/B.PNG", label: 1 },
    { path: "train/a/a.jpg", label: 1 },
    { path: "train/a/é.png", label: 1 },
    { path: "train/a/sub/z.png", label: 1 },
    { path: "train/a 1/q.png", label: 2 },
    { path: "train/b/x.png", label: 3 },
  ]);
  assertEquals(listing.ignored, ["train/a/notes.txt"]);
  assertEquals(["\u{1F600}", "\uFFFF"].sort(compareCodePoints), ["\uFFFF", "\u{1F600}"]);
});

Deno.test("image folder: one class, an empty class, or a missing folder are errors naming it", async () => {
  await using dir = await tempDir();
  await writeTree(dir.path, {
    "one/hotdog/a.png": png,
    "empty/hotdog/a.png": png,
    "empty/not-hotdog/readme.txt": new TextEncoder().encode("no images here"),
  });
  const source = directorySource(denoFs, dir.path);
  await assertRejects(
    () => scanImageFolder(source, "one"),
    LayoutError,
    `${dir.path}/one: needs at least 2 class folders, found 1 (hotdog)`,
  );
  await assertRejects(
    () => scanImageFolder(source, "empty"),
    LayoutError,
    `${dir.path}/empty/not-hotdog: class folder has no image files`,
  );
  await assertRejects(
    () => scanImageFolder(source, "nope"),
    LayoutError,
    `${dir.path}/nope: cannot list the folder`,
  );
});
