/**
 * fastai's `Learner.lr_find`: train for up to `num_it` batches while the learning rate grows
 * exponentially from `start_lr` to `end_lr`, record the smoothed loss, stop once it diverges,
 * and suggest a learning rate. The sweep is a driver around a `step(lr)` callback, so the CLI,
 * the page and the tests share it; the caller trains a throw-away copy of the model (fastai
 * reloads the weights afterwards).
 *
 * @module
 */
import type { NumberParam } from "./run_config.ts";

/**
 * The sweep's settings with fastai's defaults, declared once in the run-config table's form: the
 * CLI's `--start-lr`, `--end-lr`, `--num-it` and the page's fields derive from it, and
 * {@linkcode lrFind} falls back to these defaults.
 *
 * @example
 * ```ts
 * import { LR_FIND_PARAMS } from "@webtune/core";
 * console.log(LR_FIND_PARAMS.numIt.default); // 100
 * ```
 */
export const LR_FIND_PARAMS = {
  startLr: { kind: "number", min: 0, default: 1e-7, help: "the sweep's first learning rate" },
  endLr: {
    kind: "number",
    min: 0,
    default: 10,
    help: "the learning rate the sweep would reach after --num-it batches",
  },
  numIt: {
    kind: "number",
    integer: true,
    min: 6,
    default: 100,
    help: "batches in the sweep (fewer if the loss diverges first)",
  },
} as const satisfies Record<string, NumberParam & { default: number }>;

/** The sweep's settings; the defaults are fastai's. */
export interface LrFindOptions {
  /** First learning rate. Default 1e-7. */
  startLr?: number;
  /** The rate the sweep would reach after `numIt` batches. Default 10. */
  endLr?: number;
  /** Batches (at least 6, as fastai). Default 100. */
  numIt?: number;
  /** Stop once the smoothed loss exceeds 4× its best (fastai's `stop_div`). Default true. */
  stopDiv?: boolean;
  /** Smoothing of fastai's `AvgSmoothLoss`. Default 0.98. */
  beta?: number;
  /** Aborting stops after the current batch, keeping what was recorded. */
  signal?: AbortSignal;
  /** Called after each batch with its 0-based index, lr, raw and smoothed loss. */
  onStep?: (point: { iteration: number; lr: number; loss: number; smoothLoss: number }) => void;
}

/** A suggested learning rate and the (lr, smoothed loss) point it was read from. */
export interface LrSuggestion {
  lr: number;
  loss: number;
}

/** Why the sweep ended. */
export type LrFindStop = "completed" | "diverged" | "nan" | "aborted";

/** What `lr_find.json` holds (`JSON.stringify` writes a NaN loss as `null`). */
export interface LrFindResult {
  start_lr: number;
  end_lr: number;
  num_it: number;
  /** The lr of each batch that ran. */
  lrs: number[];
  /** fastai's smoothed, debiased loss after each batch (what it plots and suggests from). */
  losses: number[];
  /** The batch losses the callback returned. */
  raw_losses: number[];
  stop: LrFindStop;
  /**
   * fastai's `steep` (the lr where the smoothed loss falls fastest per unit of log lr) and
   * `valley` (about 2/3 down the longest descending stretch); absent when too few batches ran.
   */
  suggestions?: { steep: LrSuggestion; valley: LrSuggestion };
}

/**
 * Runs the sweep. Batch `i` (0-based) trains at `startLr · (endLr/startLr)^(i/numIt)`, so the
 * last rate is just below `endLr`, exactly as fastai's `SchedExp` at `train_iter/num_it`.
 * `step(lr, i)` trains one batch at base learning rate `lr` (param groups keep their
 * multipliers) and returns that batch's mean per-example loss, as fastai records `loss.mean()`.
 * It must keep supplying batches past the end of an epoch (fastai runs
 * `num_it // batches_per_epoch + 1` epochs).
 *
 * A NaN loss ends the sweep at once (every later loss would be NaN too); the suggestions are
 * then read from the same window fastai's, which keeps training to `num_it`, would use.
 *
 * @example
 * ```ts
 * import { lrFind } from "@webtune/core";
 * const result = await lrFind(async (lr) => (Math.log10(lr) + 3) ** 2 + 1, { numIt: 50 });
 * console.log(result.suggestions?.steep.lr, result.stop);
 * ```
 */
