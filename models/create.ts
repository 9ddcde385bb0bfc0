/**
 * A freshly initialised ResNet-18, as `torchvision.models.resnet18(num_classes=n)` makes one.
 *
 * @module
 */
import {
  constant,
  kaimingNormalFanOut,
  linearDefaultBias,
  linearDefaultWeight,
  type Random,
} from "./init.ts";
import { FEATURES, ResNet18, resnet18Spec } from "./resnet18.ts";
import { loadStateDict } from "./state_dict.ts";
import type { StateDict } from "./types.ts";

/** Options for {@linkcode createResNet18}. */
export interface CreateResNet18Options {
  /** Width of the classification head. */
  numClasses: number;
  /** Uniform [0, 1) generator that drives every random draw (seed it for reproducible runs). */
  random: Random;
}

/**
 * The state dict PyTorch's initialisation gives, drawn from `random` in state_dict order:
 * convolutions `kaiming_normal_(mode="fan_out", nonlinearity="relu")` as torchvision's
 * `ResNet.__init__` does, BatchNorm weight 1 / bias 0 / running mean 0 / running var 1, and `fc`
 * with `nn.Linear`'s default U(-1/sqrt(512), 1/sqrt(512)) for weight and bias.
 */
export function initialStateDict(numClasses: number, random: Random): StateDict {
  const sd: StateDict = new Map();
  for (const { name, shape, kind } of resnet18Spec(numClasses)) {
    if (kind === "counter") {
      sd.set(name, { dtype: "int64", shape: [], data: new BigInt64Array(1) });
    } else if (name === "fc.weight") {
      sd.set(name, linearDefaultWeight(shape, random));
    } else if (name === "fc.bias") {
      sd.set(name, linearDefaultBias(shape[0], FEATURES, random));
    } else if (shape.length === 4) {
      sd.set(name, kaimingNormalFanOut(shape, random));
    } else {
      const one = name.endsWith(".weight") || name.endsWith(".running_var");
      sd.set(name, constant(shape, one ? 1 : 0));
    }
  }
  return sd;
}

/**
 * A new ResNet-18 with PyTorch's default initialisation (see {@linkcode initialStateDict}).
 *
 * @example
 * ```ts
 * import { createResNet18 } from "@webtune/models";
 * const model = createResNet18({ numClasses: 2, random: Math.random });
 * model.parameters().length; // 62
 * ```
 */
export function createResNet18(options: CreateResNet18Options): ResNet18 {
  const model = new ResNet18(options.numClasses);
  loadStateDict(model, initialStateDict(options.numClasses, options.random));
  return model;
}
