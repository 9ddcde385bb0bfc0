/**
 * Learning-rate schedules, stepped once per batch as fastai and timm step them: a 5-epoch run
 * stepped per epoch would see only 5 distinct rates, and one-cycle's warm-up would be a single
 * jump. Each is a pure function of the 0-based batch index over the whole run, so a resumed run
 * gets exactly the rates an uninterrupted one would.
 *
 * @module
 */

/** The schedules a run can use (`--schedule`). */
export const SCHEDULE_KINDS = ["constant", "cosine", "onecycle"] as const;
/** One of {@linkcode SCHEDULE_KINDS}. */
export type ScheduleKind = typeof SCHEDULE_KINDS[number];

/** `torch.optim.lr_scheduler.OneCycleLR`'s options; `max_lr` is each group's own lr. */
export interface OneCycleOptions {
  /** Fraction of the steps spent raising the lr. Default 0.3. */
  pctStart: number;
  /** `initial_lr = max_lr / divFactor`. Default 25. */
  divFactor: number;
  /** `min_lr = initial_lr / finalDivFactor`. Default 1e4. */
  finalDivFactor: number;
  /** Default `cos`. */
  annealStrategy: "cos" | "linear";
  /** Cycle SGD's momentum / AdamW's β1 inversely to the lr. Default true. */
  cycleMomentum: boolean;
  /** Default 0.85. */
  baseMomentum: number;
  /** Default 0.95. */
  maxMomentum: number;
  /** Default false: two phases (up, then down to `min_lr`). */
  threePhase: boolean;
}

/** PyTorch's `OneCycleLR` defaults. */
export const ONE_CYCLE_DEFAULTS: Readonly<OneCycleOptions> = {
  pctStart: 0.3,
  divFactor: 25,
  finalDivFactor: 1e4,
  annealStrategy: "cos",
  cycleMomentum: true,
  baseMomentum: 0.85,
  maxMomentum: 0.95,
  threePhase: false,
};

/**
 * fastai's `Learner.fine_tune(epochs, base_lr, freeze_epochs, lr_mult=100, pct_start=0.3,
 * div=5.0)` (fastai/callback/schedule.py) as two one-cycles, used when `onecycle` has frozen
 * head-only batches ({@linkcode ScheduleConfig.freezeSteps}):
 *
 * ```python
 * self.freeze()
 * self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99)
 * base_lr /= 2
 * self.unfreeze()
 * self.fit_one_cycle(epochs, slice(base_lr/lr_mult, base_lr), pct_start=pct_start, div=div)
 * ```
 *
 * `fit_one_cycle`'s own defaults fill the rest: `div=25` and momenta 0.95 → 0.85 → 0.95 for each
 * cycle, and `div_final=1e5`: fastai's cycle ends at `lr_max / div_final`, where PyTorch's ends
 * at `lr_max / div_factor / final_div_factor`, so each cycle's `final_div_factor` is
 * `divFinal / divFactor`. `lrScale` multiplies the cycle's peak: the unfrozen cycle peaks at half
 * the frozen one's.
 */
export const FINE_TUNE_CYCLES = {
  frozen: { lrScale: 1, pctStart: 0.99, divFactor: 25 },
  unfrozen: { lrScale: 0.5, pctStart: 0.3, divFactor: 5 },
  divFinal: 1e5,
} as const;

/** Which schedule, and its settings. */
export interface ScheduleConfig {
  kind: ScheduleKind;
  /**
   * Batches of linear warm-up before a `constant` or `cosine` schedule (see
   * {@linkcode warmupSteps}); one-cycle warms up by itself and refuses it. Default 0.
   */
  warmupSteps?: number;
  /**
   * Overrides of {@linkcode ONE_CYCLE_DEFAULTS}. With {@linkcode freezeSteps}, each cycle's
   * `pctStart`, `divFactor` and `finalDivFactor` are {@linkcode FINE_TUNE_CYCLES}'s.
   */
  oneCycle?: Partial<OneCycleOptions>;
  /**
   * Head-only batches at the start of the run (`--freeze-epochs` × batches per epoch). With
   * `onecycle` and ≥ 1 of them, the run is fastai's `fine_tune`: one cycle over these batches and
   * a new one over the rest (see {@linkcode FINE_TUNE_CYCLES}). `constant` and `cosine` ignore
   * it and span the whole run. Default 0.
   */
  freezeSteps?: number;
}

