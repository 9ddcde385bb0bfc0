/**
 * The ResNet-18 names webtune had before it built other ResNets: aliases of the generic ones in
 * `resnet.ts`, kept so that code written for ResNet-18 keeps working unchanged.
 *
 * @module
 */
import {
  ARCHITECTURES,
  type EntrySpec,
  PRETRAINED_CONFIGS,
  type PretrainedConfig,
  ResNet,
  resnetSpec,
} from "./resnet.ts";

export type { EntryKind, EntrySpec, ForwardMode, PretrainedConfig } from "./resnet.ts";

/** torchvision's `ResNet18_Weights.IMAGENET1K_V1` (= `PRETRAINED_CONFIGS.resnet18`). */
export const RESNET18_IMAGENET: PretrainedConfig = PRETRAINED_CONFIGS.resnet18;

/** Width of ResNet-18's pooled features (other architectures: `ARCHITECTURES[arch].features`). */
export const FEATURES: number = ARCHITECTURES.resnet18.features;

/**
 * The `state_dict` of `torchvision.models.resnet18(num_classes=numClasses)` (=
 * `resnetSpec("resnet18", numClasses)`).
 *
 * @example
 * ```ts
 * import { resnet18Spec } from "@webtune/models";
 * resnet18Spec(1000).length; // 122 (62 parameters, 40 running stats, 20 counters)
 * ```
 */
export function resnet18Spec(numClasses: number): EntrySpec[] {
  return resnetSpec("resnet18", numClasses);
}

/**
 * A {@linkcode ResNet} of any architecture (the type), and `new ResNet18(numClasses)` = `new
 * ResNet("resnet18", numClasses)` (the constructor).
 *
 * @example
 * ```ts
 * import { ResNet18 } from "@webtune/models";
 * const model: ResNet18 = new ResNet18(2); // all-zero weights
 * ```
 */
export type ResNet18 = ResNet;
/** `new ResNet18(numClasses)`: an all-zero ResNet-18 (see the type of the same name). */
export const ResNet18: new (numClasses: number) => ResNet = class extends ResNet {
  constructor(numClasses: number) {
    super("resnet18", numClasses);
  }
};
