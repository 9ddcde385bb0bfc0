/**
 * Which torchvision ResNet a state dict belongs to, from its keys and shapes alone, so that
 * `--weights FILE` needs no `--arch`.
 *
 * @module
 */
import { type Arch, ARCHITECTURES, ARCHS, resnetSpec } from "./resnet.ts";
import { formatShape, type StateDict } from "./types.ts";

/** The convolution weights (4-D `*.weight`) of a state dict, name → shape. */
function convWeights(entries: Iterable<{ name: string; shape: number[] }>): Map<string, number[]> {
  const convs = new Map<string, number[]>();
  for (const { name, shape } of entries) {
    if (name.endsWith(".weight") && shape.length === 4) convs.set(name, shape);
  }
  return convs;
}

/**
 * The architecture whose every convolution `sd` holds, with the same shapes, and no other
 * convolution. The head (`fc`) may have any width and BatchNorm tensors are not looked at, so a
 * fine-tuned checkpoint is recognised as well as an ImageNet one; {@linkcode loadStateDict}
 * checks everything else.
 *
 * @param source names the weights in the error message (a file name).
 * @throws {Error} one line naming `source` and what it holds when it is none of {@linkcode ARCHS}.
 *
 * @example
 * ```ts
 * import { inferArch, readWeights } from "@webtune/models";
 * const name = "resnet50-0676ba61.pth";
 * inferArch(readWeights(await Deno.readFile(name), name), name); // "resnet50"
 * ```
 */
export function inferArch(sd: StateDict, source = "the weights"): Arch {
  const match = matchArch(sd);
  if (typeof match === "string") return match;
  throw new Error(`${source}: ${match.problem}`);
}

/**
 * {@linkcode inferArch} without the throw: the architecture, or why `sd` is none (for reports
 * such as `inspect`'s).
 *
 * @example
 * ```ts
 * import { matchArch } from "@webtune/models";
 * matchArch(new Map()); // { problem: "not a torchvision resnet18, ... (it has no convolution ...)" }
 * ```
 */
export function matchArch(sd: StateDict): Arch | { problem: string } {
  const found = convWeights([...sd].map(([name, t]) => ({ name, shape: t.shape })));
  for (const arch of ARCHS) {
    const want = convWeights(resnetSpec(arch, 1));
    const same = want.size === found.size &&
      [...want].every(([name, shape]) => {
        const got = found.get(name);
        return got !== undefined && formatShape(got) === formatShape(shape);
      });
    if (same) return arch;
  }
  return { problem: `not a torchvision ${ARCHS.join(", ")} state_dict (${describeConvs(found)})` };
}

/** What a state dict that is no known ResNet looks like, in a few words. */
function describeConvs(convs: Map<string, number[]>): string {
  if (!convs.has("conv1.weight")) {
    const first = [...convs.keys()][0];
    return first === undefined
      ? "it has no convolution weights"
      : `it has no conv1.weight; its first convolution is ${first}`;
  }
  const blocks = [1, 2, 3, 4].map((layer) => {
    let n = 0;
    while (convs.has(`layer${layer}.${n}.conv1.weight`)) n++;
    return n;
  });
  const kind = convs.has("layer1.0.conv3.weight") ? "Bottleneck" : "BasicBlock";
  const width = convs.get("layer1.0.conv1.weight")?.[0];
  return `found ${kind} blocks [${blocks.join(",")}], layer1 width ${width ?? "?"}; expected ` +
    ARCHS.map((a) => `${a} ${ARCHITECTURES[a].block} [${ARCHITECTURES[a].layers.join(",")}]`)
      .join(", ");
}

/**
 * The one-line error for weights of one architecture given to a model of another.
 *
 * @example
 * ```ts
 * import { archMismatchError } from "@webtune/models";
 * archMismatchError("resnet18", "resnet50", "w.pth").message;
 * // "w.pth: holds resnet50 weights, but the architecture asked for is resnet18"
 * ```
 */
export function archMismatchError(requested: Arch, found: Arch, source = "the weights"): Error {
  return new Error(
    `${source}: holds ${found} weights, but the architecture asked for is ${requested}`,
  );
}

/**
 * The architecture to build for `sd`: the inferred one, which must equal `requested` when one is
 * given (a flag or a config file). When `sd` has some architecture's keys but a tensor of the
 * wrong shape, that architecture is returned so that {@linkcode loadStateDict} names the tensor.
 *
 * @throws {Error} one line naming both architectures on a mismatch, or what `sd` holds when it
 * is no known ResNet.
 *
 * @example
 * ```ts
 * import { readWeights, resolveArch } from "@webtune/models";
 * const name = "resnet34-b627a593.pth";
 * const sd = readWeights(await Deno.readFile(name), name);
 * resolveArch(sd, undefined, name); // "resnet34"
 * resolveArch(sd, "resnet50", name); // throws "...: holds resnet34 weights, but ... is resnet50"
 * ```
 */
export function resolveArch(sd: StateDict, requested?: Arch, source = "the weights"): Arch {
  let found: Arch;
  try {
    found = inferArch(sd, source);
  } catch (e) {
    const byKeys = requested ?? archByKeys(sd);
    if (byKeys === undefined) throw e;
    return byKeys;
  }
  if (requested !== undefined && requested !== found) {
    throw archMismatchError(requested, found, source);
  }
  return found;
}

/** The architecture with exactly `sd`'s convolution names, whatever their shapes. */
function archByKeys(sd: StateDict): Arch | undefined {
  const found = convWeights([...sd].map(([name, t]) => ({ name, shape: t.shape })));
  return ARCHS.find((arch) => {
    const want = convWeights(resnetSpec(arch, 1));
    return want.size === found.size && [...want.keys()].every((name) => found.has(name));
  });
}
