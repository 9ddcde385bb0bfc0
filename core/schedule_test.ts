import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  FINE_TUNE_CYCLES,
  globalStep,
  ONE_CYCLE_DEFAULTS,
  scheduleAt,
  type SchedulePoint,
  warmupSteps,
} from "./schedule.ts";

function assertPoint(actual: SchedulePoint, lrFactor: number, momentum?: number, what = "") {
  assertAlmostEquals(actual.lrFactor, lrFactor, 1e-12, `${what} lr factor ${actual.lrFactor}`);
  if (momentum === undefined) assertEquals(actual.momentum, undefined, `${what} momentum`);
  else assertAlmostEquals(actual.momentum!, momentum, 1e-12, `${what} momentum`);
}

// PyTorch's docs: cos annealing from a to b at fraction p is b + (a − b)/2 · (cos(πp) + 1).
const cosAnneal = (a: number, b: number, p: number) =>
  b + ((a - b) / 2) * (Math.cos(Math.PI * p) + 1);

Deno.test("schedule: onecycle follows torch's OneCycleLR (defaults: 0.3, 25, 1e4, cos, momentum 0.85–0.95)", () => {
  const T = 100, on = { kind: "onecycle" } as const;
  assertEquals(ONE_CYCLE_DEFAULTS.divFactor, 25);
  // Step 0: initial_lr = max_lr / 25, momentum at max_momentum.
  assertPoint(scheduleAt(0, T, on), 1 / 25, 0.95, "step 0");
  // Peak at step pct_start·T − 1 = 29: max_lr, base_momentum.
  assertPoint(scheduleAt(29, T, on), 1, 0.85, "peak");
  // Last step T − 1: min_lr = initial_lr / 1e4, momentum back at max.
  assertPoint(scheduleAt(99, T, on), 1 / 25 / 1e4, 0.95, "last");
  // Inside phase 1: fraction 14/29 of the way up.
  assertPoint(
    scheduleAt(14, T, on),
    cosAnneal(1 / 25, 1, 14 / 29),
    cosAnneal(0.95, 0.85, 14 / 29),
    "step 14",
  );
  // Half-way down phase 2 (29 → 99): the mean of max and min, momentum 0.9.
  assertPoint(scheduleAt(64, T, on), (1 + 4e-6) / 2, 0.9, "step 64");
  // The lr rises strictly then falls strictly.
  const lrs = Array.from({ length: T }, (_, s) => scheduleAt(s, T, on).lrFactor);
  for (let s = 1; s < T; s++) {
    if (s <= 29) assertEquals(lrs[s] > lrs[s - 1], true, `rises at ${s}`);
    else assertEquals(lrs[s] < lrs[s - 1], true, `falls at ${s}`);
  }
});

Deno.test("schedule: onecycle options (linear, three-phase, no momentum cycling)", () => {
  const T = 100;
  const linear = { kind: "onecycle", oneCycle: { annealStrategy: "linear" } } as const;
  assertPoint(scheduleAt(14, T, linear), 0.04 + 0.96 * 14 / 29, 0.95 - 0.1 * 14 / 29, "linear");
  const three = { kind: "onecycle", oneCycle: { threePhase: true } } as const;
  assertPoint(scheduleAt(29, T, three), 1, 0.85, "three-phase peak");
  // Phase 2 ends at 2·pct_start·T − 2 = 58 back at initial_lr; phase 3 anneals to min_lr.
  assertPoint(scheduleAt(58, T, three), 0.04, 0.95, "three-phase step 58");
  assertPoint(scheduleAt(99, T, three), 4e-6, 0.95, "three-phase last");
  assertPoint(
    scheduleAt(78, T, three),
    cosAnneal(0.04, 4e-6, (78 - 58) / (99 - 58)),
    0.95,
    "three-phase step 78",
  );
  const fixed = { kind: "onecycle", oneCycle: { cycleMomentum: false, divFactor: 10 } } as const;
  assertPoint(scheduleAt(0, T, fixed), 0.1, undefined, "no momentum cycling");
});

