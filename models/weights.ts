/**
 * Reading a weights file whatever its format.
 *
 * @module
 */
import { readPth } from "./pth.ts";
import { readSafetensors } from "./safetensors.ts";
import { type StateDict, WeightsError } from "./types.ts";

/** The weight file formats {@linkcode readWeights} understands. */
export type WeightsFormat = "pth" | "safetensors";

/**
 * Which format `bytes` are in, by their first bytes: a zip (`PK\x03\x04`) is a `torch.save`
 * checkpoint; a plausible safetensors header (length within the file, JSON object) is
 * safetensors. Names no format for anything else.
 */
export function detectWeightsFormat(bytes: Uint8Array): WeightsFormat | undefined {
  if (
    bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 && bytes[3] === 4
  ) {
    return "pth";
  }
  if (bytes.length >= 10) {
    const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
    // The header is a JSON object; a header length past the end still reads as safetensors so
    // that readSafetensors can say what is wrong with it.
    if (bytes[8] === 0x7b /* { */ || (n > BigInt(bytes.length - 8) && n < 1n << 32n)) {
      return "safetensors";
    }
  }
  return undefined;
}

/**
 * Reads a state dict from a `.pth` (torch.save zip) or `.safetensors` file, chosen by the file's
 * magic bytes, not its name.
 *
 * @throws {WeightsError} one line naming the file when it is neither, or is damaged.
 *
 * @example
 * ```ts
 * import { readWeights } from "@webtune/models";
 * const name = "resnet18-f37072fd.pth";
 * const sd = readWeights(await Deno.readFile(name), name);
 * ```
 */
export function readWeights(bytes: Uint8Array, fileName: string): StateDict {
  switch (detectWeightsFormat(bytes)) {
    case "pth":
      return readPth(bytes, fileName);
    case "safetensors":
      return readSafetensors(bytes, fileName).tensors;
  }
  if (bytes[0] === 0x80) {
    // A bare pickle: torch.save before PyTorch 1.6 (or with _use_new_zipfile_serialization=False).
    throw new WeightsError(
      `${fileName}: legacy (pre-1.6, non-zip) torch.save format is not supported; ` +
        "re-save it with torch.save(state_dict, path) from a current PyTorch",
    );
  }
  throw new WeightsError(`${fileName}: not a PyTorch .pth (zip) or .safetensors file`);
}
