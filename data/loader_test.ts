import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { encodeJpeg, Image } from "image-js";
import { denoFs } from "./deno_fs.ts";
import { directorySource } from "./fs.ts";
import { LayoutError, scanImageFolder } from "./image_folder.ts";
import { folderImageSet } from "./image_set.ts";
import { type Batch, createBatchLoader, describeSkipped } from "./loader.ts";
import { encodeRgbPng } from "./png.ts";
import { createRng } from "./rng.ts";
import { syntheticImageSet } from "./synthetic.ts";
// ImageNet's statistics (the pretrained config's; data does not import models).
const IMAGENET_MEAN = [0.485, 0.456, 0.406], IMAGENET_STD = [0.229, 0.224, 0.225];
const normalize = { mean: IMAGENET_MEAN, std: IMAGENET_STD };
import { HAVE_SHARED, HOTDOG_MINI, tempDir, writeTree } from "./test_util.ts";

async function collect(it: AsyncIterable<Batch>): Promise<Batch[]> {
  const out = [];
  for await (const b of it) out.push(b);
  return out;
}

const LOW = Math.min(...IMAGENET_MEAN.map((m, c) => -m / IMAGENET_STD[c]));
const HIGH = Math.max(...IMAGENET_MEAN.map((m, c) => (1 - m) / IMAGENET_STD[c]));

Deno.test({
  name: "loader: hotdog-mini train batches at 224 (shapes, labels, ranges, every image once)",
  ignore: !HAVE_SHARED,
  async fn() {
    const source = directorySource(denoFs, HOTDOG_MINI);
    const set = folderImageSet(source, await scanImageFolder(source, "train"));
    const loader = createBatchLoader(set, {
      transform: { kind: "train", size: 224 },
      normalize,
      batchSize: 64,
      rng: createRng(0),
    });
    const report = await loader.prepare();
    assertEquals([report.images, report.skipped.length, report.cachedImages, report.downscaled], [
      200,
      0,
      200,
      0,
    ]);
    assertEquals(report.cacheMaxSide, Infinity, "all originals fit: exact torchvision crops");
    const batches = await collect(loader.epoch());
    assertEquals(batches.map((b) => b.shape), [[64, 224, 224, 3], [64, 224, 224, 3], [
      64,
      224,
      224,
      3,
    ], [8, 224, 224, 3]]);
    const seen = batches.flatMap((b) => Array.from(b.indices)).sort((a, b) => a - b);
    assertEquals(seen, Array.from({ length: 200 }, (_, i) => i));
    for (const b of batches) {
      assertEquals(b.x.length, b.shape[0] * 224 * 224 * 3);
      b.indices.forEach((index, j) => assertEquals(b.labels[j], set.labels[index]));
      let min = Infinity, max = -Infinity, sum = 0;
      for (let i = 0; i < b.x.length; i++) {
        const v = b.x[i];
        if (v < min) min = v;
        if (v > max) max = v;
        sum += v;
      }
      assert(min >= LOW - 1e-6 && max <= HIGH + 1e-6, `range ${min}..${max}`);
      assert(Math.abs(sum / b.x.length) < 1.5, "roughly centred");
    }
    assertEquals(set.labels.filter((l) => l === 0).length, 100);
    // Shuffled: not in dataset order, and a new order the next epoch.
    const second = await collect(loader.epoch());
    assertNotEquals(Array.from(second[0].indices), Array.from(batches[0].indices));
  },
});

Deno.test("loader: a seed fixes shuffling and augmentation; drop_last; test batches are fixed", async () => {
  const set = syntheticImageSet("train", { perClass: 20, imageSize: 48 });
  const first = async (seed: number) => {
    const loader = createBatchLoader(set, {
      transform: { kind: "train", size: 32 },
      normalize,
      batchSize: 16,
      rng: createRng(seed),
      dropLast: true,
    });
    const batches = await collect(loader.epoch());
    assertEquals(batches.length, 2, "40 images, batch 16, drop_last");
    return batches[0];
  };
  const a = await first(1), b = await first(1), c = await first(2);
  assertEquals(a.x, b.x);
  assertEquals(a.indices, b.indices);
  assertNotEquals(a.indices, c.indices);

  const test = createBatchLoader(set, {
    transform: { kind: "test", size: 32, resize: 36 },
    normalize,
    batchSize: 16,
  });
  const e1 = await collect(test.epoch()), e2 = await collect(test.epoch());
  assertEquals(e1.map((x) => x.shape[0]), [16, 16, 8]);
  assertEquals(Array.from(e1[0].indices), Array.from({ length: 16 }, (_, i) => i));
  assertEquals(e1[2].x, e2[2].x);
});

