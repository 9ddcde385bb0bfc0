/**
 * Fuzzes readZip and reading every entry with mutated and truncated archives: every case must
 * list and read the files or throw a ZipError naming the archive (see tests/fuzz.ts).
 */
import { zipSync } from "fflate";
import { errorWithPrefix, fuzzTest } from "../tests/fuzz.ts";
import { readZip, ZipError } from "./zip.ts";

const text = (s: string) => new TextEncoder().encode(s);
const layout = {
  "hotdog/train/a/1.jpg": text("one ".repeat(50)),
  "hotdog/train/b/2.jpg": [text("two"), { level: 0 }] as [Uint8Array, { level: 0 }],
  "hotdog/test/": new Uint8Array(0),
  "hotdog/test/a/3.png": Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff),
};

fuzzTest(import.meta.url, {
  name: "zip",
  seeds: () => [
    zipSync(layout),
    zipSync(layout, { level: 0 }),
    zipSync({ "x.txt": [text("x"), { os: 3, attrs: 0o100644 << 16 }] }),
  ],
  async run(bytes) {
    const zip = readZip(bytes, { name: "fuzz.zip" });
    for (const entry of zip.entries) {
      if (entry.isDirectory) await zip.readDir(entry.path);
      else await zip.readFile(entry.path);
    }
  },
  isClean: errorWithPrefix(ZipError, "fuzz.zip: "),
});
