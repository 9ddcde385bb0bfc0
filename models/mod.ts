/**
 * `@webtune/models`: PyTorch-exact ResNet-18/34/50 for tfjs, each with its pretrained config
 * beside its definition (timm's habit: URL, hash, mean/std, input size, test resize, classifier —
 * `pretrainedConfig(arch)`, the one home of those facts), and the readers and writers that move
 * their weights to and from PyTorch (`.pth` zip checkpoints, safetensors).
 *
 * Nothing here touches the file system or the network: functions take bytes and a file name
 * (for messages), so the package runs unchanged in a browser.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { fromSourceModel, readWeights, RESNET18_IMAGENET } from "@webtune/models";
 * const name = "resnet18-f37072fd.pth";
 * const source = readWeights(await Deno.readFile(name), name);
 * const model = fromSourceModel(source, { numClasses: 2, random: Math.random });
 * const size = RESNET18_IMAGENET.inputSize;
 * const { logits } = model.forward(tf.zeros([1, size, size, 3]), "eval");
 * ```
 *
 * @module
 */
export type { HostTensor, StateDict } from "./types.ts";
export { WeightsError } from "./types.ts";
export {
  type Arch,
  type ArchDefinition,
  ARCHITECTURES,
  ARCHS,
  type BlockKind,
  type EntryKind,
  type EntrySpec,
  type ForwardMode,
  isArch,
  PRETRAINED_CONFIGS,
  type PretrainedConfig,
  pretrainedConfig,
  ResNet,
  resnetSpec,
} from "./resnet.ts";
export { FEATURES, ResNet18, RESNET18_IMAGENET, resnet18Spec } from "./resnet18.ts";
export {
  createResNet,
  createResNet18,
  type CreateResNet18Options,
  type CreateResNetOptions,
  initialStateDict,
} from "./create.ts";
export { archMismatchError, inferArch, matchArch, resolveArch } from "./infer_arch.ts";
export { fromSourceModel, type FromSourceModelOptions } from "./from_source.ts";
export { loadStateDict, type LoadStateDictOptions, stateDictOf } from "./state_dict.ts";
export { readPth } from "./pth.ts";
export { readSafetensors, type Safetensors, writeSafetensors } from "./safetensors.ts";
export { detectWeightsFormat, readWeights, type WeightsFormat } from "./weights.ts";
export { countParameters, describeArchitecture, describeClassifier } from "./summary.ts";
export { torchvisionHashPrefix, verifyHashPrefix } from "./hash.ts";
import "./gradients.ts";
export type { Random } from "./init.ts";
export { finalFeatureSide, largestActivationBytes, testResizeFor } from "./pretrained.ts";
export { BATCH_NORM_KERNELS, batchNorm } from "./batch_norm.ts";
export {
  CONV_BIAS_ACT_KERNEL,
  CONV_PREPARE_FILTER_KERNEL,
  convBiasAct,
  foldBatchNorm,
  type FoldedConv,
  FoldedConvCache,
} from "./conv_bn.ts";
