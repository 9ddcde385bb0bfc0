import { assert, assertEquals } from "@std/assert";
import {
  KernelTuner,
  type KernelTunerOptions,
  memoryKernelStore,
  type RunKernelChoices,
  type ShapeRequest,
  TUNE_ROUNDS,
} from "./autotune.ts";

/**
 * A tuner on a fake clock: running variant `v` on shape `key` advances the clock by
 * `cost[key][v]` ms (the first run of each, its "compile", by `compileMs` more). Records runs.
 */
function fakeTuner(cost: Record<string, Record<string, number>>, compileMs = 0) {
  let clock = 0;
  const runs: string[] = [];
  const warnings: string[] = [];
  const compiled = new Set<string>();
  const options: KernelTunerOptions = {
    now: () => clock,
    warn: (line) => warnings.push(line),
    bench: (request) => ({
      run: (name) => {
        runs.push(`${request.key}:${name}`);
        const ms = cost[request.key]?.[name];
        if (ms === undefined) return Promise.reject(new Error(`${name} is broken`));
        clock += ms + (compiled.has(name) ? 0 : compileMs);
        compiled.add(name);
        return Promise.resolve(1);
      },
      dispose: () => {},
    }),
  };
  return { tuner: new KernelTuner(options), runs, warnings, clock: () => clock };
}

function request(key: string, candidates = ["stock", "fast", "small"]): ShapeRequest {
  return {
    family: "Conv2D",
    key: `Conv2D ${key}`,
    label: `Conv2D ${key}`,
    candidates,
    defaultVariant: "fast",
    spec: { key },
  };
}

Deno.test("the tuner runs the default for a new shape and the fastest candidate after tuning", async () => {
  const { tuner, runs } = fakeTuner({ "Conv2D a": { stock: 9, fast: 5, small: 3 } });
  await tuner.useStore(undefined, "adapter");
  assertEquals(tuner.choose(request("a")), "fast");
  assertEquals(tuner.pendingCount, 1);
  const report = await tuner.tune({ budgetMs: 1000 });
  assertEquals(report.decided.map((d) => d.variant), ["small"]);
  assertEquals(report.decided[0].speedupOverStock, 3);
  assertEquals(report.pending, 0);
  assertEquals(tuner.choose(request("a")), "small");
  assertEquals(tuner.pendingCount, 0);
  // Every candidate ran: a warm-up, then interleaved rounds (stock dropped after round 1: 3×).
  assertEquals(runs.slice(0, 6), [
    "Conv2D a:stock",
    "Conv2D a:fast",
    "Conv2D a:small",
    "Conv2D a:stock",
    "Conv2D a:fast",
    "Conv2D a:small",
  ]);
  assertEquals(runs.filter((r) => r.endsWith("small")).length, 1 + TUNE_ROUNDS);
  assertEquals(runs.filter((r) => r.endsWith("stock")).length, 2);
});

Deno.test("the tuner picks stock where stock is fastest", async () => {
  const { tuner } = fakeTuner({ "Conv2D b": { stock: 2, fast: 4, small: 6 } });
  await tuner.useStore(undefined, "adapter");
  assertEquals(tuner.choose(request("b")), "fast");
  const report = await tuner.tune({ budgetMs: 1000 });
  assertEquals(report.decided[0].variant, "stock");
  assertEquals(report.decided[0].speedupOverStock, 1);
  assertEquals(tuner.choose(request("b")), "stock");
});

Deno.test("the tuner keeps each candidate's minimum over noisy rounds, not the mean", async () => {
  let clock = 0;
  // Per run, warm-up first: fast's rounds average 4.7 ms, more than stock's 3, but its best is 1.
  const times: Record<string, number[]> = { stock: [0, 3, 3, 3], fast: [0, 4, 1, 9] };
  const seen: Record<string, number> = { stock: 0, fast: 0 };
  const tuner = new KernelTuner({
    now: () => clock,
    bench: () => ({
      run: (name) => {
        clock += times[name][seen[name]++];
        return Promise.resolve(1);
      },
      dispose: () => {},
    }),
  });
  await tuner.useStore(undefined, "adapter");
  tuner.choose(request("c", ["stock", "fast"]));
  const report = await tuner.tune({ budgetMs: 1000 });
  assertEquals(report.decided[0].variant, "fast");
  assertEquals(report.decided[0].ms, { stock: 3, fast: 1 });
  assertEquals(seen.fast, 1 + TUNE_ROUNDS);
});

