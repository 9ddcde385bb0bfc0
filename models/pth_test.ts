import { assertEquals, assertThrows } from "@std/assert";
import { zipSync } from "fflate";
import { readPth } from "./pth.ts";
import { WeightsError } from "./types.ts";
import { readSafetensors } from "./safetensors.ts";
import { resnet18Spec } from "./resnet18.ts";
import {
  noFixtures,
  PickleBuilder,
  readFixture,
  sameBytes,
  stateDictPickle,
  torchZip,
} from "./_test_util.ts";

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);
const u16 = (...v: number[]) => new Uint8Array(new Uint16Array(v).buffer);

Deno.test("readPth: offsets, strides, shared storages, int64 and 16-bit floats", () => {
  const pkl = stateDictPickle([
    ["a", (p) => p.tensor("FloatStorage", "0", 12, 2, [2, 3], [3, 1])], // storage[2..7]
    ["b", (p) => p.tensor("FloatStorage", "0", 12, 0, [3, 4], [1, 3])], // transposed view
    ["c", (p) => p.tensor("LongStorage", "1", 1, 0, [], [])],
    ["d", (p) => p.tensor("HalfStorage", "2", 3, 0, [3], [1])],
    ["e", (p) => p.tensor("BFloat16Storage", "3", 1, 0, [1], [1])],
  ]);
  const zip = torchZip("any_name", pkl, {
    "0": f32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
    "1": new Uint8Array(new BigInt64Array([7n]).buffer),
    "2": u16(0x3c00, 0xc000, 0x3800),
    "3": u16(0x3f80),
  });
  const sd = readPth(zip, "synthetic.pth");
  assertEquals([...sd.keys()], ["a", "b", "c", "d", "e"]);
  assertEquals(sd.get("a"), {
    dtype: "float32",
    shape: [2, 3],
    data: new Float32Array([2, 3, 4, 5, 6, 7]),
  });
  assertEquals(
    sd.get("b")?.data,
    new Float32Array([0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]),
  );
  assertEquals(sd.get("c"), { dtype: "int64", shape: [], data: new BigInt64Array([7n]) });
  assertEquals(sd.get("d")?.data, new Float32Array([1, -2, 0.5]));
  assertEquals(sd.get("e")?.data, new Float32Array([1]));
  // Views of one storage are independent copies.
  (sd.get("a")!.data as Float32Array)[0] = 99;
  assertEquals(sd.get("b")!.data[0], 0);
});

Deno.test("readPth: refuses a pickle that names os.system, without calling it", () => {
  // What `pickle.dumps(os.system("echo pwned"))`-style payloads look like: GLOBAL, args, REDUCE.
  const evil = new PickleBuilder().proto(2).global("os", "system").str("echo pwned").op(0x85)
    .reduce().stop();
  assertThrows(
    () => readPth(torchZip("archive", evil), "evil.pth"),
    Error,
    "evil.pth: refused pickle global os.system (not a state_dict type)",
  );
  // The same through STACK_GLOBAL (protocol 4), naming builtins.eval.
  const evil4 = new PickleBuilder().proto(4).op(0x8c, 8).ascii("builtins").op(0x8c, 4).ascii("eval")
    .op(0x93).stop();
  assertThrows(
    () => readPth(torchZip("archive", evil4), "evil4.pth"),
    Error,
    "evil4.pth: refused pickle global builtins.eval (not a state_dict type)",
  );
});

Deno.test("readPth: a zip entry declaring more bytes than its data can hold is refused before inflating", () => {
  const pkl = stateDictPickle([["w", (p) => p.tensor("FloatStorage", "0", 2, 0, [2], [1])]]);
  for (const level of [0, 6] as const) {
    const zip = torchZip("archive", pkl, { "0": f32(1, 2) }, level);
    const view = new DataView(zip.buffer);
    for (let p = 0; p + 4 <= zip.length; p++) {
      if (view.getUint32(p, true) === 0x02014b50) view.setUint32(p + 24, 0xfffffff0, true);
    }
    assertThrows(
      () => readPth(zip, "huge.pth"),
      WeightsError,
      "huge.pth: zip entry archive/data.pkl declares 4294967280 bytes from",
    );
  }
});

