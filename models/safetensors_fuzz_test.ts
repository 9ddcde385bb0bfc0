/**
 * Fuzzes readSafetensors with mutated and truncated files: every case must return tensors or
 * throw the reader's one-line error naming the file (see tests/fuzz.ts).
 */
import { errorWithPrefix, fuzzTest } from "../tests/fuzz.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";
import { WeightsError } from "./types.ts";

/** A header (as the Python library writes one) over raw data, for dtypes the writer lacks. */
function file(header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

fuzzTest(import.meta.url, {
  name: "safetensors",
  seeds: () => [
    writeSafetensors(
      new Map([
        ["conv.weight", {
          dtype: "float32",
          shape: [2, 3],
          data: new Float32Array([1, -2, 3.5, 0, 1e-30, 7]),
        }],
        ["bn.num_batches_tracked", { dtype: "int64", shape: [], data: new BigInt64Array([5n]) }],
        ["fc.bias", { dtype: "float32", shape: [1], data: new Float32Array([0.25]) }],
      ]),
      { format: "pt" },
    ),
    file({
      h: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
      b: { dtype: "BF16", shape: [1, 2], data_offsets: [4, 8] },
      d: { dtype: "F64", shape: [1], data_offsets: [8, 16] },
      i: { dtype: "I32", shape: [1], data_offsets: [16, 20] },
    }, new Uint8Array(20).fill(0x3c)),
  ],
  run: (bytes) => readSafetensors(bytes, "fuzz.safetensors"),
  isClean: errorWithPrefix(WeightsError, "fuzz.safetensors: "),
});