Deno.test("the tuner compares estimates for the real call, whatever batch each candidate ran at", async () => {
  let clock = 0;
  // stock and fast run at a quarter of the call's batch (scale 4); whole runs at the call's own
  // batch (scale 1). Raw times favour fast (2 < 6); for the call, whole wins (6 < 8).
  const runMs: Record<string, number> = { stock: 3, fast: 2, whole: 6 };
  const scale: Record<string, number> = { stock: 4, fast: 4, whole: 1 };
  const tuner = new KernelTuner({
    now: () => clock,
    bench: () => ({
      run: (name) => {
        clock += runMs[name];
        return Promise.resolve(scale[name]);
      },
      dispose: () => {},
    }),
  });
  await tuner.useStore(undefined, "adapter");
  tuner.choose(request("w", ["stock", "fast", "whole"]));
  const report = await tuner.tune({ budgetMs: 1000 });
  assertEquals(report.decided[0].variant, "whole");
  assertEquals(report.decided[0].ms, { stock: 12, fast: 8, whole: 6 });
  assertEquals(report.decided[0].speedupOverStock, 2);
});

Deno.test("the tuner respects its budget and leaves the rest pending", async () => {
  // Each shape: 3 warm-ups + 3 rounds of 3 candidates at 10 ms = at most 120 ms.
  const cost = Object.fromEntries(
    ["a", "b", "c", "d", "e"].map((k) => [`Conv2D ${k}`, { stock: 10, fast: 10, small: 10 }]),
  );
  const { tuner, clock } = fakeTuner(cost);
  await tuner.useStore(undefined, "adapter");
  for (const k of ["a", "b", "c", "d", "e"]) tuner.choose(request(k));
  const report = await tuner.tune({ budgetMs: 250 });
  assert(clock() <= 250, `ran ${clock()} ms on a 250 ms budget`);
  assertEquals(report.decided.length, 2);
  assertEquals(report.pending, 3);
  assertEquals(tuner.pendingCount, 3);
  // The next pass goes on where this one stopped.
  const next = await tuner.tune({ budgetMs: 1000 });
  assertEquals(next.decided.map((d) => d.key), ["Conv2D c", "Conv2D d", "Conv2D e"]);
});

Deno.test("a shape the budget cuts short during its warm-ups stays pending", async () => {
  const cost = { stock: 100, fast: 1, small: 1 };
  const { tuner, runs } = fakeTuner({ "Conv2D a": cost, "Conv2D b": cost });
  await tuner.useStore(undefined, "adapter");
  tuner.choose(request("a"));
  tuner.choose(request("b"));
  const report = await tuner.tune({ budgetMs: 50 });
  // The first shape always gets its warm-ups and a round (progress on every call), the second
  // none: its first warm-up would start after the deadline.
  assertEquals(report.decided.map((d) => [d.key, d.variant]), [["Conv2D a", "fast"]]);
  assertEquals(runs.filter((r) => r.startsWith("Conv2D b")), []);
  assertEquals(tuner.choose(request("b")), "fast");
  assertEquals(tuner.pendingCount, 1);
});

Deno.test("stored choices are used without timing; new ones are saved beside other adapters'", async () => {
  const store = memoryKernelStore({
    "v1 llvmpipe :: Conv2D a": "small",
    "v1 other-gpu :: Conv2D a": "stock",
  });
  const { tuner, runs } = fakeTuner({ "Conv2D b": { stock: 1, fast: 5, small: 5 } });
  await tuner.useStore(store, "v1 llvmpipe");
  assertEquals(tuner.choose(request("a")), "small");
  assertEquals(tuner.pendingCount, 0);
  assertEquals(tuner.choices().map((c) => [c.variant, c.cached]), [["small", true]]);
  const none = await tuner.tune();
  assertEquals(none.decided, []);
  assertEquals(runs, []);
  tuner.choose(request("b"));
  await tuner.tune();
  assertEquals(store.saved, {
    "v1 other-gpu :: Conv2D a": "stock",
    "v1 llvmpipe :: Conv2D a": "small",
    "v1 llvmpipe :: Conv2D b": "stock",
  });
  // A second process: both choices come from the store, nothing is timed.
  const second = fakeTuner({});
  await second.tuner.useStore(store, "v1 llvmpipe");
  assertEquals(second.tuner.choose(request("b")), "stock");
  assertEquals(await second.tuner.tune().then((r) => r.decided.length), 0);
  assertEquals(second.runs, []);
});

Deno.test("a stored choice that is no longer a candidate is measured again", async () => {
  const store = memoryKernelStore({ "s :: Conv2D a": "retired-variant" });
  const { tuner } = fakeTuner({ "Conv2D a": { stock: 3, fast: 1, small: 2 } });
  await tuner.useStore(store, "s");
  assertEquals(tuner.choose(request("a")), "fast");
  assertEquals(tuner.pendingCount, 1);
});

