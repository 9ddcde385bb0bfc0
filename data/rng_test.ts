import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { createRng } from "./rng.ts";

Deno.test("rng: same seed, same sequence; different seeds differ", () => {
  const a = createRng(7), b = createRng(7), c = createRng(8);
  const seqA = Array.from({ length: 100 }, () => a.float());
  assertEquals(Array.from({ length: 100 }, () => b.float()), seqA);
  assertNotEquals(Array.from({ length: 100 }, () => c.float()), seqA);
});

Deno.test("rng: float in [0,1) with a mean near 0.5; int and uniform in range", () => {
  const rng = createRng(1);
  let sum = 0;
  for (let i = 0; i < 20000; i++) {
    const f = rng.float();
    assert(f >= 0 && f < 1);
    sum += f;
    const k = rng.int(-3, 4);
    assert(Number.isInteger(k) && k >= -3 && k < 4);
    const u = rng.uniform(2, 5);
    assert(u >= 2 && u < 5);
  }
  assert(Math.abs(sum / 20000 - 0.5) < 0.01, `mean ${sum / 20000}`);
  assertThrows(() => rng.int(3, 3), RangeError);
});

Deno.test("rng: shuffle is a seeded permutation; state resumes the sequence", () => {
  const order = createRng(3).shuffle(Array.from({ length: 50 }, (_, i) => i));
  assertEquals([...order].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assertEquals(createRng(3).shuffle(Array.from({ length: 50 }, (_, i) => i)), order);
  assertEquals(
    createRng(3).shuffle(Int32Array.from({ length: 50 }, (_, i) => i)),
    Int32Array.from(order),
  );

  const rng = createRng(11);
  rng.float();
  const state = rng.getState();
  const next = [rng.float(), rng.float()];
  const resumed = createRng(0);
  resumed.setState(state);
  assertEquals([resumed.float(), resumed.float()], next);
});