export async function lrFind(
  step: (lr: number, iteration: number) => Promise<number>,
  options: LrFindOptions = {},
): Promise<LrFindResult> {
  const startLr = options.startLr ?? LR_FIND_PARAMS.startLr.default;
  const endLr = options.endLr ?? LR_FIND_PARAMS.endLr.default;
  const numIt = Math.max(LR_FIND_PARAMS.numIt.min, options.numIt ?? LR_FIND_PARAMS.numIt.default);
  const beta = options.beta ?? 0.98;
  const stopDiv = options.stopDiv ?? true;
  if (!(startLr > 0 && endLr > startLr)) {
    throw new Error(`lr-find: need 0 < start lr < end lr, got ${startLr} and ${endLr}`);
  }
  if (!Number.isInteger(numIt)) throw new Error(`lr-find: num_it must be whole, got ${numIt}`);
  if (!(beta >= 0 && beta < 1)) throw new Error(`lr-find: beta must be in [0, 1), got ${beta}`);
  const lrs: number[] = [], losses: number[] = [], raw: number[] = [];
  let average = 0, best = Infinity, stop: LrFindStop = "completed";
  for (let i = 0; i < numIt; i++) {
    const lr = startLr * (endLr / startLr) ** (i / numIt);
    const loss = await step(lr, i);
    // fastai's AvgSmoothLoss: val = torch.lerp(loss, val, beta), reported val / (1 − beta^count).
    average = loss + beta * (average - loss);
    const smooth = average / (1 - beta ** (i + 1));
    lrs.push(lr);
    raw.push(loss);
    losses.push(smooth);
    options.onStep?.({ iteration: i, lr, loss, smoothLoss: smooth });
    if (Number.isNaN(smooth)) {
      stop = "nan";
      break;
    }
    if (smooth < best) best = smooth;
    if (stopDiv && smooth > 4 * best) {
      stop = "diverged";
      break;
    }
    if (options.signal?.aborted && i < numIt - 1) {
      stop = "aborted";
      break;
    }
  }
  const result: LrFindResult = {
    start_lr: startLr,
    end_lr: endLr,
    num_it: numIt,
    lrs,
    losses,
    raw_losses: raw,
    stop,
  };
  const suggestions = suggestLrs(lrs, losses, numIt, stop === "nan");
  if (suggestions) result.suggestions = suggestions;
  return result;
}

/**
 * fastai's suggestions from a recorded sweep: the window `[num_it // 10, len − 5)` (the first
 * tenth and the last five batches are noise and divergence), cut at the first NaN, then `steep`
 * and `valley` on it. `stoppedOnNaN`: the sweep stopped at a NaN that fastai would have kept
 * training past, so its window would have ended at `min(first NaN, num_it − 5)`.
 *
 * @example
 * ```ts
 * import { suggestLrs } from "@webtune/core";
 * const lrs = Array.from({ length: 20 }, (_, i) => 10 ** (i / 4 - 5));
 * const s = suggestLrs(lrs, lrs.map((_, i) => 1 / (1 + i)), 20); // steep.lr = lrs[2]
 * ```
 */
export function suggestLrs(
  lrs: readonly number[],
  losses: readonly number[],
  numIt: number,
  stoppedOnNaN = false,
): { steep: LrSuggestion; valley: LrSuggestion } | undefined {
  const first = Math.floor(numIt / 10);
  let end = stoppedOnNaN ? numIt - 5 : losses.length - 5;
  const nan = losses.findIndex((l, i) => i >= first && Number.isNaN(l));
  if (nan >= 0) end = Math.min(end, nan);
  if (end - first < 2) return undefined;
  const windowLrs = lrs.slice(first, end), windowLosses = losses.slice(first, end);
  return { steep: steep(windowLrs, windowLosses), valley: valley(windowLrs, windowLosses) };
}

/** fastai's `steep`: the left end of the segment with the most negative d(loss)/d(log lr). */
function steep(lrs: readonly number[], losses: readonly number[]): LrSuggestion {
  let best = 0, bestGrad = Infinity;
  for (let i = 0; i + 1 < losses.length; i++) {
    const grad = (losses[i + 1] - losses[i]) / (Math.log(lrs[i + 1]) - Math.log(lrs[i]));
    if (grad < bestGrad) [best, bestGrad] = [i, grad];
  }
  return { lr: lrs[best], loss: losses[best] };
}

/**
 * fastai's `valley`: the longest decreasing subsequence of the losses (an O(n²) scan, as
 * fastai's), then the point a bit past half of it.
 */
function valley(lrs: readonly number[], losses: readonly number[]): LrSuggestion {
  const n = losses.length;
  const lds = new Array<number>(n).fill(1);
  let maxStart = 0, maxEnd = 0;
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i] < losses[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
      if (lds[maxEnd] < lds[i]) {
        maxEnd = i;
        maxStart = maxEnd - lds[maxEnd];
      }
    }
  }
  const sections = (maxEnd - maxStart) / 3;
  let idx = maxStart + Math.trunc(sections) + Math.trunc(sections / 2);
  // fastai's max_start is −1 when the valley starts at the first point; with two points the
  // index is then −1, which Python reads as the last element.
  if (idx < 0) idx += n;
  return { lr: lrs[idx], loss: losses[idx] };
}