Deno.test("loader: non-image and undecodable files are skipped and reported", async () => {
  await using dir = await tempDir();
  const png = encodeRgbPng({ width: 8, height: 6, data: new Uint8Array(144).fill(90) });
  const jpeg = encodeJpeg(new Image(20, 10, { colorModel: "RGBA" }));
  await writeTree(dir.path, {
    "train/a/1.png": png,
    "train/a/2.jpg": jpeg,
    "train/a/broken.jpg": jpeg.slice(0, jpeg.length >> 1),
    "train/a/readme.txt": new TextEncoder().encode("hello"),
    "train/b/1.png": png,
    "train/b/fake.png": new TextEncoder().encode("not a png"),
  });
  const source = directorySource(denoFs, dir.path);
  const set = folderImageSet(source, await scanImageFolder(source, "train"));
  const loader = createBatchLoader(set, {
    transform: { kind: "test", size: 4, resize: 4 },
    normalize,
    batchSize: 8,
  });
  const report = await loader.prepare();
  assertEquals(report.images, 3);
  assertEquals(report.skipped.map((s) => s.path), [
    "train/a/readme.txt",
    "train/b/fake.png",
    "train/a/broken.jpg",
  ]);
  const line = describeSkipped(report.skipped, 2)!;
  assertStringIncludes(
    line,
    "skipped 3 files: train/a/readme.txt (not an image file extension), train/b/fake.png (not a JPEG or PNG file)",
  );
  assertStringIncludes(line, "and 1 more");
  const [batch] = await collect(loader.epoch());
  assertEquals(Array.from(batch.labels), [0, 0, 1]);
});

Deno.test("loader: a class whose files all fail to decode is an error before the first batch", async () => {
  await using dir = await tempDir();
  const png = encodeRgbPng({ width: 8, height: 6, data: new Uint8Array(144).fill(90) });
  const webp = new TextEncoder().encode("RIFF\0\0\0\0WEBPVP8 ");
  await writeTree(dir.path, {
    "train/hotdog/1.png": png,
    "train/hotdog/2.png": png,
    "train/not-hotdog/1.webp": webp,
    "train/not-hotdog/2.webp": webp,
    "train/not-hotdog/3.webp": webp,
    "train/not-hotdog/4.webp": webp,
  });
  const source = directorySource(denoFs, dir.path);
  const set = folderImageSet(source, await scanImageFolder(source, "train"));
  const loader = createBatchLoader(set, {
    transform: { kind: "train", size: 4 },
    normalize,
    batchSize: 2,
    rng: createRng(0),
  });
  const e = await assertRejects(() => loader.prepare(), LayoutError);
  assertStringIncludes(
    e.message,
    `${dir.path}/train/not-hotdog: class folder has no usable images (all 4 image files skipped, ` +
      "e.g. train/not-hotdog/1.webp: not a JPEG or PNG file",
  );
  assert(!e.message.includes("\n"));
  // The first epoch runs prepare, so no batch is ever made.
  await assertRejects(() => collect(loader.epoch()), LayoutError, "no usable images");
});

Deno.test("loader: bounded cache (downscaled copies, or none) still yields full batches", async () => {
  const set = syntheticImageSet("train", { perClass: 6, imageSize: 80 });
  const rngA = createRng(5);
  const small = createBatchLoader(set, {
    transform: { kind: "train", size: 16 },
    normalize,
    batchSize: 12,
    rng: rngA,
    cacheBytes: 80 * 80 * 3 * 4,
  });
  const r = await small.prepare();
  assertEquals(
    [r.downscaled, r.cacheMaxSide],
    [12, 32],
    "originals do not fit: copies at 2 x size",
  );
  assertEquals(r.cachedImages, 12);
  const none = createBatchLoader(set, {
    transform: { kind: "train", size: 16 },
    normalize,
    batchSize: 12,
    rng: createRng(5),
    cacheBytes: 0,
  });
  assertEquals((await none.prepare()).cachedImages, 0);
  const [a] = await collect(small.epoch()), [b] = await collect(none.epoch());
  assertEquals(a.shape, [12, 16, 16, 3]);
  // Same seed: same crops chosen; pixels differ only by the cache's downscaling.
  assertEquals(a.indices, b.indices);
});

Deno.test("loader: prefetches ahead of a slow consumer and stops cleanly on break", async () => {
  const set = syntheticImageSet("train", { perClass: 16, imageSize: 32 });
  const loader = createBatchLoader(set, {
    transform: { kind: "train", size: 16 },
    normalize,
    batchSize: 4,
    rng: createRng(0),
    prefetch: 2,
  });
  let got = 0;
  for await (const batch of loader.epoch()) {
    assertEquals(batch.shape[0], 4);
    // Give the event loop to the loader, as a training step awaiting the GPU does.
    await new Promise((r) => setTimeout(r, 0));
    if (++got === 3) break;
  }
  assertEquals(got, 3);
  assertEquals((await collect(loader.epoch())).length, 8);
});

Deno.test("loader: released batch buffers are reused and fully rewritten", async () => {
  const set = syntheticImageSet("train", { perClass: 8, imageSize: 24 });
  const reference = await collect(
    createBatchLoader(set, {
      transform: { kind: "test", size: 16, resize: 18 },
      normalize,
      batchSize: 4,
    }).epoch(),
  );
  const loader = createBatchLoader(set, {
    transform: { kind: "test", size: 16, resize: 18 },
    normalize,
    batchSize: 4,
  });
  const buffers = new Set<ArrayBufferLike>();
  let i = 0;
  for await (const batch of loader.epoch()) {
    assertEquals(batch.x, reference[i++].x);
    buffers.add(batch.x.buffer);
    batch.release();
    batch.release(); // a second release is ignored
  }
  assertEquals(i, 4);
  assert(buffers.size < 4, `expected reuse, got ${buffers.size} distinct buffers for 4 batches`);
});
