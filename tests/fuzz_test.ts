import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { fuzzCase, fuzzTarget, runFuzz } from "./fuzz.ts";

const seeds = [Uint8Array.from({ length: 40 }, (_, i) => i)];

// Targets for the child processes runFuzz starts from this file.
const hang = {
  name: "hangs on 0xff at byte 3",
  seeds: () => seeds,
  run: (bytes: Uint8Array) => {
    if (bytes[3] === 0xff) { for (;;) { /* a reader stuck in a loop */ } }
  },
  isClean: () => true,
};
const unclean = {
  name: "TypeError on short input",
  seeds: () => seeds,
  run: (bytes: Uint8Array) => {
    if (bytes.length < 20) throw new TypeError("deep bug");
    if (bytes[0] !== 0) throw new RangeError("clean: the reader's own");
  },
  isClean: (e: unknown) => !(e instanceof TypeError),
};
// Both calls must run (in the child, each starts its target if it is the one asked for).
const inChild = [fuzzTarget(hang), fuzzTarget(unclean)].includes(true);
if (!inChild) {
  Deno.test("fuzz helper: a case is reproducible from (seed, index) alone", () => {
    const a = fuzzCase(seeds, 7, 123), b = fuzzCase(seeds, 7, 123);
    assertEquals(a, b);
    assertNotEquals(fuzzCase(seeds, 7, 124).bytes, a.bytes);
    assertNotEquals(fuzzCase(seeds, 8, 123).bytes, a.bytes);
    assertEquals(seeds[0][0], 0, "the seed input is not modified");
  });

  Deno.test("fuzz helper: a hanging case is killed and named with its mutations", async () => {
    const e = await assertRejects(
      () => runFuzz(import.meta.url, hang, { caseTimeoutMs: 1500, budgetMs: 60_000 }),
      Error,
      "did not finish within 1500 ms",
    );
    assert(/case \d+ \(seed 1: seed input 0 \(40 bytes\), .+\)/.test(e.message), e.message);
  });

  Deno.test("fuzz helper: an error the target does not call clean fails with the case", async () => {
    await assertRejects(
      () => runFuzz(import.meta.url, unclean),
      Error,
      "threw TypeError: deep bug",
    );
  });
}
