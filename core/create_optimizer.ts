import { AdamW } from "./adamw.ts";
import type { Optimizer, OptimizerKind } from "./optimizer.ts";
import type { ParamGroup } from "./param_groups.ts";
import { Sgd } from "./sgd.ts";

/** The run settings an optimizer is built from (fields of the run config). */
export interface OptimizerSettings {
  optimizer: OptimizerKind;
  /** SGD: L2 added to the gradient; AdamW: decoupled, `p ← p − lr·wd·p`. */
  weightDecay: number;
  /** SGD only; must stay 0 with AdamW (its momentum is β1). */
  momentum: number;
  /** SGD only. */
  nesterov: boolean;
}

/**
 * The one place that turns run settings into an optimizer over `groups`: `torch.optim.SGD` or
 * `torch.optim.AdamW` (betas (0.9, 0.999), eps 1e-8) with the run's weight decay. SGD-only
 * settings given to AdamW are refused rather than ignored.
 *
 * @example
 * ```ts ignore
 * const optimizer = createOptimizer(groups, { optimizer: "adamw", weightDecay: 1e-3,
 *   momentum: 0, nesterov: false });
 * ```
 */
export function createOptimizer(groups: ParamGroup[], settings: OptimizerSettings): Optimizer {
  const { optimizer, weightDecay, momentum, nesterov } = settings;
  if (optimizer === "sgd") return new Sgd(groups, { weightDecay, momentum, nesterov });
  if (optimizer === "adamw") {
    if (momentum !== 0 || nesterov) {
      throw new Error("--momentum and --nesterov are SGD settings; AdamW's momentum is its β1");
    }
    return new AdamW(groups, { weightDecay });
  }
  throw new Error(`unknown optimizer ${optimizer as string}: expected sgd or adamw`);
}
