import * as tf from "@tensorflow/tfjs-core";
import type { HostTensor, StateDict } from "@webtune/models";
import { GroupedOptimizer, toHost, toVariable } from "./optimizer.ts";
import type { ParamGroup } from "./param_groups.ts";

/** `torch.optim.AdamW` settings shared by all groups (amsgrad is not supported). */
export interface AdamWOptions {
  /** `(β1, β2)`; PyTorch's default `(0.9, 0.999)`. */
  betas?: [number, number];
  /** Added to the denominator; PyTorch's default 1e-8. */
  eps?: number;
  /**
   * Decoupled weight decay: `p ← p − lr·wd·p` before the Adam step. PyTorch's default is 0.01;
   * a webtune run passes its own `weightDecay` (the chapter's 0.001).
   */
  weightDecay?: number;
}

/** Per-parameter state, as PyTorch keeps it: its own step count and two moments. */
interface AdamState {
  step: number;
  expAvg: tf.Variable;
  expAvgSq: tf.Variable;
}

/** The suffixes of an AdamW checkpoint's tensor names (`<parameter>.<suffix>`). */
const STATE_SUFFIXES = ["step", "exp_avg", "exp_avg_sq"] as const;

/**
 * Adam with decoupled weight decay, exactly `torch.optim.AdamW`'s update (`amsgrad=False`):
 *
 * ```
 * step += 1
 * p = p · (1 − lr·weight_decay)
 * m = β1·m + (1 − β1)·g;   v = β2·v + (1 − β2)·g²
 * p = p − lr / (1 − β1^step) · m / (√v / √(1 − β2^step) + eps)
 * ```
 *
 * Like PyTorch, each parameter keeps its own step count (a parameter frozen for the first epochs
 * starts its bias correction when it first learns) and the bias correction uses the β1 in force
 * at that step (`OneCycleLR` cycles it). Adam divides out the gradient's scale, so d2l's summed
 * loss (batch size × the mean loss's gradient) changes AdamW's steps only through `eps`: its lr
 * means what it means with a mean loss, unlike SGD's. Checkpoint state: `<name>.step` (int64
 * scalar), `<name>.exp_avg`, `<name>.exp_avg_sq` (float32, the parameter's tfjs layout).
 *
 * @example
 * ```ts
 * import { AdamW, buildParamGroups } from "@webtune/core";
 * const opt = new AdamW(buildParamGroups(model.parameters(), { lr: 1e-4 }), { weightDecay: 1e-3 });
 * opt.step(grads); // grads: Map<state_dict name, tf.Tensor>
 * ```
 */
export class AdamW extends GroupedOptimizer {
  readonly kind = "adamw" as const;
  readonly options: Readonly<Required<AdamWOptions>>;
  /** The β1 in use: `betas[0]` unless a one-cycle schedule sets it per batch. */
  beta1: number;
  readonly state: Map<string, AdamState> = new Map();

  constructor(groups: ParamGroup[], options: AdamWOptions = {}) {
    super(groups);
    this.options = {
      betas: options.betas ?? [0.9, 0.999],
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0.01,
    };
    const [b1, b2] = this.options.betas;
    for (const [what, b] of [["beta1", b1], ["beta2", b2]] as const) {
      if (!(b >= 0 && b < 1)) throw new Error(`AdamW: ${what} must be in [0, 1), got ${b}`);
    }
    if (!(this.options.eps >= 0)) throw new Error(`AdamW: eps must be ≥ 0, got ${options.eps}`);
    this.beta1 = b1;
  }

  protected update(name: string, param: tf.Variable, grad: tf.Tensor, lr: number): void {
    const { eps, weightDecay } = this.options;
    const beta1 = this.beta1, beta2 = this.options.betas[1];
    let s = this.state.get(name);
    if (!s) {
      s = {
        step: 0,
        expAvg: tf.variable(tf.zerosLike(param), false),
        expAvgSq: tf.variable(tf.zerosLike(param), false),
      };
      this.state.set(name, s);
    }
    s.step++;
    const decayed = weightDecay !== 0 ? tf.mul(param, 1 - lr * weightDecay) : param;
    s.expAvg.assign(tf.add(tf.mul(s.expAvg, beta1), tf.mul(grad, 1 - beta1)));
    s.expAvgSq.assign(tf.add(tf.mul(s.expAvgSq, beta2), tf.mul(tf.square(grad), 1 - beta2)));
    const stepSize = lr / (1 - beta1 ** s.step);
    const denom = tf.add(tf.div(tf.sqrt(s.expAvgSq), Math.sqrt(1 - beta2 ** s.step)), eps);
    param.assign(tf.sub(decayed, tf.mul(tf.div(s.expAvg, denom), stepSize)));
  }

  /** Sets β1 (`OneCycleLR` cycles it, as PyTorch's does for Adam-style optimizers). */
  setMomentum(momentum: number): void {
    this.beta1 = momentum;
  }

  /** Every parameter's step count and moments, for a checkpoint. */
  async exportState(): Promise<StateDict> {
    const out: StateDict = new Map();
    for (const [name, s] of this.state) {
      out.set(`${name}.step`, {
        dtype: "int64",
        shape: [],
        data: BigInt64Array.of(BigInt(s.step)),
      });
      out.set(`${name}.exp_avg`, await toHost(s.expAvg));
      out.set(`${name}.exp_avg_sq`, await toHost(s.expAvgSq));
    }
    return out;
  }

  /** Restores {@linkcode AdamW.exportState}'s output (resume); checks it all before changing anything. */
  importState(state: StateDict, source = "optimizer state"): void {
    const shapes = new Map(this.groups.flatMap((g) => g.params).map(([n, v]) => [n, v.shape]));
    const byParam = new Map<string, Map<string, HostTensor>>();
    for (const [key, t] of state) {
      const suffix = STATE_SUFFIXES.find((s) => key.endsWith(`.${s}`));
      const name = suffix ? key.slice(0, -suffix.length - 1) : undefined;
      const shape = name !== undefined ? shapes.get(name) : undefined;
      if (!suffix || !shape) {
        throw new Error(
          `${source}: ${key} is not AdamW state of a parameter (was it saved by SGD?)`,
        );
      }
      const expected = suffix === "step" ? [] : shape;
      if (t.shape.join(",") !== expected.join(",")) {
        throw new Error(`${source}: ${key} has shape [${t.shape}], expected [${expected}]`);
      }
      if (!byParam.has(name!)) byParam.set(name!, new Map());
      byParam.get(name!)!.set(suffix, t);
    }
    for (const [name, parts] of byParam) {
      const missing = STATE_SUFFIXES.filter((s) => !parts.has(s));
      if (missing.length > 0) throw new Error(`${source}: ${name} lacks ${missing.join(", ")}`);
      if (parts.get("step")!.dtype !== "int64") {
        throw new Error(`${source}: ${name}.step must be int64`);
      }
    }
    for (const [name, parts] of byParam) {
      this.disposeState(name);
      this.state.set(name, {
        step: Number((parts.get("step")!.data as BigInt64Array)[0]),
        expAvg: toVariable(parts.get("exp_avg")!, `${source}: ${name}.exp_avg`),
        expAvgSq: toVariable(parts.get("exp_avg_sq")!, `${source}: ${name}.exp_avg_sq`),
      });
    }
  }

  /** Frees the moments. */
  dispose(): void {
    for (const name of [...this.state.keys()]) this.disposeState(name);
  }

  private disposeState(name: string): void {
    const s = this.state.get(name);
    if (!s) return;
    s.expAvg.dispose();
    s.expAvgSq.dispose();
    this.state.delete(name);
  }
}
