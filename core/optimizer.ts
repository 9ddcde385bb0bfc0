/**
 * What SGD and AdamW share: param groups with their own learning rates, a schedule factor on
 * top of them, a set of frozen parameters (`--freeze-epochs`), the one hyper-parameter
 * `OneCycleLR` cycles (SGD's momentum, AdamW's β1), and a state that a checkpoint saves and a
 * resumed run loads so that it continues exactly.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { HostTensor, StateDict } from "@webtune/models";
import type { ParamGroup } from "./param_groups.ts";

/** The optimizers a run can use (`--optimizer`). */
export const OPTIMIZER_KINDS = ["sgd", "adamw"] as const;
/** One of {@linkcode OPTIMIZER_KINDS}. */
export type OptimizerKind = typeof OPTIMIZER_KINDS[number];

/**
 * A `torch.optim`-style optimizer over param groups.
 *
 * @example
 * ```ts ignore
 * const opt: Optimizer = new AdamW(buildParamGroups(model.parameters(), { lr: 1e-4 }));
 * opt.lrFactor = 0.5; // a schedule halves every group's lr
 * opt.step(grads);
 * const state = await opt.exportState(); // → optimizer.safetensors
 * ```
 */
export interface Optimizer {
  readonly kind: OptimizerKind;
  /** The groups as built; each group's `lr` is its unscheduled rate (PyTorch's `initial_lr`). */
  readonly groups: ParamGroup[];
  /**
   * Multiplies every group's `lr` at the next {@linkcode Optimizer.step}: what a schedule or the
   * lr-find sweep sets before each batch. 1 by default.
   */
  lrFactor: number;
  /** Parameters that get no gradient and no update, weight decay included (`requires_grad=False`). */
  frozen: ReadonlySet<string>;
  /** The parameters that get gradients: every group's, minus the frozen ones, in group order. */
  trainable(): [string, tf.Variable][];
  /** Applies one update from `grads` (keyed by state_dict name). Disposes nothing it is given. */
  step(grads: Map<string, tf.Tensor>): void;
  /** SGD's momentum or AdamW's β1, as `OneCycleLR(cycle_momentum=True)` sets them per batch. */
  setMomentum(momentum: number): void;
  /** The state a resumed run needs to continue exactly (host copies; safetensors-ready). */
  exportState(): Promise<StateDict>;
  /** Restores {@linkcode Optimizer.exportState}'s output; `source` names it in errors. */
  importState(state: StateDict, source?: string): void;
  /** Frees the optimizer's own tensors (never the parameters). */
  dispose(): void;
}

/**
 * The loop every optimizer runs: per group, per trainable parameter, one update at
 * `group.lr × lrFactor`. Subclasses write the per-parameter rule.
 */
export abstract class GroupedOptimizer implements Optimizer {
  abstract readonly kind: OptimizerKind;
  readonly groups: ParamGroup[];
  lrFactor = 1;
  frozen: ReadonlySet<string> = new Set();

  constructor(groups: ParamGroup[]) {
    this.groups = groups;
    const seen = new Set<string>();
    for (const [name] of groups.flatMap((g) => g.params)) {
      if (seen.has(name)) throw new Error(`parameter ${name} is in more than one param group`);
      seen.add(name);
    }
  }

  trainable(): [string, tf.Variable][] {
    return this.groups.flatMap((g) => g.params).filter(([name]) => !this.frozen.has(name));
  }

  step(grads: Map<string, tf.Tensor>): void {
    tf.tidy(() => {
      for (const group of this.groups) {
        const lr = group.lr * this.lrFactor;
        for (const [name, param] of group.params) {
          if (this.frozen.has(name)) continue;
          const grad = grads.get(name);
          if (!grad) throw new Error(`no gradient for ${name}`);
          this.update(name, param, grad, lr);
        }
      }
    });
  }

  /** One parameter's update at learning rate `lr` (already scaled), inside a `tf.tidy`. */
  protected abstract update(name: string, param: tf.Variable, grad: tf.Tensor, lr: number): void;

  abstract setMomentum(momentum: number): void;
  abstract exportState(): Promise<StateDict>;
  abstract importState(state: StateDict, source?: string): void;
  abstract dispose(): void;
}

/** A host copy of a float32 tensor, for a checkpoint. */
export async function toHost(t: tf.Tensor): Promise<HostTensor> {
  return { dtype: "float32", shape: [...t.shape], data: (await t.data()) as Float32Array };
}

/** A non-trainable variable holding a float32 checkpoint tensor. */
export function toVariable(t: HostTensor, what: string): tf.Variable {
  if (t.dtype !== "float32") throw new Error(`${what}: expected float32, found ${t.dtype}`);
  return tf.tidy(() => tf.variable(tf.tensor(t.data as Float32Array, t.shape, "float32"), false));
}

/**
 * Sets what a schedule point asks for before a batch: every group's lr factor, and SGD's
 * momentum / AdamW's β1 when the schedule cycles it.
 *
 * @example
 * ```ts ignore
 * applySchedulePoint(optimizer, scheduleAt(step, totalSteps, { kind: "onecycle" }));
 * ```
 */
export function applySchedulePoint(
  optimizer: Optimizer,
  point: { lrFactor: number; momentum?: number },
): void {
  optimizer.lrFactor = point.lrFactor;
  if (point.momentum !== undefined) optimizer.setMomentum(point.momentum);
}
