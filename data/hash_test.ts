import { assertEquals } from "@std/assert";
import { createHasher } from "./hash.ts";
import { createRng } from "./rng.ts";

async function webCrypto(algorithm: "SHA-1" | "SHA-256", bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(algorithm, bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("hash: known vectors", () => {
  const h = (alg: "sha1" | "sha256", s: string) => {
    const hasher = createHasher(alg);
    hasher.update(new TextEncoder().encode(s));
    return hasher.hex();
  };
  assertEquals(h("sha1", ""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  assertEquals(h("sha1", "abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  assertEquals(
    h("sha256", "abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("hash: chunked updates match Web Crypto for many lengths and splits", async () => {
  const rng = createRng(5);
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70001]) {
    const bytes = Uint8Array.from({ length }, () => rng.int(0, 256));
    for (const alg of ["sha1", "sha256"] as const) {
      const hasher = createHasher(alg);
      let off = 0;
      while (off < length) {
        const n = Math.min(length - off, rng.int(1, 200));
        hasher.update(bytes.subarray(off, off + n));
        off += n;
      }
      assertEquals(
        hasher.hex(),
        await webCrypto(alg === "sha1" ? "SHA-1" : "SHA-256", bytes),
        `${alg} ${length}`,
      );
    }
  }
});
