/**
 * `deno task inspect --weights FILE`: what a weights file holds, without loading a model.
 *
 * ```
 * $ deno task inspect --weights resnet18-f37072fd.pth
 * file: resnet18-f37072fd.pth
 * format: pth
 * architecture: resnet18
 * tensors: 122
 * parameters: 11,689,512
 * fc: Linear(in_features=512, out_features=1000, bias=True)
 * ```
 *
 * @module
 */
import {
  countParameters,
  describeArchitecture,
  describeClassifier,
  detectWeightsFormat,
  readWeights,
} from "@webtune/models";
import { defineCommand, main } from "./shell.ts";

/** The report for one file's bytes; exported for tests. */
export function inspectWeights(bytes: Uint8Array, fileName: string): string {
  const sd = readWeights(bytes, fileName);
  const lines = [
    `file: ${fileName}`,
    `format: ${detectWeightsFormat(bytes)}`,
    describeArchitecture(sd),
    `tensors: ${sd.size}`,
    `parameters: ${countParameters(sd).toLocaleString("en-US")}`,
  ];
  lines.push(sd.has("fc.weight") ? describeClassifier(sd) : "fc: none (no fc.weight)");
  return lines.join("\n");
}

/** The `inspect` command. */
export const inspectCommand = defineCommand({
  name: "inspect",
  synopsis: "--weights FILE",
  description:
    "Prints what a PyTorch weights file (.pth from torch.save, or .safetensors) holds: its\n" +
    "format, architecture (resnet18/34/50, from its keys and shapes), number of tensors,\n" +
    "parameter count (as sum(p.numel() for p in model.parameters())), and the classifier\n" +
    "head.",
  flags: {
    weights: {
      kind: "path",
      what: "file",
      required: true,
      help: "the weights file to read (.pth or .safetensors)",
    },
  },
  async run({ values, out }) {
    const file = values.weights;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch (e) {
      throw new Error(`${file}: cannot read (${(e as Error).message})`);
    }
    out(inspectWeights(bytes, file));
  },
});

if (import.meta.main) await main(inspectCommand);
