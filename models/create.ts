/**
 * A freshly initialised ResNet, as `torchvision.models.<arch>(num_classes=n)` makes one.
 *
 * @module
 */
import { drawStateDict, type Random } from "./init.ts";
import { type Arch, ARCHITECTURES, ResNet, resnetSpec } from "./resnet.ts";
import { loadStateDict } from "./state_dict.ts";
import type { StateDict } from "./types.ts";

/** Options for {@linkcode createResNet}. */
export interface CreateResNetOptions {
  /** Width of the classification head. */
  numClasses: number;
  /** Uniform [0, 1) generator that drives every random draw (seed it for reproducible runs). */
  random: Random;
}

/** Options for {@linkcode createResNet18} (the same as {@linkcode CreateResNetOptions}). */
export type CreateResNet18Options = CreateResNetOptions;

/**
 * The state dict PyTorch's initialisation gives, drawn from `random` in state_dict order:
 * convolutions `kaiming_normal_(mode="fan_out", nonlinearity="relu")` as torchvision's
 * `ResNet.__init__` does, BatchNorm weight 1 / bias 0 / running mean 0 / running var 1 (also the
 * last BN of each block: torchvision's default `zero_init_residual=False`), and `fc` with
 * `nn.Linear`'s default U(-1/sqrt(features), 1/sqrt(features)) for weight and bias.
 *
 * @example
 * ```ts
 * import { initialStateDict } from "@webtune/models";
 * initialStateDict(2, Math.random, "resnet50").get("fc.weight")?.shape; // [2, 2048]
 * ```
 */
export function initialStateDict(
  numClasses: number,
  random: Random,
  arch: Arch = "resnet18",
): StateDict {
  return drawStateDict(resnetSpec(arch, numClasses), ARCHITECTURES[arch].features, random);
}

/**
 * A new ResNet of `arch` with PyTorch's default initialisation (see
 * {@linkcode initialStateDict}).
 *
 * @example
 * ```ts
 * import { createResNet } from "@webtune/models";
 * const model = createResNet("resnet50", { numClasses: 2, random: Math.random });
 * model.parameters().length; // 161
 * ```
 */
export function createResNet(arch: Arch, options: CreateResNetOptions): ResNet {
  const model = new ResNet(arch, options.numClasses);
  loadStateDict(model, initialStateDict(options.numClasses, options.random, arch));
  return model;
}

/**
 * A new ResNet-18 (= `createResNet("resnet18", options)`).
 *
 * @example
 * ```ts
 * import { createResNet18 } from "@webtune/models";
 * const model = createResNet18({ numClasses: 2, random: Math.random });
 * model.parameters().length; // 62
 * ```
 */
export function createResNet18(options: CreateResNetOptions): ResNet {
  return createResNet("resnet18", options);
}
