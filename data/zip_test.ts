import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { zipSync } from "fflate";
import { denoFs } from "./deno_fs.ts";
import { extractZip } from "./extract.ts";
import { crc32, readZip, ZipError } from "./zip.ts";
import { tempDir } from "./test_util.ts";

const text = (s: string) => new TextEncoder().encode(s);

/** Offsets of the central-directory records of a zip (to forge sizes and attributes). */
function centralRecords(zip: Uint8Array): number[] {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const found: number[] = [];
  for (let p = 0; p + 4 <= zip.length; p++) {
    if (view.getUint32(p, true) === 0x02014b50) found.push(p);
  }
  return found;
}

Deno.test("zip: lists and reads stored and deflated entries, with or without a top folder", async () => {
  const bytes = zipSync({
    "hotdog/train/a/1.jpg": [text("one"), { level: 0 }],
    "hotdog/train/b/2.jpg": text("two ".repeat(1000)),
    "hotdog/empty/": new Uint8Array(0),
  });
  const zip = readZip(bytes, { name: "t.zip" });
  assertEquals((await zip.readDir("")).map((e) => e.name), ["hotdog"]);
  assertEquals((await zip.readDir("hotdog")).map((e) => e.name).sort(), ["empty", "train"]);
  assertEquals((await zip.readDir("hotdog/train")).map((e) => [e.name, e.isDirectory]), [[
    "a",
    true,
  ], ["b", true]]);
  assertEquals(new TextDecoder().decode(await zip.readFile("hotdog/train/a/1.jpg")), "one");
  assertEquals((await zip.readFile("hotdog/train/b/2.jpg")).length, 4000);
  await assertRejects(() => zip.readFile("nope"), ZipError, "no file nope");
  assertEquals(crc32(text("123456789")), 0xcbf43926);
});

Deno.test("zip: refuses entries that escape the target directory", () => {
  for (
    const name of ["../evil.txt", "a/../../evil.txt", "/etc/evil", "C:/evil", "a\\..\\..\\evil"]
  ) {
    const bytes = zipSync({ [name]: text("x") });
    const e = assertThrows(() => readZip(bytes, { name: "slip.zip" }), ZipError);
    assertStringIncludes(e.message, "slip.zip: entry");
    assert(/escape|absolute/.test(e.message), e.message);
  }
});

Deno.test("zip: refuses symlink entries (Unix mode in the external attributes)", () => {
  const bytes = zipSync({ "data/link": [text("/etc/passwd"), { os: 3, attrs: 0o120777 << 16 }] });
  assertThrows(
    () => readZip(bytes, { name: "link.zip" }),
    ZipError,
    "link.zip: entry data/link is a symlink",
  );
});

Deno.test("zip: a bomb is refused by declared size, and by actual size when the header lies", async () => {
  const zeros = new Uint8Array(8 * 1024 * 1024);
  const bytes = zipSync({ "big.bin": zeros }, { level: 9 });
  assert(bytes.length < 64 * 1024, `compressed to ${bytes.length}`);
  assertThrows(
    () => readZip(bytes, { name: "bomb.zip", maxTotalBytes: 1024 * 1024 }),
    ZipError,
    "possible zip bomb",
  );
  // Declare 4 GiB - 1 in the central directory: refused before inflating anything.
  const huge = bytes.slice();
  const view = new DataView(huge.buffer);
  for (const p of centralRecords(huge)) view.setUint32(p + 24, 0xffffffff - 1, true);
  assertThrows(
    () => readZip(huge, { name: "huge.zip", maxTotalBytes: 2 ** 31 }),
    ZipError,
    "zip bomb",
  );
  // Declare 1000 bytes: accepted, but inflating stops as soon as the entry passes 1000 bytes.
  const liar = bytes.slice();
  const liarView = new DataView(liar.buffer);
  for (const p of centralRecords(liar)) liarView.setUint32(p + 24, 1000, true);
  const zip = readZip(liar, { name: "liar.zip" });
  await assertRejects(
    () => zip.readFile("big.bin"),
    ZipError,
    "inflates past its declared 1000 bytes",
  );
});

