import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "@webtune/models";
import { GroupedOptimizer, toHost, toVariable } from "./optimizer.ts";
import type { ParamGroup } from "./param_groups.ts";
import { SGD_UPDATE_KERNEL, sgdUpdateSupports } from "./kernels/mod.ts";

/** Whether the active backend has webtune's one-dispatch update for this gradient. */
function fusedUpdate(grad: tf.Tensor): boolean {
  return tf.getKernel(SGD_UPDATE_KERNEL, tf.getBackend()) !== undefined &&
    sgdUpdateSupports(grad, grad);
}

/** `torch.optim.SGD` settings shared by all groups. */
export interface SgdOptions {
  /** L2 penalty added to the gradient (`grad + weightDecay·param`), on every parameter. */
  weightDecay?: number;
  /** Momentum factor; 0 (the chapter's setting) disables it. */
  momentum?: number;
  /** Dampening for momentum (PyTorch's default 0). */
  dampening?: number;
  nesterov?: boolean;
}

/**
 * Stochastic gradient descent with exactly `torch.optim.SGD`'s update:
 *
 * ```
 * d = grad + weight_decay * p
 * if momentum: buf = d (first step) or momentum * buf + (1 - dampening) * d
 *              d = d + momentum * buf (nesterov) or buf
 * p = p - lr * d
 * ```
 *
 * tfjs's own `tf.train.sgd` has no weight decay and no per-group learning rates, hence this.
 * Its checkpoint state is the momentum buffers, keyed by parameter name (empty without momentum).
 *
 * @example
 * ```ts
 * import { buildParamGroups, Sgd } from "@webtune/core";
 * const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 5e-5 }), { weightDecay: 1e-3 });
 * sgd.step(grads); // grads: Map<state_dict name, tf.Tensor>
 * ```
 */
export class Sgd extends GroupedOptimizer {
  readonly kind = "sgd" as const;
  readonly options: Readonly<Required<SgdOptions>>;
  /** The momentum in use: `options.momentum` unless a one-cycle schedule sets it per batch. */
  momentum: number;
  /** Momentum buffers by parameter name (empty without momentum). */
  readonly momentumBuffers: Map<string, tf.Variable> = new Map();

  constructor(groups: ParamGroup[], options: SgdOptions = {}) {
    super(groups);
    this.options = {
      weightDecay: options.weightDecay ?? 0,
      momentum: options.momentum ?? 0,
      dampening: options.dampening ?? 0,
      nesterov: options.nesterov ?? false,
    };
    this.momentum = this.options.momentum;
    if (this.options.nesterov && (this.options.momentum <= 0 || this.options.dampening !== 0)) {
      throw new Error("nesterov momentum requires momentum > 0 and dampening 0");
    }
  }

  protected update(name: string, param: tf.Variable, grad: tf.Tensor, lr: number): void {
    const { weightDecay, dampening, nesterov } = this.options;
    const momentum = this.momentum;
    if (momentum === 0 && fusedUpdate(grad)) {
      // One dispatch instead of four (core/kernels/sgd_update.ts), same arithmetic.
      const updated = tf.engine().runKernel(SGD_UPDATE_KERNEL, { param, grad }, {
        lr,
        weightDecay,
      });
      param.assign(updated as tf.Tensor);
      return;
    }
    let d: tf.Tensor = weightDecay !== 0 ? tf.add(grad, tf.mul(param, weightDecay)) : grad;
    if (momentum !== 0) {
      const buf = this.momentumBuffers.get(name);
      if (!buf) {
        this.momentumBuffers.set(name, tf.variable(d, false));
      } else {
        buf.assign(tf.add(tf.mul(buf, momentum), tf.mul(d, 1 - dampening)));
      }
      const b = this.momentumBuffers.get(name)!;
      d = nesterov ? tf.add(d, tf.mul(b, momentum)) : b;
    }
    param.assign(tf.sub(param, tf.mul(d, lr)));
  }

  /** Sets the momentum (`OneCycleLR` cycles it, as PyTorch's does for SGD). */
  setMomentum(momentum: number): void {
    this.momentum = momentum;
  }

  /** The momentum buffers (tfjs layout) by parameter name; empty without momentum. */
  async exportState(): Promise<StateDict> {
    const state: StateDict = new Map();
    for (const [name, buf] of this.momentumBuffers) state.set(name, await toHost(buf));
    return state;
  }

  /** Restores buffers saved by {@linkcode Sgd.exportState} (resume). */
  importState(state: StateDict, source = "optimizer state"): void {
    const shapes = new Map(this.groups.flatMap((g) => g.params).map(([n, v]) => [n, v.shape]));
    for (const [name, t] of state) {
      const shape = shapes.get(name);
      if (!shape) throw new Error(`${source}: ${name} is not a parameter of this SGD`);
      if (shape.join(",") !== t.shape.join(",")) {
        throw new Error(`${source}: ${name} has shape [${t.shape}], the parameter [${shape}]`);
      }
    }
    for (const [name, t] of state) {
      this.momentumBuffers.get(name)?.dispose();
      this.momentumBuffers.set(name, toVariable(t, `${source}: ${name}`));
    }
  }

  /** Same as {@linkcode Sgd.exportState} (the name the CLI's checkpoint code uses). */
  momentumState(): Promise<StateDict> {
    return this.exportState();
  }

  /** Same as {@linkcode Sgd.importState} (the name the CLI's resume code uses). */
  loadMomentumState(state: StateDict): void {
    this.importState(state);
  }

  /** Frees the momentum buffers. */
  dispose(): void {
    for (const buf of this.momentumBuffers.values()) buf.dispose();
    this.momentumBuffers.clear();
  }
}