Deno.test("readPth: an OrderedDict built from non-pairs is a WeightsError, not a TypeError", () => {
  const p = new PickleBuilder().proto(2).global("collections", "OrderedDict").mark().mark();
  p.int(1).op(0x6c).tuple().reduce(); // OrderedDict([1]): an item that is a number
  assertThrows(
    () => readPth(torchZip("archive", p.stop()), "pairs.pth"),
    WeightsError,
    "pairs.pth: collections.OrderedDict called with an item that is not a (key, value) pair",
  );
});

Deno.test("readPth: a truncated or non-torch zip is a one-line error naming the file", () => {
  const pkl = stateDictPickle([["w", (p) => p.tensor("FloatStorage", "0", 2, 0, [2], [1])]]);
  const zip = torchZip("archive", pkl, { "0": f32(1, 2) });
  assertEquals(readPth(zip, "ok.pth").get("w")?.data, new Float32Array([1, 2]));

  const e = assertThrows(() => readPth(zip.subarray(0, zip.length >> 1), "cut.pth"), Error);
  assertEquals(
    e.message.startsWith("cut.pth: not a readable zip archive, truncated or corrupt?"),
    true,
  );
  assertEquals(e.message.includes("\n"), false);

  assertThrows(
    () => readPth(zipSync({ "readme.txt": new Uint8Array(3) }), "other.zip"),
    Error,
    "other.zip: no data.pkl in the zip archive (not a torch.save checkpoint)",
  );
  assertThrows(
    () => readPth(torchZip("archive", pkl), "nodata.pth"),
    Error,
    "nodata.pth: storage data/0 of w is missing from the archive",
  );
  const tooFar = stateDictPickle([["w", (p) => p.tensor("FloatStorage", "0", 2, 1, [2], [1])]]);
  assertThrows(
    () => readPth(torchZip("archive", tooFar, { "0": f32(1, 2) }), "far.pth"),
    Error,
    "far.pth: w (shape [2], offset 1) reaches past its storage of 2 elements",
  );
  assertThrows(
    () => readPth(torchZip("archive", pkl.subarray(0, 20)), "short.pth"),
    Error,
    "short.pth: corrupt pickle:",
  );
});

Deno.test({
  name: "readPth: the torchvision fixture equals its safetensors twin, in state_dict order",
  ignore: noFixtures !== undefined,
  fn: async () => {
    const pth = readPth(
      await readFixture("torch-resnet18/resnet18-seed0.pth"),
      "resnet18-seed0.pth",
    );
    const st = readSafetensors(
      await readFixture("torch-resnet18/resnet18-seed0.safetensors"),
      "resnet18-seed0.safetensors",
    ).tensors;
    const spec = resnet18Spec(1000);
    assertEquals([...pth.keys()], spec.map((e) => e.name));
    assertEquals([...pth.values()].map((t) => t.shape), spec.map((e) => e.shape));
    assertEquals(new Set(st.keys()), new Set(pth.keys()));
    for (const [name, t] of pth) {
      const u = st.get(name)!;
      assertEquals([u.dtype, u.shape], [t.dtype, t.shape], name);
      assertEquals(sameBytes(u.data, t.data), true, `${name}: data differs`);
    }
    assertEquals(pth.get("bn1.num_batches_tracked")?.dtype, "int64");
  },
});

Deno.test({
  name: "readPth: the Food-101 source model (100-class fc) loads",
  ignore: noFixtures !== undefined,
  fn: async () => {
    const name = "food101-64-resnet18.pth";
    const sd = readPth(await readFixture(`food101-resnet18/${name}`), name);
    assertEquals([...sd.keys()], resnet18Spec(100).map((e) => e.name));
    assertEquals(sd.get("fc.weight")?.shape, [100, 512]);
    assertEquals(sd.get("fc.bias")?.shape, [100]);
  },
});
