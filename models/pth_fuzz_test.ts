/**
 * Fuzzes readPth with mutated and truncated torch.save zips (stored and deflated): every case must
 * return a state dict or throw the reader's one-line error naming the file (see tests/fuzz.ts).
 */
import { errorWithPrefix, fuzzTest } from "../tests/fuzz.ts";
import { readPth } from "./pth.ts";
import { WeightsError } from "./types.ts";
import { stateDictPickle, torchZip } from "./_test_util.ts";

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);

function checkpoint(level: 0 | 6): Uint8Array {
  const pkl = stateDictPickle([
    ["a", (p) => p.tensor("FloatStorage", "0", 6, 1, [2, 2], [2, 1])],
    ["b", (p) => p.tensor("FloatStorage", "0", 6, 0, [2, 3], [1, 2])],
    ["c", (p) => p.tensor("LongStorage", "1", 1, 0, [], [])],
    ["d", (p) => p.tensor("HalfStorage", "2", 2, 0, [2], [1])],
  ]);
  return torchZip("archive", pkl, {
    "0": f32(0, 1, 2, 3, 4, 5),
    "1": new Uint8Array(new BigInt64Array([7n]).buffer),
    "2": new Uint8Array(new Uint16Array([0x3c00, 0xc000]).buffer),
  }, level);
}

fuzzTest(import.meta.url, {
  name: "pth",
  seeds: () => [checkpoint(0), checkpoint(6)],
  run: (bytes) => readPth(bytes, "fuzz.pth"),
  isClean: errorWithPrefix(WeightsError, "fuzz.pth: "),
});
