import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "@webtune/models";
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
 *
 * @example
 * ```ts
 * import { buildParamGroups, Sgd } from "@webtune/core";
 * const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 5e-5 }), { weightDecay: 1e-3 });
 * sgd.step(grads); // grads: Map<state_dict name, tf.Tensor>
 * ```
 */
export class Sgd {
  readonly groups: ParamGroup[];
  readonly options: Required<SgdOptions>;
  /** Momentum buffers by parameter name (empty without momentum). */
  readonly momentumBuffers: Map<string, tf.Variable> = new Map();

  constructor(groups: ParamGroup[], options: SgdOptions = {}) {
    this.groups = groups;
    this.options = {
      weightDecay: options.weightDecay ?? 0,
      momentum: options.momentum ?? 0,
      dampening: options.dampening ?? 0,
      nesterov: options.nesterov ?? false,
    };
    if (this.options.nesterov && (this.options.momentum <= 0 || this.options.dampening !== 0)) {
      throw new Error("nesterov momentum requires momentum > 0 and dampening 0");
    }
  }

  /** The parameters that get gradients, in group order. */
  trainable(): [string, tf.Variable][] {
    return this.groups.flatMap((g) => g.params);
  }

  /** Applies one update from `grads` (keyed by state_dict name). Disposes nothing it is given. */
  step(grads: Map<string, tf.Tensor>): void {
    const { weightDecay, momentum, dampening, nesterov } = this.options;
    tf.tidy(() => {
      for (const group of this.groups) {
        for (const [name, param] of group.params) {
          const grad = grads.get(name);
          if (!grad) throw new Error(`no gradient for ${name}`);
          if (momentum === 0 && fusedUpdate(grad)) {
            // One dispatch instead of four (core/kernels/sgd_update.ts), same arithmetic.
            const attrs = { lr: group.lr, weightDecay };
            const updated = tf.engine().runKernel(SGD_UPDATE_KERNEL, { param, grad }, attrs);
            param.assign(updated as tf.Tensor);
            continue;
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
          param.assign(tf.sub(param, tf.mul(d, group.lr)));
        }
      }
    });
  }

  /** The momentum buffers (tfjs layout) for a checkpoint; empty without momentum. */
  async momentumState(): Promise<StateDict> {
    const state: StateDict = new Map();
    for (const [name, buf] of this.momentumBuffers) {
      state.set(name, {
        dtype: "float32",
        shape: [...buf.shape],
        data: (await buf.data()) as Float32Array,
      });
    }
    return state;
  }

  /** Restores buffers saved by {@linkcode Sgd.momentumState} (resume). */
  loadMomentumState(state: StateDict): void {
    for (const [name, t] of state) {
      this.momentumBuffers.get(name)?.dispose();
      this.momentumBuffers.set(
        name,
        tf.tidy(() => tf.variable(tf.tensor(t.data as Float32Array, t.shape, "float32"), false)),
      );
    }
  }

  /** Frees the momentum buffers. */
  dispose(): void {
    for (const buf of this.momentumBuffers.values()) buf.dispose();
    this.momentumBuffers.clear();
  }
}