Deno.test("zip: a bomb entry is refused by ratio and per-entry size, and inflation stops early when the header lies", async () => {
  // 32 MiB of zeros deflate to about 32 KiB (1000:1), in train/hotdog/z.jpg as in the report.
  const zeros = new Uint8Array(32 * 1024 * 1024);
  const bytes = zipSync({ "train/hotdog/z.jpg": zeros, "train/hotdog/a.jpg": text("ok") }, {
    level: 1,
  });
  assert(bytes.length < 1024 * 1024, `compressed to ${bytes.length}`);
  // The honest header is refused before anything is inflated: by ratio, and by entry size.
  assertThrows(
    () => readZip(bytes, { name: "bomb.zip" }),
    ZipError,
    "bomb.zip: entry train/hotdog/z.jpg inflates",
  );
  const e = assertThrows(() => readZip(bytes, { name: "bomb.zip" }), ZipError);
  assert(/ratio \d+:1, more than the 100:1 allowed/.test(e.message), e.message);
  assertThrows(
    () => readZip(bytes, { name: "big.zip", maxRatio: 10_000, maxEntryBytes: 1024 ** 2 }),
    ZipError,
    "big.zip: entry train/hotdog/z.jpg declares 33554432 bytes uncompressed, more than the " +
      "1048576 allowed per entry",
  );
  // A header declaring a plausible 512 KiB passes the up-front checks; inflating stops within a
  // few MiB of output instead of producing all 32 MiB.
  const liar = bytes.slice();
  const view = new DataView(liar.buffer);
  for (const p of centralRecords(liar)) {
    if (view.getUint32(p + 24, true) === zeros.length) view.setUint32(p + 24, 512 * 1024, true);
  }
  const zip = readZip(liar, { name: "liar.zip" });
  await assertRejects(
    () => zip.readFile("train/hotdog/z.jpg"),
    ZipError,
    "liar.zip: entry train/hotdog/z.jpg inflates past its declared 524288 bytes",
  );
  assert(zip.inflatedBytes > 0, "inflating started");
  assert(
    zip.inflatedBytes <= 8 * 1024 * 1024,
    `inflated ${zip.inflatedBytes} bytes before stopping`,
  );
  assertEquals(new TextDecoder().decode(await zip.readFile("train/hotdog/a.jpg")), "ok");
});

Deno.test("zip: truncated or corrupt archives give one-line errors naming the file", async () => {
  const bytes = zipSync({ "a.txt": text("hello ".repeat(500)) });
  assertThrows(
    () => readZip(bytes.subarray(0, bytes.length >> 1), { name: "cut.zip" }),
    ZipError,
    "cut.zip: not a zip file, or truncated",
  );
  assertThrows(() => readZip(text("not a zip at all"), { name: "x.zip" }), ZipError, "x.zip:");
  const corrupt = bytes.slice();
  corrupt[40] ^= 0xff; // inside the deflate stream
  corrupt[41] ^= 0xff;
  const e = await assertRejects(
    () => readZip(corrupt, { name: "bad.zip" }).readFile("a.txt"),
    ZipError,
  );
  assertStringIncludes(e.message, "bad.zip: entry a.txt");
  assert(!e.message.includes("\n"));
});

Deno.test("zip: fields past the end and control characters in names give one-line ZipErrors", () => {
  // Found by zip_fuzz_test: a central-directory record whose extra field runs past the data
  // (DataView RangeError), and an entry name with a newline (a two-line message).
  const bytes = zipSync({ "a.txt": text("hello") });
  const cut = bytes.slice();
  const view = new DataView(cut.buffer);
  const [rec] = centralRecords(cut);
  view.setUint16(rec + 30, 0xffff, true); // extra field length
  assertThrows(
    () => readZip(cut, { name: "cut.zip" }),
    ZipError,
    "cut.zip: central directory entry 0 is truncated",
  );
  const evil = zipSync({ "a\nb": [text("/etc/passwd"), { os: 3, attrs: 0o120777 << 16 }] });
  const e = assertThrows(() => readZip(evil, { name: "evil.zip" }), ZipError);
  assertEquals(e.message.includes("\n"), false, e.message);
  assertStringIncludes(e.message, "evil.zip: entry a\\u000ab is a symlink");
});

Deno.test("extract: writes through a temp dir then renames; refuses and cleans up on errors", async () => {
  await using dir = await tempDir();
  const good = zipSync({ "hotdog/train/a/1.jpg": text("1"), "hotdog/test/a/2.jpg": text("2") });
  const seen: number[] = [];
  const n = await extractZip(denoFs, good, `${dir.path}/out`, { onProgress: (d) => seen.push(d) });
  assertEquals(n, 2);
  assertEquals(seen, [1, 2]);
  assertEquals(await Deno.readTextFile(`${dir.path}/out/hotdog/test/a/2.jpg`), "2");
  await assertRejects(() => extractZip(denoFs, good, `${dir.path}/out`), Error, "already exists");

  const slip = zipSync({ "ok.txt": text("fine"), "../evil.txt": text("x") });
  await assertRejects(() => extractZip(denoFs, slip, `${dir.path}/slip`), ZipError, "escape");
  // A lying entry fails midway: no destination, no leftover temp dir, nothing outside.
  const liar = zipSync({ "a.txt": text("a"), "z.bin": new Uint8Array(100000) });
  const view = new DataView(liar.buffer);
  const recs = centralRecords(liar);
  view.setUint32(recs[1] + 24, 10, true);
  await assertRejects(
    () => extractZip(denoFs, liar, `${dir.path}/liar`),
    ZipError,
    "inflates past",
  );
  const left = [];
  for await (const e of Deno.readDir(dir.path)) left.push(e.name);
  assertEquals(left, ["out"]);
  // A bomb entry is refused before anything is written.
  const bomb = zipSync({ "a.txt": text("a"), "z.jpg": new Uint8Array(4 * 1024 * 1024) });
  await assertRejects(
    () => extractZip(denoFs, bomb, `${dir.path}/bomb`, { name: "bomb.zip" }),
    ZipError,
    "bomb.zip: entry z.jpg inflates",
  );
  const after = [];
  for await (const e of Deno.readDir(dir.path)) after.push(e.name);
  assertEquals(after, ["out"]);
});
