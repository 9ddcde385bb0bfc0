/**
 * Fine-tuning's starting point: a pretrained backbone with a new classification head.
 *
 * @module
 */
import { resolveArch } from "./infer_arch.ts";
import { linearDefaultBias, type Random, xavierUniform } from "./init.ts";
import { type Arch, ARCHITECTURES, ResNet } from "./resnet.ts";
import { loadStateDict } from "./state_dict.ts";
import type { StateDict } from "./types.ts";

/** Options for {@linkcode fromSourceModel}. */
export interface FromSourceModelOptions {
  /** Width of the new head. */
  numClasses: number;
  /** Uniform [0, 1) generator for the new head's initial values. */
  random: Random;
  /** How the new head's weight is drawn; only Xavier-uniform, as in d2l's fine-tuning chapter. */
  headInit?: "xavier";
  /**
   * The architecture asked for (`--arch`); the source must be one. Default: whichever of
   * resnet18/34/50 the source's keys and shapes say it is.
   */
  arch?: Arch;
  /** Names the source (a file name) in error messages. */
  sourceName?: string;
}

/**
 * A ResNet with every tensor of `source` except `fc.*`, and a new `fc` of `numClasses` outputs:
 * weight `xavier_uniform_` (U(-a, a), a = sqrt(6 / (features + numClasses))), bias `nn.Linear`'s
 * default U(-1/sqrt(features), 1/sqrt(features)). The source's head may have any width; its
 * architecture is inferred from its keys and shapes (`model.arch` tells which).
 *
 * @throws {Error} one line when the source is no torchvision resnet18/34/50, is another
 * architecture than `options.arch`, or a tensor has the wrong shape (naming the key).
 *
 * @example
 * ```ts
 * import { fromSourceModel, readWeights } from "@webtune/models";
 * const name = "resnet50-0676ba61.pth";
 * const source = readWeights(await Deno.readFile(name), name);
 * const model = fromSourceModel(source, { numClasses: 2, random: Math.random }); // a resnet50
 * ```
 */
export function fromSourceModel(source: StateDict, options: FromSourceModelOptions): ResNet {
  if ((options.headInit ?? "xavier") !== "xavier") {
    throw new Error(`fromSourceModel: unknown headInit ${options.headInit}`);
  }
  const arch = resolveArch(source, options.arch, options.sourceName);
  const features = ARCHITECTURES[arch].features;
  const sd: StateDict = new Map();
  for (const [name, tensor] of source) if (!name.startsWith("fc.")) sd.set(name, tensor);
  sd.set("fc.weight", xavierUniform([options.numClasses, features], options.random));
  sd.set("fc.bias", linearDefaultBias(options.numClasses, features, options.random));

  const model = new ResNet(arch, options.numClasses);
  try {
    loadStateDict(model, sd, { source: options.sourceName });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
