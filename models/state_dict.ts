/**
 * Moving weights between a {@linkcode ResNet} and a PyTorch-layout {@linkcode StateDict}.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { tfjsShape, toTfjsLayout, toTorchLayout } from "./layout.ts";
import { archMismatchError, inferArch } from "./infer_arch.ts";
import { type EntrySpec, type ResNet, resnetSpec } from "./resnet.ts";
import { formatShape, type HostTensor, numel, type StateDict } from "./types.ts";

/** Options for {@linkcode loadStateDict}. */
export interface LoadStateDictOptions {
  /** Skip `fc.*` on both sides: keep the model's head whatever the checkpoint's is. */
  ignoreClassifier?: boolean;
  /** Names the weights (a file name) in the error for another architecture's weights. */
  source?: string;
  /**
   * The tensors' data is already in tfjs layout (`toTfjsLayout` applied; the shapes are still
   * PyTorch's), as a Worker that drew the weights hands them over: nothing to transpose here.
   */
  dataInTfjsLayout?: boolean;
}

/**
 * Copies a PyTorch-layout state dict into the model (OIHW → HWIO, [out,in] → [in,out]).
 * Every model tensor must be present with the right shape, and nothing else may be, except that
 * `num_batches_tracked` may be absent (it reads as 0). Everything is checked before anything is
 * written, so a failed load leaves the model as it was.
 *
 * @throws {Error} one line naming the key, e.g.
 * `fc.weight: checkpoint has shape [1000,512], model expects [2,512]`, or naming both
 * architectures when the weights are another torchvision ResNet's.
 *
 * @example
 * ```ts
 * import { createResNet18, loadStateDict, readWeights } from "@webtune/models";
 * const sd = readWeights(await Deno.readFile("resnet18-f37072fd.pth"), "resnet18-f37072fd.pth");
 * const model = createResNet18({ numClasses: 2, random: Math.random });
 * loadStateDict(model, sd, { ignoreClassifier: true }); // ImageNet backbone, new 2-way head
 * ```
 */
export function loadStateDict(
  model: ResNet,
  sd: StateDict,
  options: LoadStateDictOptions = {},
): void {
  const skip = (name: string) => options.ignoreClassifier === true && name.startsWith("fc.");
  const spec = resnetSpec(model.arch, model.numClasses).filter((e) => !skip(e.name));
  const known = new Set(spec.map((e) => e.name));

  const unexpected = [...sd.keys()].filter((k) => !known.has(k) && !skip(k));
  const missing = spec.filter((e) => e.kind !== "counter" && !sd.has(e.name));
  if (unexpected.length > 0 || missing.length > 0) {
    // Another ResNet's weights: say so rather than name its first odd key.
    const other = inferArchOrUndefined(sd);
    if (other !== undefined && other !== model.arch) {
      throw archMismatchError(model.arch, other, options.source);
    }
  }
  if (unexpected.length > 0) {
    throw new Error(
      `${unexpected[0]}: unexpected key (not in torchvision's ${model.arch} state_dict)${
        more(unexpected)
      }`,
    );
  }
  if (missing.length > 0) {
    throw new Error(
      `${missing[0].name}: missing from the checkpoint (model expects ${
        formatShape(missing[0].shape)
      })${more(missing)}`,
    );
  }
  for (const entry of spec) {
    const tensor = sd.get(entry.name);
    if (tensor) checkEntry(entry, tensor);
  }

  tf.tidy(() => {
    for (const { name, shape, kind } of spec) {
      const tensor = sd.get(name);
      if (kind === "counter") {
        model.numBatchesTracked.set(name, tensor ? Number(tensor.data[0]) : 0);
        continue;
      }
      const data = options.dataInTfjsLayout
        ? tensor!.data as Float32Array
        : toTfjsLayout(tensor!.data as Float32Array, shape);
      model.variables.get(name)!.assign(tf.tensor(data, tfjsShape(shape), "float32"));
    }
  });
}

function checkEntry(entry: EntrySpec, tensor: HostTensor): void {
  const wantDtype = entry.kind === "counter" ? "int64" : "float32";
  if (tensor.dtype !== wantDtype) {
    throw new Error(
      `${entry.name}: checkpoint has dtype ${tensor.dtype}, model expects ${wantDtype}`,
    );
  }
  const sameShape = tensor.shape.length === entry.shape.length &&
    tensor.shape.every((d, i) => d === entry.shape[i]);
  if (!sameShape) {
    throw new Error(
      `${entry.name}: checkpoint has shape ${formatShape(tensor.shape)}, model expects ${
        formatShape(entry.shape)
      }`,
    );
  }
  if (tensor.data.length !== numel(tensor.shape)) {
    throw new Error(
      `${entry.name}: ${tensor.data.length} values for shape ${formatShape(tensor.shape)}`,
    );
  }
}

function inferArchOrUndefined(sd: StateDict) {
  try {
    return inferArch(sd);
  } catch {
    return undefined;
  }
}

function more(list: unknown[]): string {
  return list.length > 1 ? ` (and ${list.length - 1} more)` : "";
}

/**
 * The model's weights as a PyTorch state dict: PyTorch's names, order and layouts, with each
 * `num_batches_tracked` as an int64 scalar (shape `[]`). Async because it reads the tensors back
 * from the device.
 *
 * @example
 * ```ts
 * import { createResNet18, stateDictOf, writeSafetensors } from "@webtune/models";
 * const model = createResNet18({ numClasses: 2, random: Math.random });
 * const bytes = writeSafetensors(await stateDictOf(model), { format: "pt" });
 * ```
 */
export async function stateDictOf(model: ResNet): Promise<StateDict> {
  const sd: StateDict = new Map();
  for (const { name, shape, kind } of resnetSpec(model.arch, model.numClasses)) {
    if (kind === "counter") {
      const count = BigInt(model.numBatchesTracked.get(name) ?? 0);
      sd.set(name, { dtype: "int64", shape: [], data: BigInt64Array.of(count) });
      continue;
    }
    const variable = model.variables.get(name);
    if (!variable) throw new Error(`stateDictOf: the model has no ${name} (disposed?)`);
    const data = toTorchLayout(await variable.data() as Float32Array, shape);
    sd.set(name, { dtype: "float32", shape: [...shape], data });
  }
  return sd;
}
