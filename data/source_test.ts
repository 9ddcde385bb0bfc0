import { assertEquals, assertNotEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { zipSync } from "fflate";
import { denoFs } from "./deno_fs.ts";
import { DownloadError } from "./download.ts";
import { LayoutError } from "./image_folder.ts";
import { encodeRgbPng } from "./png.ts";
import { readZip, ZipError } from "./zip.ts";
import { openDataSource, resolveDataSource } from "./source.ts";
import { HAVE_SHARED, HOTDOG_MINI, tempDir, writeTree } from "./test_util.ts";

const png = encodeRgbPng({ width: 6, height: 5, data: new Uint8Array(90).fill(128) });
const layout = (prefix = "") => ({
  [`${prefix}train/hotdog/a.png`]: png,
  [`${prefix}train/hotdog/b.png`]: png,
  [`${prefix}train/not-hotdog/c.png`]: png,
  [`${prefix}test/hotdog/d.png`]: png,
  [`${prefix}test/not-hotdog/e.png`]: png,
});

Deno.test({
  name: "source: a directory in the hotdog layout",
  ignore: !HAVE_SHARED,
  async fn() {
    const data = await resolveDataSource(HOTDOG_MINI, { fs: denoFs });
    assertEquals(data.kind, "directory");
    assertEquals(data.classes, ["hotdog", "not-hotdog"]);
    assertEquals([data.train.labels.length, data.test.labels.length], [200, 50]);
    assertEquals((await data.test.load(0)).data.length > 0, true);
  },
});

Deno.test("source: zips read in memory, with or without one top folder (and __MACOSX)", async () => {
  await using dir = await tempDir();
  for (
    const [name, files] of [
      ["flat.zip", layout()],
      ["nested.zip", { ...layout("hotdog/"), "__MACOSX/hotdog/._x": new Uint8Array(1) }],
    ] as const
  ) {
    await Deno.writeFile(`${dir.path}/${name}`, zipSync(files));
    const data = await resolveDataSource(`${dir.path}/${name}`, { fs: denoFs });
    assertEquals(data.kind, "zip");
    assertEquals(data.classes, ["hotdog", "not-hotdog"]);
    assertEquals(Array.from(data.train.labels), [0, 0, 1]);
    assertEquals((await data.train.load(2)).width, 6);
  }
  // What the web page does with a dropped file: no file system at all.
  const zip = readZip(zipSync(layout("hotdog/")), { name: "dropped.zip" });
  const data = await openDataSource(zip);
  assertEquals([data.kind, data.description], ["zip", "dropped.zip/hotdog"]);
});

Deno.test("source: a zip-bomb entry stops the data set with an error instead of being skipped", async () => {
  await using dir = await tempDir();
  // 4 MiB of zeros deflate about 1000:1; declared honestly, the archive is refused on opening.
  const bomb = zipSync({ ...layout(), "train/hotdog/z.jpg": new Uint8Array(4 * 1024 * 1024) });
  await Deno.writeFile(`${dir.path}/bomb.zip`, bomb);
  await assertRejects(
    () => resolveDataSource(`${dir.path}/bomb.zip`, { fs: denoFs }),
    ZipError,
    `${dir.path}/bomb.zip: entry train/hotdog/z.jpg inflates`,
  );
  // Declared as 100 KiB, it passes the up-front checks and fails when read, loudly.
  const view = new DataView(bomb.buffer, bomb.byteOffset);
  for (let p = 0; p + 4 <= bomb.length; p++) {
    if (
      view.getUint32(p, true) === 0x02014b50 && view.getUint32(p + 24, true) === 4 * 1024 * 1024
    ) {
      view.setUint32(p + 24, 100 * 1024, true);
    }
  }
  const data = await openDataSource(readZip(bomb, { name: "liar.zip" }));
  const z = data.train.paths.indexOf("train/hotdog/z.jpg");
  await assertRejects(() => data.train.load(z), ZipError, "liar.zip: entry train/hotdog/z.jpg");
});

Deno.test("source: a URL is downloaded to the cache, extracted once, then reused offline", async () => {
  await using dir = await tempDir();
  const body = zipSync(layout("hotdog/")) as Uint8Array<ArrayBuffer>;
  let requests = 0;
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    requests++;
    return new Response(body);
  });
  const url = `http://127.0.0.1:${server.addr.port}/hotdog.zip`;
  const statuses: string[] = [];
  const first = await resolveDataSource(url, {
    fs: denoFs,
    cacheDir: `${dir.path}/cache`,
    onStatus: (s) => statuses.push(s),
  });
  assertEquals(first.kind, "url");
  assertEquals([first.train.labels.length, first.test.labels.length], [3, 2]);
  assertEquals(statuses.length, 1);
  assertStringIncludes(statuses[0], "extracting");
  const again = await resolveDataSource(url, {
    fs: denoFs,
    cacheDir: `${dir.path}/cache`,
    onStatus: (s) => statuses.push(s),
  });
  assertEquals([again.train.labels.length, requests, statuses.length], [3, 1, 1]);
  assertStringIncludes(again.description, "cached");
});

Deno.test("source: 'hotdog' offline says to pass --data", async () => {
  await using dir = await tempDir();
  const e = await assertRejects(
    () =>
      resolveDataSource("hotdog", {
        fs: denoFs,
        cacheDir: dir.path,
        fetch: () => Promise.reject(new TypeError("error sending request: dns error")),
      }),
    DownloadError,
  );
  assertStringIncludes(
    e.message,
    "cannot download http://d2l-data.s3-accelerate.amazonaws.com/hotdog.zip: ",
  );
  assertStringIncludes(e.message, "use a local copy of the data");
});

Deno.test("source: synthetic is two balanced classes, deterministic from the seed", async () => {
  const a = await resolveDataSource("synthetic", { seed: 3 });
  const b = await resolveDataSource("synthetic", { seed: 3 });
  const c = await resolveDataSource("synthetic", { seed: 4 });
  assertEquals([a.kind, a.classes], ["synthetic", ["circles", "stripes"]]);
  assertEquals([a.train.labels.length, a.test.labels.length], [200, 50]);
  assertEquals((await a.train.load(7)).data, (await b.train.load(7)).data);
  assertEquals((await a.train.load(7)).data.length, 96 * 96 * 3);
  assertNotEquals((await a.test.load(0)).data, (await c.test.load(0)).data);
});

Deno.test("source: layout errors name the folder and what is wrong", async () => {
  await using dir = await tempDir();
  await writeTree(dir.path, {
    "flat/hotdog/a.png": png,
    "flat/not-hotdog/b.png": png,
    "mismatch/train/hotdog/a.png": png,
    "mismatch/train/not-hotdog/a.png": png,
    "mismatch/test/hotdog/a.png": png,
    "mismatch/test/pizza/a.png": png,
  });
  await assertRejects(
    () => resolveDataSource(`${dir.path}/flat`, { fs: denoFs }),
    LayoutError,
    `${dir.path}/flat: not in the hotdog layout`,
  );
  await assertRejects(
    () => resolveDataSource(`${dir.path}/mismatch`, { fs: denoFs }),
    LayoutError,
    "train classes (hotdog, not-hotdog) differ from test classes (hotdog, pizza)",
  );
  await assertRejects(
    () => resolveDataSource(`${dir.path}/nothing`, { fs: denoFs }),
    Error,
    `${dir.path}/nothing: no such file or directory`,
  );
});