Deno.test("a corrupt store is ignored with one warning, and replaced on save", async () => {
  for (
    const broken of [
      { load: () => Promise.reject(new Error("kernel-choices.json: not valid JSON")) },
      { load: () => Promise.resolve("[1,2" as unknown as Record<string, string>) },
      { load: () => Promise.resolve(null as unknown as Record<string, string>) },
    ]
  ) {
    let saved: Record<string, string> | undefined;
    const store = { ...broken, save: (c: Record<string, string>) => void (saved = c) };
    const { tuner, warnings } = fakeTuner({ "Conv2D a": { stock: 3, fast: 1, small: 2 } });
    await tuner.useStore(store as never, "s");
    assertEquals(warnings.length, 1);
    assert(warnings[0].includes("ignoring the kernel-choice cache"), warnings[0]);
    assertEquals(tuner.choose(request("a")), "fast");
    await tuner.tune();
    assertEquals(saved, { "s :: Conv2D a": "fast" });
  }
});

Deno.test("a store entry that is not a string is skipped; a failing save only warns", async () => {
  const store = {
    load: () => Promise.resolve({ "s :: Conv2D a": 42 } as unknown as Record<string, string>),
    save: () => Promise.reject(new Error("read-only file system")),
  };
  const { tuner, warnings } = fakeTuner({ "Conv2D a": { stock: 3, fast: 1, small: 2 } });
  await tuner.useStore(store, "s");
  assertEquals(tuner.choose(request("a")), "fast");
  assertEquals(tuner.pendingCount, 1);
  const report = await tuner.tune();
  assertEquals(report.decided.length, 1);
  assertEquals(warnings.length, 1);
  assert(warnings[0].includes("read-only file system"), warnings[0]);
});

Deno.test("a fresh tuner ignores this scope's stored choices and measures again", async () => {
  const store = memoryKernelStore({ "s :: Conv2D a": "small" });
  const { tuner } = fakeTuner({ "Conv2D a": { stock: 3, fast: 1, small: 2 } });
  await tuner.useStore(store, "s", { fresh: true });
  assertEquals(tuner.choose(request("a")), "fast");
  await tuner.tune();
  assertEquals(store.saved, { "s :: Conv2D a": "fast" });
});

Deno.test("a candidate that fails is left out with a warning", async () => {
  const { tuner, warnings } = fakeTuner({ "Conv2D a": { stock: 3, fast: 2 } });
  await tuner.useStore(undefined, "s");
  tuner.choose(request("a"));
  const report = await tuner.tune();
  assertEquals(report.decided[0].variant, "fast");
  assertEquals(Object.keys(report.decided[0].ms!), ["stock", "fast"]);
  assertEquals(warnings.length, 1);
  assert(warnings[0].includes("small failed"), warnings[0]);
});

/** A run store that keeps every record handed to it. */
function runStore() {
  const saved: RunKernelChoices[] = [];
  return { saved, save: (c: RunKernelChoices) => Promise.resolve(void saved.push(c)) };
}

Deno.test("a run pins what its first step ran, then the winners of its first tuning pass", async () => {
  const { tuner } = fakeTuner({ "Conv2D a": { stock: 9, fast: 5, small: 3 } });
  await tuner.useStore(memoryKernelStore({ "scope :: Conv2D b": "stock" }), "scope");
  const store = runStore();
  tuner.pinRun(undefined, { epoch: 1, store });
  assertEquals(tuner.choose(request("a")), "fast"); // unmeasured: the default
  assertEquals(tuner.choose(request("b")), "stock"); // the cache's winner
  assertEquals(store.saved.length, 0);
  await tuner.tune({ budgetMs: 1000 });
  const pinned = {
    choices: { "Conv2D a": "small", "Conv2D b": "stock" },
    firstStep: { epoch: 1, choices: { "Conv2D a": "fast" } },
  };
  assertEquals(store.saved, [pinned]);
  assertEquals(tuner.choose(request("a")), "small");
  // A shape met after the pin (a last, smaller batch) runs its default, by rule: not timed.
  assertEquals(tuner.choose(request("c")), "fast");
  assertEquals(tuner.pendingCount, 0);
  await tuner.saveRun();
  assertEquals(store.saved[1].choices, { ...pinned.choices, "Conv2D c": "fast" });
  await tuner.saveRun(); // nothing new: nothing written
  assertEquals(store.saved.length, 2);
});

Deno.test("a shape the first tuning pass left unmeasured stays on the default it ran", async () => {
  const cost = { stock: 100, fast: 1, small: 1 };
  const { tuner } = fakeTuner({ "Conv2D a": cost, "Conv2D b": { ...cost, small: 0.5 } });
  await tuner.useStore(undefined, "scope");
  const store = runStore();
  tuner.pinRun(undefined, { epoch: 1, store });
  tuner.choose(request("a"));
  tuner.choose(request("b"));
  await tuner.tune({ budgetMs: 50 }); // measures a only (see the budget test above)
  assertEquals(store.saved[0].choices, { "Conv2D a": "fast", "Conv2D b": "fast" });
  // A later pass still measures b (for the cache), but the run keeps computing with its pin.
  const later = await tuner.tune({ budgetMs: 1000 });
  assertEquals(later.decided.map((d) => [d.key, d.variant]), [["Conv2D b", "small"]]);
  assertEquals(tuner.choose(request("b")), "fast");
});