/** What a schedule sets before one batch. */
export interface SchedulePoint {
  /** Multiplies every param group's lr (so the head keeps its × head-lr-mult). */
  lrFactor: number;
  /** SGD's momentum or AdamW's β1 for this batch; absent when the schedule leaves it alone. */
  momentum?: number;
}

/**
 * The lr factor (and momentum) for the 0-based batch `step` of a run of `totalSteps` batches.
 *
 * - `constant`: 1.
 * - `cosine`: `torch.optim.lr_scheduler.CosineAnnealingLR(T_max=totalSteps, eta_min=0)` stepped
 *   per batch: `(1 + cos(π·step/T_max)) / 2`, so half-way is lr/2 and the last batch is just
 *   above 0.
 * - `onecycle`: `torch.optim.lr_scheduler.OneCycleLR(max_lr=lr, total_steps=totalSteps, ...)`:
 *   from `lr/divFactor` up to `lr` at step `pctStart·totalSteps − 1`, then down to
 *   `lr/divFactor/finalDivFactor` at the last step, with momentum going the other way between
 *   `maxMomentum` and `baseMomentum`. PyTorch cycles the momentum even of an SGD built with
 *   momentum 0, and so does webtune.
 * - `onecycle` with `freezeSteps` = F ≥ 1 (fastai's `fine_tune`): steps 0 … F−1 follow
 *   `OneCycleLR(total_steps=F, pct_start=0.99, div_factor=25, final_div_factor=4e3)`, steps F …
 *   totalSteps−1 follow `0.5 × OneCycleLR(total_steps=totalSteps−F, pct_start=0.3,
 *   div_factor=5, final_div_factor=2e4)` counted from F: the lr and momentum restart, and each
 *   cycle ends at its peak / 1e5, as fastai's. Positions
 *   within a cycle are PyTorch's (peak at step `pct_start·steps − 1`, end value at the last
 *   step); fastai's `ParamScheduler` reaches each point one batch later (at `pct_start·steps`).
 * - Warm-up (`warmupSteps` = W ≥ 1, constant/cosine): batch s < W uses `(s + 1)/W`, then the
 *   schedule runs over the remaining `totalSteps − W` batches, i.e. PyTorch's
 *   `SequentialLR([LinearLR(start_factor=1/W, total_iters=W−1), main], milestones=[W])` with
 *   `main` = `CosineAnnealingLR(T_max=totalSteps−W)` for cosine, a factor-1 schedule for
 *   constant. The first batch already learns (at lr/W) and batch W−1 reaches the full lr.
 *
 * @example
 * ```ts
 * import { scheduleAt } from "@webtune/core";
 * scheduleAt(0, 100, { kind: "onecycle" }); // { lrFactor: 0.04, momentum: 0.95 }
 * scheduleAt(50, 100, { kind: "cosine" }); // { lrFactor: 0.5 }
 * // fastai's fine_tune: the unfrozen cycle starts at half the lr / 5
 * scheduleAt(20, 100, { kind: "onecycle", freezeSteps: 20 }); // { lrFactor: 0.1, momentum: 0.95 }
 * ```
 */
export function scheduleAt(
  step: number,
  totalSteps: number,
  config: ScheduleConfig,
): SchedulePoint {
  if (!Number.isInteger(totalSteps) || totalSteps < 1) {
    throw new Error(`schedule: total steps must be a positive integer, got ${totalSteps}`);
  }
  if (!Number.isInteger(step) || step < 0 || step >= totalSteps) {
    throw new Error(`schedule: step ${step} is outside the run's ${totalSteps} steps`);
  }
  const warmup = config.warmupSteps ?? 0;
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new Error(`schedule: warm-up steps must be a non-negative integer, got ${warmup}`);
  }
  if (config.kind === "onecycle") {
    if (warmup > 0) {
      throw new Error("schedule: onecycle warms up by itself (pct_start); drop the warm-up");
    }
    const options = { ...ONE_CYCLE_DEFAULTS, ...config.oneCycle };
    const freeze = config.freezeSteps ?? 0;
    if (freeze === 0) return oneCycleAt(step, totalSteps, options);
    if (!Number.isInteger(freeze) || freeze < 0 || freeze >= totalSteps) {
      throw new Error(
        `schedule: head-only steps must be a whole number in [0, ${totalSteps}), got ${freeze}`,
      );
    }
    const frozen = step < freeze;
    const { lrScale, pctStart, divFactor } = frozen
      ? FINE_TUNE_CYCLES.frozen
      : FINE_TUNE_CYCLES.unfrozen;
    const finalDivFactor = FINE_TUNE_CYCLES.divFinal / divFactor;
    const cycle = { ...options, pctStart, divFactor, finalDivFactor };
    const point = frozen
      ? oneCycleAt(step, freeze, cycle)
      : oneCycleAt(step - freeze, totalSteps - freeze, cycle);
    return { ...point, lrFactor: lrScale * point.lrFactor };
  }
  if (warmup >= totalSteps) {
    throw new Error(
      `schedule: warm-up (${warmup} steps) must be shorter than the run (${totalSteps})`,
    );
  }
  if (step < warmup) return { lrFactor: (step + 1) / warmup };
  if (config.kind === "constant") return { lrFactor: 1 };
  if (config.kind === "cosine") {
    return { lrFactor: (1 + Math.cos((Math.PI * (step - warmup)) / (totalSteps - warmup))) / 2 };
  }
  throw new Error(`schedule: unknown schedule ${(config as { kind: string }).kind}`);
}