Deno.test("schedule: onecycle with head-only steps is fastai's fine_tune, two OneCycleLRs", () => {
  // 30 batches, the first 10 head-only: fit_one_cycle(10 steps, lr, pct_start=0.99), then
  // lr /= 2 and fit_one_cycle(20 steps, lr, pct_start=0.3, div=5); fastai's div_final 1e5 ends
  // each cycle at its peak / 1e5. Each value below is OneCycleLR's two-phase cos formula with
  // those settings.
  const T = 30, fineTune = { kind: "onecycle", freezeSteps: 10 } as const;
  assertEquals(FINE_TUNE_CYCLES.frozen.pctStart, 0.99);
  assertEquals(FINE_TUNE_CYCLES.unfrozen.divFactor, 5);
  // Cycle 1: initial 1/25, peak 1 at step 0.99·10 − 1 = 8.9, min 1/1e5 at its last step 9.
  assertPoint(scheduleAt(0, T, fineTune), 0.04, 0.95, "cycle 1 step 0");
  assertPoint(
    scheduleAt(4, T, fineTune),
    cosAnneal(0.04, 1, 4 / 8.9),
    cosAnneal(0.95, 0.85, 4 / 8.9),
    "cycle 1 step 4",
  );
  assertPoint(
    scheduleAt(8, T, fineTune),
    cosAnneal(0.04, 1, 8 / 8.9),
    cosAnneal(0.95, 0.85, 8 / 8.9),
    "cycle 1 step 8",
  );
  // Step 9 is past the peak (8.9) and the cycle's last step: its whole way down, (9 − 8.9)/0.1.
  assertPoint(scheduleAt(9, T, fineTune), 1e-5, 0.95, "cycle 1 last step");
  // Cycle 2 restarts from step 10 at half the lr: initial 0.5/5, peak 0.5 at local step
  // 0.3·20 − 1 = 5, min 0.5/1e5 at local step 19; momentum restarts at 0.95.
  assertPoint(scheduleAt(10, T, fineTune), 0.1, 0.95, "cycle 2 step 0");
  // Local step 2: 2/5 of the way up: 0.5 · (1 + (0.2 − 1)/2 · (cos(0.4π) + 1)).
  assertPoint(
    scheduleAt(12, T, fineTune),
    0.5 * (1 - 0.4 * (Math.cos(0.4 * Math.PI) + 1)),
    0.85 + 0.05 * (Math.cos(0.4 * Math.PI) + 1),
    "cycle 2 step 2",
  );
  assertPoint(scheduleAt(15, T, fineTune), 0.5, 0.85, "cycle 2 peak");
  // Local step 12: half-way down (12 − 5)/(19 − 5): the mean of peak and min, momentum 0.9.
  assertPoint(scheduleAt(22, T, fineTune), 0.5 * (1 + 1e-5) / 2, 0.9, "cycle 2 step 12");
  assertPoint(scheduleAt(29, T, fineTune), 5e-6, 0.95, "cycle 2 last step");
  // Without head-only steps, and for other schedules, nothing changes.
  for (const s of [0, 9, 10, 29]) {
    assertEquals(
      scheduleAt(s, T, { kind: "onecycle", freezeSteps: 0 }),
      scheduleAt(s, T, { kind: "onecycle" }),
    );
    assertEquals(
      scheduleAt(s, T, { kind: "cosine", freezeSteps: 10 }),
      scheduleAt(s, T, { kind: "cosine" }),
    );
  }
  assertThrows(() => scheduleAt(0, T, { kind: "onecycle", freezeSteps: 30 }), Error, "head-only");
  assertThrows(() => scheduleAt(0, T, { kind: "onecycle", freezeSteps: 1.5 }), Error, "head-only");
});

Deno.test("schedule: cosine is CosineAnnealingLR(T_max = steps, eta_min 0) per batch; constant is 1", () => {
  const T = 100;
  assertPoint(scheduleAt(0, T, { kind: "cosine" }), 1);
  assertPoint(scheduleAt(50, T, { kind: "cosine" }), 0.5);
  assertPoint(scheduleAt(25, T, { kind: "cosine" }), (1 + Math.SQRT1_2) / 2);
  assertPoint(scheduleAt(99, T, { kind: "cosine" }), (1 + Math.cos(Math.PI * 0.99)) / 2);
  for (const s of [0, 37, 99]) assertPoint(scheduleAt(s, T, { kind: "constant" }), 1);
});

Deno.test("schedule: linear warm-up per batch, then the schedule over the remaining steps", () => {
  const constant = { kind: "constant", warmupSteps: 4 } as const;
  assertEquals(
    [0, 1, 2, 3, 4, 9].map((s) => scheduleAt(s, 10, constant).lrFactor),
    [0.25, 0.5, 0.75, 1, 1, 1],
  );
  const cosine = { kind: "cosine", warmupSteps: 10 } as const;
  assertPoint(scheduleAt(0, 110, cosine), 0.1);
  assertPoint(scheduleAt(9, 110, cosine), 1);
  assertPoint(scheduleAt(10, 110, cosine), 1);
  assertPoint(scheduleAt(60, 110, cosine), 0.5);
  assertEquals(warmupSteps(1, 13), 13);
  assertEquals(warmupSteps(0.5, 13), 7);
  assertEquals(globalStep(1, 0, 13), 0);
  assertEquals(globalStep(3, 4, 13), 30);
});

Deno.test("schedule: bad settings are refused with the reason", () => {
  assertThrows(() => scheduleAt(100, 100, { kind: "cosine" }), Error, "outside");
  assertThrows(() => scheduleAt(-1, 100, { kind: "cosine" }), Error, "outside");
  assertThrows(() => scheduleAt(0, 0, { kind: "constant" }), Error, "total steps");
  assertThrows(() => scheduleAt(0, 10, { kind: "cosine", warmupSteps: 10 }), Error, "shorter");
  assertThrows(() => scheduleAt(0, 10, { kind: "onecycle", warmupSteps: 2 }), Error, "pct_start");
  // pct_start·T − 1 = 0: phase 1 is empty (PyTorch divides by zero there).
  assertThrows(
    () => scheduleAt(0, 10, { kind: "onecycle", oneCycle: { pctStart: 0.1 } }),
    Error,
    "empty phase",
  );
  assertThrows(() => warmupSteps(-1, 10), Error, "--warmup-epochs");
});
