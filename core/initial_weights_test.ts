import { assert, assertEquals } from "@std/assert";
import { createRng } from "@webtune/data";
import { initialStateDict, type StateDict } from "@webtune/models";
import { toTfjsLayout } from "@webtune/models/layout";
import { canInitInWorker, initialWeights } from "./initial_weights.ts";

/** `sd` with every float tensor's data in tfjs layout (what the worker hands over). */
function inTfjsLayout(sd: StateDict): StateDict {
  return new Map(
    [...sd].map(([name, t]) => [
      name,
      t.dtype === "float32" ? { ...t, data: toTfjsLayout(t.data as Float32Array, t.shape) } : t,
    ]),
  );
}

/** Both state dicts' names, shapes and bits, in order. */
function assertSameBits(got: StateDict, want: StateDict): void {
  assertEquals([...got.keys()], [...want.keys()]);
  for (const [name, t] of want) {
    const g = got.get(name)!;
    assertEquals(g.shape, t.shape, name);
    assertEquals(g.dtype, t.dtype, name);
    const bytes = (x: typeof t.data) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    assert(bytes(g.data).every((b, i) => b === bytes(t.data)[i]), `${name}: bits differ`);
  }
}

Deno.test("initialWeights on a Worker: initialStateDict's bits, and the generator left where it would be", async () => {
  assert(canInitInWorker(), "Deno runs the sources from file: URLs, where the worker can start");
  for (const [arch, seed] of [["resnet18", 3], ["resnet34", 11]] as const) {
    const rng = createRng(seed);
    const drawn = await initialWeights(arch, 3, rng, { worker: true });
    assert(drawn.onWorker);
    assertEquals(drawn.layout, "tfjs");
    const reference = createRng(seed);
    const want = initialStateDict(3, () => reference.float(), arch);
    assertSameBits(drawn.stateDict, inTfjsLayout(want));
    assertEquals(rng.getState(), reference.getState());
  }
});

Deno.test("initialWeights draws on this thread when asked, or where no Worker exists", async () => {
  const reference = createRng(5);
  const want = initialStateDict(2, () => reference.float(), "resnet18");
  const worker = globalThis.Worker;
  for (
    const [options, hideWorker] of [[{ worker: false }, false], [{}, true], [
      { worker: true },
      true,
    ]] as const
  ) {
    const rng = createRng(5);
    // As in a runtime without module Workers: `new Worker` throws.
    if (hideWorker) (globalThis as { Worker?: unknown }).Worker = undefined;
    try {
      if (hideWorker) assertEquals(canInitInWorker(), false);
      const drawn = await initialWeights("resnet18", 2, rng, options);
      assertEquals(drawn.onWorker, false);
      assertEquals(drawn.layout, "torch");
      assertSameBits(drawn.stateDict, want);
      assertEquals(rng.getState(), reference.getState());
    } finally {
      globalThis.Worker = worker;
    }
  }
});
