import { assertEquals, assertThrows } from "@std/assert";
import { readPth } from "./pth.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";
import type { StateDict } from "./types.ts";
import { noFixtures, readFixture, sameBytes } from "./_test_util.ts";

/** A safetensors file from a header object and raw data bytes. */
function file(header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function headerOf(bytes: Uint8Array): { text: string; json: Record<string, unknown> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  return { text, json: JSON.parse(text) };
}

const small: StateDict = new Map([
  ["layer.weight", {
    dtype: "float32",
    shape: [2, 2],
    data: new Float32Array([1, -2, 3.5, 1e-30]),
  }],
  ["bn.num_batches_tracked", { dtype: "int64", shape: [], data: new BigInt64Array([5n]) }],
  ["a.bias", { dtype: "float32", shape: [1], data: new Float32Array([0.25]) }],
]);

Deno.test("writeSafetensors lays the file out as the safetensors library does", () => {
  const bytes = writeSafetensors(small, { format: "pt", b: "x" });
  const { text } = headerOf(bytes);
  // __metadata__ first; I64 before F32; then by name; compact JSON padded with spaces to 8.
  assertEquals(
    text.trimEnd(),
    '{"__metadata__":{"b":"x","format":"pt"},' +
      '"bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},' +
      '"a.bias":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},' +
      '"layer.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[12,28]}}',
  );
  assertEquals((8 + text.length) % 8, 0);
  assertEquals(bytes.length, 8 + text.length + 28);
});

Deno.test("safetensors round trip is bit-identical", () => {
  const bytes = writeSafetensors(small, { format: "pt" });
  const { tensors, metadata } = readSafetensors(bytes, "small.safetensors");
  assertEquals(metadata, { format: "pt" });
  assertEquals(new Set(tensors.keys()), new Set(small.keys()));
  for (const [name, t] of small) assertEquals(tensors.get(name), t);
  assertEquals(sameBytes(writeSafetensors(tensors, metadata), bytes), true);
});

Deno.test("readSafetensors widens F16, BF16 and F64 to float32", () => {
  const data = new Uint8Array(6 + 4 + 8);
  const v = new DataView(data.buffer);
  v.setUint16(0, 0x3c00, true); // 1
  v.setUint16(2, 0xc000, true); // -2
  v.setUint16(4, 0x3555, true); // 0.333251953125
  v.setUint16(6, 0x3f80, true); // bf16 1
  v.setUint16(8, 0xc040, true); // bf16 -3
  v.setFloat64(10, 0.1, true);
  const { tensors } = readSafetensors(
    file({
      h: { dtype: "F16", shape: [3], data_offsets: [0, 6] },
      b: { dtype: "BF16", shape: [2], data_offsets: [6, 10] },
      d: { dtype: "F64", shape: [], data_offsets: [10, 18] },
    }, data),
    "mixed.safetensors",
  );
  assertEquals(tensors.get("h")?.data, new Float32Array([1, -2, 0.333251953125]));
  assertEquals(tensors.get("b")?.data, new Float32Array([1, -3]));
  assertEquals(tensors.get("d"), { dtype: "float32", shape: [], data: new Float32Array([0.1]) });
});

Deno.test("readSafetensors checks the header and offsets against the file size", () => {
  const bytes = writeSafetensors(small);
  const lying = bytes.slice();
  new DataView(lying.buffer).setBigUint64(0, 1000000n, true);
  assertThrows(
    () => readSafetensors(lying, "lying.safetensors"),
    Error,
    `lying.safetensors: header length 1000000 points past the end of the file (${bytes.length} bytes)`,
  );
  assertThrows(
    () => readSafetensors(bytes.subarray(0, bytes.length - 4), "cut.safetensors"),
    Error,
    "cut.safetensors: layer.weight: data [12, 28) points past the end of the file",
  );
  assertThrows(
    () =>
      readSafetensors(
        file({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)),
        "n.safetensors",
      ),
    Error,
    "n.safetensors: w: 8 bytes for F32 [3] (expected 12)",
  );
  assertThrows(
    () =>
      readSafetensors(
        file({ w: { dtype: "U8", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)),
        "u.safetensors",
      ),
    Error,
    "u.safetensors: w: unsupported dtype U8",
  );
  assertThrows(
    () => readSafetensors(new Uint8Array(4), "tiny.safetensors"),
    Error,
    "tiny.safetensors: too short",
  );
});

Deno.test("readSafetensors requires the offsets to tile the data: no overlap, gap or reversal", () => {
  const f32 = (data_offsets: number[]) => ({ dtype: "F32", shape: [1], data_offsets });
  const cases: [string, Record<string, unknown>, number, string][] = [
    [
      "overlap",
      { "conv1.weight": f32([0, 4]), "bn1.weight": f32([0, 4]), "bn1.bias": f32([4, 8]) },
      8,
      "overlap.safetensors: bn1.weight: data [0, 4) overlaps conv1.weight's [0, 4); " +
      "tensors must not share bytes",
    ],
    [
      "reversed",
      { w: { dtype: "F32", shape: [0], data_offsets: [8, 4] } },
      8,
      "reversed.safetensors: w: data_offsets [8, 4] are reversed (begin > end)",
    ],
    [
      "gap",
      { a: f32([0, 4]), b: f32([8, 12]) },
      12,
      "gap.safetensors: b: data starts at 8, leaving bytes [4, 8) unused",
    ],
    [
      "trailing",
      { a: f32([0, 4]) },
      12,
      "trailing.safetensors: 8 bytes after the last tensor's data belong to no tensor",
    ],
  ];
  for (const [name, header, dataBytes, message] of cases) {
    assertThrows(
      () => readSafetensors(file(header, new Uint8Array(dataBytes)), `${name}.safetensors`),
      Error,
      message,
    );
  }
  // Zero-sized tensors may share an offset with their neighbour.
  const ok = file(
    { e: { dtype: "F32", shape: [0], data_offsets: [4, 4] }, a: f32([0, 4]) },
    new Uint8Array(4),
  );
  assertEquals([...readSafetensors(ok, "ok.safetensors").tensors.keys()], ["a", "e"]);
});

Deno.test({
  name: "writeSafetensors of the .pth's state dict matches what PyTorch wrote",
  ignore: noFixtures !== undefined,
  fn: async () => {
    const sd = readPth(
      await readFixture("torch-resnet18/resnet18-seed0.pth"),
      "resnet18-seed0.pth",
    );
    const torchFile = await readFixture("torch-resnet18/resnet18-seed0.safetensors");
    const theirs = readSafetensors(torchFile, "resnet18-seed0.safetensors");
    const ours = writeSafetensors(sd, theirs.metadata);

    // Same dtypes, shapes and key set in the header; the order is the library's, not the fixture's.
    const a = headerOf(ours).json, b = headerOf(torchFile).json;
    assertEquals(new Set(Object.keys(a)), new Set(Object.keys(b)));
    assertEquals(a.__metadata__, b.__metadata__);
    for (const name of Object.keys(b)) {
      if (name === "__metadata__") continue;
      const x = a[name] as { dtype: string; shape: number[] }, y = b[name] as typeof x;
      assertEquals([x.dtype, x.shape], [y.dtype, y.shape], name);
    }
    // Byte-identical tensor data, and a bit-identical re-import.
    const back = readSafetensors(ours, "ours.safetensors").tensors;
    for (const [name, t] of theirs.tensors) {
      assertEquals(sameBytes(back.get(name)!.data, t.data), true, `${name}: data differs`);
    }
    assertEquals(sameBytes(writeSafetensors(back, theirs.metadata), ours), true);
  },
});
