/**
 * One-line facts about a state dict, for `inspect` and logs.
 *
 * @module
 */
import { matchArch } from "./infer_arch.ts";
import { numel, type StateDict } from "./types.ts";

/**
 * Which torchvision ResNet the state dict is, as a report line.
 *
 * @example
 * ```ts
 * import { describeArchitecture, readWeights } from "@webtune/models";
 * const name = "resnet50-0676ba61.pth";
 * describeArchitecture(readWeights(await Deno.readFile(name), name)); // "architecture: resnet50"
 * ```
 */
export function describeArchitecture(sd: StateDict): string {
  const match = matchArch(sd);
  return `architecture: ${typeof match === "string" ? match : `unknown, ${match.problem}`}`;
}

/**
 * The classifier head as PyTorch prints it.
 *
 * @example
 * ```ts
 * import { describeClassifier, readWeights } from "@webtune/models";
 * const name = "resnet18-f37072fd.pth";
 * describeClassifier(readWeights(await Deno.readFile(name), name));
 * // "fc: Linear(in_features=512, out_features=1000, bias=True)"
 * ```
 */
export function describeClassifier(sd: StateDict): string {
  const weight = sd.get("fc.weight");
  if (!weight || weight.shape.length !== 2) {
    throw new Error("describeClassifier: the state dict has no 2-D fc.weight");
  }
  const [out, inp] = weight.shape;
  const bias = sd.has("fc.bias") ? "True" : "False";
  return `fc: Linear(in_features=${inp}, out_features=${out}, bias=${bias})`;
}

/**
 * The number of parameters as `sum(p.numel() for p in model.parameters())` counts them: float
 * tensors other than BatchNorm running statistics (and never `num_batches_tracked`).
 * 11,689,512 / 21,797,672 / 25,557,032 for torchvision's 1000-class ResNet-18/34/50.
 *
 * @example
 * ```ts
 * import { countParameters, createResNet18, stateDictOf } from "@webtune/models";
 * const model = createResNet18({ numClasses: 1000, random: Math.random });
 * countParameters(await stateDictOf(model)); // 11689512
 * ```
 */
export function countParameters(sd: StateDict): number {
  let total = 0;
  for (const [name, t] of sd) {
    if (t.dtype !== "float32") continue;
    if (name.endsWith(".running_mean") || name.endsWith(".running_var")) continue;
    total += numel(t.shape);
  }
  return total;
}