/**
 * PyTorch's `OneCycleLR.get_lr` for one group with `max_lr` 1, written from its documented
 * phases: each phase anneals from its start to its end value over
 * `(step − previous end) / (end − previous end)`.
 */
function oneCycleAt(step: number, totalSteps: number, o: OneCycleOptions): SchedulePoint {
  if (!(o.pctStart >= 0 && o.pctStart <= 1)) {
    throw new Error(`schedule: onecycle pct_start must be in [0, 1], got ${o.pctStart}`);
  }
  const initial = 1 / o.divFactor, peak = 1, min = initial / o.finalDivFactor;
  const up = o.pctStart * totalSteps - 1;
  const phases = o.threePhase
    ? [
      { end: up, lr: [initial, peak], momentum: [o.maxMomentum, o.baseMomentum] },
      {
        end: 2 * o.pctStart * totalSteps - 2,
        lr: [peak, initial],
        momentum: [o.baseMomentum, o.maxMomentum],
      },
      { end: totalSteps - 1, lr: [initial, min], momentum: [o.maxMomentum, o.maxMomentum] },
    ]
    : [
      { end: up, lr: [initial, peak], momentum: [o.maxMomentum, o.baseMomentum] },
      { end: totalSteps - 1, lr: [peak, min], momentum: [o.baseMomentum, o.maxMomentum] },
    ];
  const anneal = o.annealStrategy === "cos"
    ? (start: number, end: number, pct: number) =>
      end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1)
    : (start: number, end: number, pct: number) => (end - start) * pct + start;
  let start = 0;
  for (let i = 0; i < phases.length; i++) {
    const phase = phases[i];
    if (step <= phase.end || i === phases.length - 1) {
      if (phase.end === start) {
        // PyTorch divides by zero here too; say which setting causes it.
        throw new Error(
          `schedule: onecycle with ${totalSteps} steps and pct_start ${o.pctStart} has an empty phase`,
        );
      }
      const pct = (step - start) / (phase.end - start);
      const point: SchedulePoint = { lrFactor: anneal(phase.lr[0], phase.lr[1], pct) };
      if (o.cycleMomentum) point.momentum = anneal(phase.momentum[0], phase.momentum[1], pct);
      return point;
    }
    start = phase.end;
  }
  throw new Error("unreachable: the last phase always matches");
}

/**
 * Warm-up batches for `--warmup-epochs` (fractions allowed: 0.5 is half an epoch), rounded to
 * whole batches.
 *
 * @example
 * ```ts
 * import { warmupSteps } from "@webtune/core";
 * warmupSteps(0.5, 13); // 7
 * ```
 */
export function warmupSteps(warmupEpochs: number, batchesPerEpoch: number): number {
  if (!(warmupEpochs >= 0)) throw new Error(`--warmup-epochs must be ≥ 0, got ${warmupEpochs}`);
  return Math.round(warmupEpochs * batchesPerEpoch);
}

/**
 * The 0-based index over the whole run of the `batchIndex`-th (0-based) batch of a 1-based
 * `epoch`: what {@linkcode scheduleAt} takes. Every epoch has `batchesPerEpoch` batches.
 *
 * @example
 * ```ts
 * import { globalStep } from "@webtune/core";
 * globalStep(2, 0, 13); // 13
 * ```
 */
export function globalStep(epoch: number, batchIndex: number, batchesPerEpoch: number): number {
  return (epoch - 1) * batchesPerEpoch + batchIndex;
}
