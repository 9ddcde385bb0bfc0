/** Which weights a run's `model.safetensors` holds (`--save`). */
export const SAVE_POLICIES = ["last", "best"] as const;
/** One of {@linkcode SAVE_POLICIES}. */
export type SavePolicy = typeof SAVE_POLICIES[number];

/**
 * The epoch with the highest test accuracy; on a tie the later one (it has trained longer for
 * the same accuracy). Epochs whose accuracy is not a number never win. `undefined` for an
 * empty history.
 *
 * @example
 * ```ts
 * import { bestEpoch } from "@webtune/core";
 * bestEpoch([{ epoch: 1, test_acc: 0.8 }, { epoch: 2, test_acc: 0.9 }, { epoch: 3, test_acc: 0.9 }]);
 * // { epoch: 3, test_acc: 0.9 }
 * ```
 */
export function bestEpoch<T extends { epoch: number; test_acc: number }>(
  history: readonly T[],
): T | undefined {
  let best: T | undefined;
  for (const metrics of history) {
    if (Number.isNaN(metrics.test_acc)) continue;
    if (best === undefined || metrics.test_acc >= best.test_acc) best = metrics;
  }
  return best;
}

/**
 * The epoch whose weights `--save policy` keeps after `history`: the last epoch for `last`,
 * {@linkcode bestEpoch} for `best`. After each epoch, a run saving `best` writes the model when
 * this is the epoch just finished, and records the returned epoch number (say, as
 * `saved_epoch` in `metrics.json`).
 *
 * @example
 * ```ts
 * import { savedEpoch } from "@webtune/core";
 * const history = [{ epoch: 1, test_acc: 0.9 }, { epoch: 2, test_acc: 0.8 }];
 * savedEpoch(history, "best")?.epoch; // 1
 * savedEpoch(history, "last")?.epoch; // 2
 * ```
 */
export function savedEpoch<T extends { epoch: number; test_acc: number }>(
  history: readonly T[],
  policy: SavePolicy,
): T | undefined {
  return policy === "last" ? history.at(-1) : bestEpoch(history);
}