Deno.test("a resumed run computes with its record whatever the clock and the cache say", async () => {
  const recorded: RunKernelChoices = {
    choices: { "Conv2D a": "small", "Conv2D b": "stock" },
    firstStep: { epoch: 1, choices: { "Conv2D a": "fast" } },
  };
  // Resumed after epoch 2: pinned from the first call; the cache disagrees and is not asked.
  const { tuner, runs } = fakeTuner({ "Conv2D c": { stock: 1, fast: 5, small: 9 } });
  await tuner.useStore(
    memoryKernelStore({ "scope :: Conv2D a": "stock", "scope :: Conv2D b": "small" }),
    "scope",
  );
  const store = runStore();
  tuner.pinRun(recorded, { epoch: 3, store });
  assertEquals(tuner.awaitingPin, false);
  assertEquals(tuner.choose(request("a")), "small");
  assertEquals(tuner.choose(request("b")), "stock");
  assertEquals(tuner.choose(request("c")), "fast"); // new: the default, not timed
  const report = await tuner.tune({ budgetMs: 1000 });
  assertEquals([report.decided, runs], [[], []]);
  assertEquals(store.saved, [{
    ...recorded,
    choices: { ...recorded.choices, "Conv2D c": "fast" },
  }]);

  // Resumed from the start of epoch 1 (interrupted inside it): its first step is replayed, then
  // the record's choices are pinned, again without timing.
  const again = fakeTuner({});
  await again.tuner.useStore(undefined, "scope");
  const store2 = runStore();
  again.tuner.pinRun(recorded, { epoch: 1, store: store2 });
  assertEquals(again.tuner.choose(request("a")), "fast");
  assertEquals(again.tuner.choose(request("b")), "stock");
  assertEquals(again.tuner.awaitingPin, true);
  await again.tuner.tune({ budgetMs: 1000 });
  assertEquals(again.runs, []);
  assertEquals(again.tuner.choose(request("a")), "small");
  assertEquals(store2.saved, [recorded]);
});

Deno.test("a recorded variant that cannot run the call here runs the default, with a warning", async () => {
  const { tuner, warnings } = fakeTuner({});
  await tuner.useStore(undefined, "scope");
  const store = runStore();
  tuner.pinRun({ choices: { "Conv2D a": "buffer" }, firstStep: { epoch: 1, choices: {} } }, {
    epoch: 2,
    store,
  });
  assertEquals(tuner.choose(request("a")), "fast");
  assertEquals(warnings.length, 1);
  assert(warnings[0].includes("recorded buffer does not handle this call"), warnings[0]);
  assertEquals(tuner.choose(request("a")), "fast");
  assertEquals(warnings.length, 1);
});

Deno.test("until the first tuning pass a training run's first step runs the defaults, stored winners included", async () => {
  const { tuner, runs } = fakeTuner({ "Conv2D a": { stock: 9, fast: 5, small: 3 } });
  await tuner.useStore(memoryKernelStore({ "scope :: Conv2D b": "stock" }), "scope");
  const store = runStore();
  tuner.pinRun(undefined, { epoch: 1, store });
  tuner.firstUseUntilTune();
  assertEquals(tuner.choose(request("a")), "fast"); // unmeasured: the default
  assertEquals(tuner.choose(request("b")), "fast"); // stored, but the first step: the default
  assertEquals(tuner.pendingCount, 1); // a stored shape is not measured again
  await tuner.tune({ budgetMs: 1000 });
  assertEquals(runs.every((r) => r.startsWith("Conv2D a:")), true);
  // The pin: the winners (measured or stored); the first step's defaults recorded for a replay.
  assertEquals(store.saved, [{
    choices: { "Conv2D a": "small", "Conv2D b": "stock" },
    firstStep: { epoch: 1, choices: { "Conv2D a": "fast", "Conv2D b": "fast" } },
  }]);
  assertEquals(tuner.choose(request("b")), "stock");
});

Deno.test("outside a training run's first step stored winners run at once (eval, predict)", async () => {
  const { tuner } = fakeTuner({});
  await tuner.useStore(memoryKernelStore({ "scope :: Conv2D b": "stock" }), "scope");
  tuner.firstUseUntilTune();
  assertEquals(tuner.choose(request("b")), "fast");
  tuner.endFirstUse();
  assertEquals(tuner.choose(request("b")), "stock");
});
