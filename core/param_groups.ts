import type * as tf from "@tensorflow/tfjs-core";

/** A set of parameters trained with one learning rate, like a `torch.optim` param group. */
export interface ParamGroup {
  /** Why the group exists, for logs: `backbone` or `head`. */
  name: string;
  lr: number;
  /** `[state_dict name, variable]` pairs. */
  params: [string, tf.Variable][];
}

/** How to split a model's parameters into groups. */
export interface ParamGroupOptions {
  /** Base learning rate η. */
  lr: number;
  /** The classifier trains at `lr × headLrMult` (the chapter's 10η). Default 10. */
  headLrMult?: number;
  /**
   * `true` (fine-tuning): backbone at η, head at `headLrMult`·η.
   * `false` (the chapter's scratch model, `param_group=False`): everything at η.
   */
  paramGroup?: boolean;
  /** Exercise 3: train the head only; the backbone's parameters get no gradient. */
  freezeBackbone?: boolean;
  /** The classifier's state_dict prefix. Default `fc` (torchvision). */
  classifier?: string;
}

/**
 * Builds the optimizer's parameter groups: the one place that decides which parameter learns
 * at which rate. It mirrors the chapter's
 *
 * ```python
 * params_1x = [param for name, param in net.named_parameters()
 *              if name not in ["fc.weight", "fc.bias"]]
 * trainer = torch.optim.SGD([{'params': params_1x},
 *                            {'params': net.fc.parameters(), 'lr': learning_rate * 10}],
 *                           lr=learning_rate, weight_decay=0.001)
 * ```
 *
 * @example
 * ```ts
 * import { buildParamGroups } from "@webtune/core";
 * const groups = buildParamGroups(model.parameters(), { lr: 5e-5 }); // backbone 5e-5, head 5e-4
 * ```
 */
export function buildParamGroups(
  parameters: [string, tf.Variable][],
  options: ParamGroupOptions,
): ParamGroup[] {
  const { lr, headLrMult = 10, paramGroup = true, freezeBackbone = false } = options;
  const prefix = `${options.classifier ?? "fc"}.`;
  const head = parameters.filter(([name]) => name.startsWith(prefix));
  const backbone = parameters.filter(([name]) => !name.startsWith(prefix));
  if (head.length === 0) throw new Error(`the model has no parameters named ${prefix}*`);
  const headLr = paramGroup ? lr * headLrMult : lr;
  if (freezeBackbone) return [{ name: "head", lr: headLr, params: head }];
  if (!paramGroup) return [{ name: "all", lr, params: parameters }];
  return [{ name: "backbone", lr, params: backbone }, { name: "head", lr: headLr, params: head }];
}
