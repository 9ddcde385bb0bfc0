/**
 * Fine-tuning's starting point: a pretrained backbone with a new classification head.
 *
 * @module
 */
import { linearDefaultBias, type Random, xavierUniform } from "./init.ts";
import { FEATURES, ResNet18 } from "./resnet18.ts";
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
}

/**
 * A ResNet-18 with every tensor of `source` except `fc.*`, and a new `fc` of `numClasses`
 * outputs: weight `xavier_uniform_` (U(-a, a), a = sqrt(6 / (512 + numClasses))), bias
 * `nn.Linear`'s default U(-1/sqrt(512), 1/sqrt(512)). The source's head may have any width.
 *
 * @throws {Error} naming the key when the backbone is not a torchvision ResNet-18.
 *
 * @example
 * ```ts
 * import { fromSourceModel, readWeights } from "@webtune/models";
 * const name = "resnet18-f37072fd.pth";
 * const source = readWeights(await Deno.readFile(name), name);
 * const model = fromSourceModel(source, { numClasses: 2, random: Math.random });
 * ```
 */
export function fromSourceModel(source: StateDict, options: FromSourceModelOptions): ResNet18 {
  if ((options.headInit ?? "xavier") !== "xavier") {
    throw new Error(`fromSourceModel: unknown headInit ${options.headInit}`);
  }
  const sd: StateDict = new Map();
  for (const [name, tensor] of source) if (!name.startsWith("fc.")) sd.set(name, tensor);
  sd.set("fc.weight", xavierUniform([options.numClasses, FEATURES], options.random));
  sd.set("fc.bias", linearDefaultBias(options.numClasses, FEATURES, options.random));

  const model = new ResNet18(options.numClasses);
  try {
    loadStateDict(model, sd);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
