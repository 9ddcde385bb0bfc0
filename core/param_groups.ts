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

/** What learns during an epoch of a run with `--freeze-epochs`. */
export type Trainable = "head" | "all";

/**
 * fastai's `fine_tune(epochs, freeze_epochs)` schedule of what learns: the head alone for the
 * first `freezeEpochs` epochs (1-based `epoch ≤ freezeEpochs`), then every layer with its
 * group's lr. Unlike fastai, whose `fine_tune(5, freeze_epochs=1)` trains 6 epochs, the frozen
 * epochs count in the run's `--epochs` (that fine_tune is `--epochs 6 --freeze-epochs 1`).
 *
 * @example
 * ```ts
 * import { trainableDuring } from "@webtune/core";
 * trainableDuring(1, 1); // "head"
 * trainableDuring(2, 1); // "all"
 * ```
 */
export function trainableDuring(epoch: number, freezeEpochs: number): Trainable {
  if (!Number.isInteger(freezeEpochs) || freezeEpochs < 0) {
    throw new Error(`--freeze-epochs must be a whole number ≥ 0, got ${freezeEpochs}`);
  }
  return epoch <= freezeEpochs ? "head" : "all";
}

/**
 * The parameters to hold fixed during a 1-based `epoch` (the optimizer's `frozen` set): every
 * parameter outside the classifier while {@linkcode trainableDuring} says `head`, none after.
 * Works on any grouping, including the scratch model's single group. Frozen parameters get no
 * gradient and no weight decay, as with fastai's `freeze()` (`requires_grad=False`). Unlike
 * fastai's default `train_bn=True`, BatchNorm's weight and bias freeze too (the head alone
 * learns); BatchNorm layers still update their running statistics in train mode, as fastai's do.
 *
 * @example
 * ```ts ignore
 * optimizer.frozen = frozenParameters(optimizer.groups, epoch, { freezeEpochs: 1 });
 * ```
 */
export function frozenParameters(
  groups: ParamGroup[],
  epoch: number,
  options: { freezeEpochs: number; classifier?: string },
): Set<string> {
  if (trainableDuring(epoch, options.freezeEpochs) === "all") return new Set();
  const prefix = `${options.classifier ?? "fc"}.`;
  const names = groups.flatMap((g) => g.params.map(([name]) => name));
  if (!names.some((name) => name.startsWith(prefix))) {
    throw new Error(`--freeze-epochs: the model has no parameters named ${prefix}* to train`);
  }
  return new Set(names.filter((name) => !name.startsWith(prefix)));
}

/**
 * Whether the run must announce what trains at the start of `epoch`: at the first epoch of this
 * call (`startEpoch`, which is later than 1 when resuming) while frozen, and at the switch to
 * all layers (`freezeEpochs + 1`, also when a resumed run starts there). Returns what trains
 * from then on, or `undefined` when nothing changes.
 *
 * @example
 * ```ts
 * import { freezeSwitchAt } from "@webtune/core";
 * freezeSwitchAt(1, 1, 2); // "head"
 * freezeSwitchAt(3, 1, 2); // "all"
 * freezeSwitchAt(4, 1, 2); // undefined
 * ```
 */
export function freezeSwitchAt(
  epoch: number,
  startEpoch: number,
  freezeEpochs: number,
): Trainable | undefined {
  const now = trainableDuring(epoch, freezeEpochs);
  if (epoch === startEpoch && now === "head") return "head";
  if (freezeEpochs > 0 && epoch === freezeEpochs + 1) return "all";
  return undefined;
}
