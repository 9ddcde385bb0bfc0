/**
 * `deno task inspect --weights FILE`: what a weights file holds, without loading a model.
 *
 * ```
 * $ deno task inspect --weights resnet18-f37072fd.pth
 * file: resnet18-f37072fd.pth
 * format: pth
 * tensors: 122
 * parameters: 11,689,512
 * fc: Linear(in_features=512, out_features=1000, bias=True)
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  countParameters,
  describeClassifier,
  detectWeightsFormat,
  readWeights,
} from "@webtune/models";

const HELP = `Usage: deno task inspect --weights FILE

Prints what a PyTorch weights file (.pth from torch.save, or .safetensors) holds: its format,
number of tensors, parameter count (as sum(p.numel() for p in model.parameters())), and the
classifier head.

Options:
  --weights FILE  the weights file to read
  -h, --help      show this help`;

/** The report for one file's bytes; exported for tests. */
export function inspectWeights(bytes: Uint8Array, fileName: string): string {
  const sd = readWeights(bytes, fileName);
  const lines = [
    `file: ${fileName}`,
    `format: ${detectWeightsFormat(bytes)}`,
    `tensors: ${sd.size}`,
    `parameters: ${countParameters(sd).toLocaleString("en-US")}`,
  ];
  lines.push(sd.has("fc.weight") ? describeClassifier(sd) : "fc: none (no fc.weight)");
  return lines.join("\n");
}

async function main(args: string[]): Promise<number> {
  let values: { weights?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        weights: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`inspect: ${(e as Error).message} (see --help)`);
    return 1;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.weights) {
    console.error("inspect: --weights FILE is required (see --help)");
    return 1;
  }
  const file = values.weights;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
    console.error(`inspect: ${file}: cannot read (${why})`);
    return 1;
  }
  try {
    console.log(inspectWeights(bytes, file));
  } catch (e) {
    console.error(`inspect: ${(e as Error).message}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
