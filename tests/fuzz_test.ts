import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import type { Rng } from "../data/rng.ts";
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
const refusesAll = {
  name: "refuses all but its seed",
  seeds: () => seeds,
  run: (bytes: Uint8Array) => {
    if (bytes.length !== 40 || bytes.some((b, i) => b !== i)) throw new RangeError("clean");
  },
  isClean: () => true,
};
// All calls must run (in the child, each starts its target if it is the one asked for).
const inChild = [fuzzTarget(hang), fuzzTarget(unclean), fuzzTarget(refusesAll)].includes(true);
if (!inChild) {
  Deno.test("fuzz helper: a case is reproducible from (seed, index) alone", () => {
    const a = fuzzCase(seeds, 7, 123), b = fuzzCase(seeds, 7, 123);
    assertEquals(a, b);
    assertNotEquals(fuzzCase(seeds, 7, 124).bytes, a.bytes);
    assertNotEquals(fuzzCase(seeds, 8, 123).bytes, a.bytes);
    assertEquals(seeds[0][0], 0, "the seed input is not modified");
  });

  Deno.test("fuzz helper: a target's own mutator makes the case, reproducibly", () => {
    const cut = (input: Uint8Array, rng: Rng) => {
      const end = rng.int(0, input.length);
      return { bytes: input.slice(0, end), ops: [`cut at ${end}`] };
    };
    const a = fuzzCase(seeds, 7, 5, cut);
    assertEquals(a, fuzzCase(seeds, 7, 5, cut));
    assertEquals(a.bytes, seeds[0].slice(0, a.bytes.length));
    assertEquals(a.ops, ["seed input 0 (40 bytes)", `cut at ${a.bytes.length}`]);
  });

  Deno.test("fuzz helper: a target that refuses every case fails (the mutations reach no result)", async () => {
    await assertRejects(
      () => runFuzz(import.meta.url, refusesAll, { cases: 150 }),
      Error,
      "all 150 cases threw clean errors",
    );
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
