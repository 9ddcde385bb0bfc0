/**
 * Fuzzes the restricted unpickler with mutated and truncated pickles: every case must build a
 * value or throw a PickleError (see tests/fuzz.ts). The hooks accept every global and persistent
 * id, so mutations reach every opcode the VM knows rather than stopping at a refused name (the
 * allow-list itself is fuzzed through readPth in pth_fuzz_test.ts).
 */
import { unzipSync } from "fflate";
import { errorWithPrefix, fuzzTest } from "../tests/fuzz.ts";
import { PickleError, PickleFunction, unpickle } from "./pickle.ts";
import { noFixtures, PickleBuilder, readFixture, stateDictPickle } from "./_test_util.ts";

// Every call returns a dict, so that OrderedDict() can take SETITEMS as in a real state_dict.
const permissive = {
  findClass: (module: string, name: string) =>
    new PickleFunction(`${module}.${name}`, (args) => new Map([["args", args]])),
  persistentLoad: (pid: unknown) => ({ pid }),
};

fuzzTest(import.meta.url, {
  name: "pickle",
  async seeds() {
    const seeds = [
      stateDictPickle([
        ["a", (p) => p.tensor("FloatStorage", "0", 12, 2, [2, 3], [3, 1])],
        ["c", (p) => p.tensor("LongStorage", "1", 1, 0, [], [])],
      ]),
      // Protocol 4: FRAME, MEMOIZE, SHORT_BINUNICODE, BINGET, EMPTY_DICT, SETITEMS.
      new PickleBuilder().proto(4).op(0x95, 20, 0, 0, 0, 0, 0, 0, 0).op(0x7d, 0x94).op(0x28)
        .op(0x8c, 1).ascii("k").op(0x94).op(0x4b, 7).op(0x68, 1).op(0x4b, 8).op(0x75).stop(),
    ];
    // torch.save's own pickle of a ResNet-18 state_dict, when ../shared is present.
    if (!noFixtures) {
      const pth = await readFixture("torch-resnet18/resnet18-seed0.pth");
      const files = unzipSync(pth, { filter: (f) => f.name.endsWith("data.pkl") });
      seeds.push(...Object.values(files));
    }
    return seeds;
  },
  run: (bytes) => unpickle(bytes, permissive),
  isClean: errorWithPrefix(PickleError, "corrupt pickle: "),
});
