/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON (`{"name": {"dtype", "shape", "data_offsets": [begin, end]},
 * "__metadata__": {string: string}}`), then the tensor bytes, little-endian, row-major, with
 * offsets relative to the end of the header.
 *
 * @module
 */
import { halfToFloat } from "./float16.ts";
import { formatShape, type HostTensor, numel, type StateDict, WeightsError } from "./types.ts";

/** A safetensors file's tensors and its free-form string metadata. */
export interface Safetensors {
  /** In the file's data order (the writer's order; PyTorch's for files PyTorch code wrote). */
  tensors: StateDict;
  metadata: Record<string, string>;
}

const ITEM_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4 };

/**
 * Parses a safetensors file. F32, F16, BF16 and F64 tensors become float32; I64 and I32 become
 * int64. The header and every tensor's byte range are checked first: in bounds, begin ≤ end, and
 * together tiling the data exactly (no overlap, no gap, no trailing bytes), as the safetensors
 * library checks.
 *
 * @throws {WeightsError} one line naming the file, e.g.
 * `w.safetensors: header length 4096 points past the end of the file (100 bytes)`.
 *
 * @example
 * ```ts
 * import { readSafetensors } from "@webtune/models";
 * const { tensors, metadata } = readSafetensors(await Deno.readFile("m.safetensors"), "m.safetensors");
 * ```
 */
export function readSafetensors(bytes: Uint8Array, fileName: string): Safetensors {
  const fail = (message: string): never => {
    throw new WeightsError(`${fileName}: ${message}`);
  };
  if (bytes.length < 8) fail(`too short for safetensors (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    fail(`header length ${headerLength} points past the end of the file (${bytes.length} bytes)`);
  }
  const dataStart = 8 + Number(headerLength);

  let header: Record<string, unknown>;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)),
    );
  } catch {
    return fail("safetensors header is not valid UTF-8 JSON");
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("safetensors header is not a JSON object");
  }

  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] =
    [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      for (const [k, v] of Object.entries((info ?? {}) as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`metadata ${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (info ?? {}) as Record<string, unknown>;
    const isInts = (v: unknown, len?: number) =>
      Array.isArray(v) && (len === undefined || v.length === len) &&
      v.every((d) => Number.isSafeInteger(d) && d >= 0);
    if (typeof dtype !== "string" || !isInts(shape) || !isInts(offsets, 2)) {
      fail(`${name}: malformed header entry`);
    }
    const [begin, end] = offsets as number[];
    if (!(dtype as string in ITEM_BYTES)) fail(`${name}: unsupported dtype ${dtype}`);
    if (begin > end) fail(`${name}: data_offsets [${begin}, ${end}] are reversed (begin > end)`);
    if (dataStart + end > bytes.length) {
      fail(
        `${name}: data [${begin}, ${end}) points past the end of the file (${bytes.length} bytes)`,
      );
    }
    const expected = numel(shape as number[]) * ITEM_BYTES[dtype as string];
    if (end - begin !== expected) {
      fail(
        `${name}: ${end - begin} bytes for ${dtype} ${
          formatShape(shape as number[])
        } (expected ${expected})`,
      );
    }
    entries.push({ name, dtype: dtype as string, shape: shape as number[], begin, end });
  }

  // As the safetensors library requires: the tensors tile the data exactly, so no two tensors
  // share bytes (one would silently read another's weights) and no bytes are unaccounted for.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.begin < covered) {
      const prev = entries[i - 1];
      fail(
        `${e.name}: data [${e.begin}, ${e.end}) overlaps ${prev.name}'s [${prev.begin}, ` +
          `${prev.end}); tensors must not share bytes`,
      );
    }
    if (e.begin > covered) {
      fail(
        `${e.name}: data starts at ${e.begin}, leaving bytes [${covered}, ${e.begin}) unused; ` +
          `tensors must tile the data with no gap`,
      );
    }
    covered = e.end;
  }
  const dataLength = bytes.length - dataStart;
  if (covered !== dataLength) {
    fail(
      `${dataLength - covered} bytes after the last tensor's data belong to no tensor ` +
        `(the header covers ${covered} of ${dataLength} data bytes)`,
    );
  }
  const tensors: StateDict = new Map();
  for (const e of entries) {
    tensors.set(
      e.name,
      decode(e.dtype, e.shape, bytes.subarray(dataStart + e.begin, dataStart + e.end)),
    );
  }
  return { tensors, metadata };
}

function decode(dtype: string, shape: number[], raw: Uint8Array): HostTensor {
  const n = numel(shape);
  const copy = raw.slice(); // aligned, and owned by the result
  const view = new DataView(copy.buffer);
  switch (dtype) {
    case "F32":
      return { dtype: "float32", shape, data: new Float32Array(copy.buffer) };
    case "I64":
      return { dtype: "int64", shape, data: new BigInt64Array(copy.buffer) };
    case "I32":
      return {
        dtype: "int64",
        shape,
        data: BigInt64Array.from(new Int32Array(copy.buffer), BigInt),
      };
    case "F64":
      return { dtype: "float32", shape, data: Float32Array.from(new Float64Array(copy.buffer)) };
  }
  const data = new Float32Array(n);
  if (dtype === "F16") {
    for (let i = 0; i < n; i++) data[i] = halfToFloat(view.getUint16(2 * i, true));
  } else { // BF16: the top 16 bits of a float32
    const words = new Uint32Array(data.buffer);
    for (let i = 0; i < n; i++) words[i] = view.getUint16(2 * i, true) << 16;
  }
  return { dtype: "float32", shape, data };
}

/**
 * Serialises a state dict as safetensors, laid out as the `safetensors` Python library
 * (`save_file`) lays it out: tensors sorted by descending dtype (I64 before F32), then by name;
 * `__metadata__` first in the header; compact JSON padded with spaces to a multiple of 8 bytes.
 * Names and layouts are written as given (PyTorch's, for a state dict from this package).
 *
 * @example
 * ```ts
 * import { createResNet18, stateDictOf, writeSafetensors } from "@webtune/models";
 * const model = createResNet18({ numClasses: 2, random: Math.random });
 * await Deno.writeFile("m.safetensors", writeSafetensors(await stateDictOf(model), { format: "pt" }));
 * ```
 */
export function writeSafetensors(sd: StateDict, metadata?: Record<string, string>): Uint8Array {
  // Rank of safetensors' Rust `Dtype` enum, whose order the writer sorts by (descending).
  const rank = (t: HostTensor) => (t.dtype === "int64" ? 1 : 0);
  const names = [...sd.keys()].sort((a, b) => {
    const byDtype = rank(sd.get(b)!) - rank(sd.get(a)!);
    return byDtype !== 0 ? byDtype : compareUtf8(a, b);
  });

  const header: Record<string, unknown> = {};
  if (metadata) {
    // Rust's HashMap has no order; sorting makes the output reproducible.
    header.__metadata__ = Object.fromEntries(
      Object.entries(metadata).sort(([a], [b]) => compareUtf8(a, b)),
    );
  }
  let offset = 0;
  for (const name of names) {
    const t = sd.get(name)!;
    if (t.data.length !== numel(t.shape)) {
      throw new Error(
        `writeSafetensors: ${name} has ${t.data.length} values for shape ${formatShape(t.shape)}`,
      );
    }
    const size = t.data.byteLength;
    header[name] = {
      dtype: t.dtype === "int64" ? "I64" : "F32",
      shape: t.shape,
      data_offsets: [offset, offset + size],
    };
    offset += size;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let at = 8 + padded;
  for (const name of names) {
    const { data } = sd.get(name)!;
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

/** Byte order of the UTF-8 encodings, as Rust compares strings. */
function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const ea = new TextEncoder().encode(a), eb = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(ea.length, eb.length); i++) {
    if (ea[i] !== eb[i]) return ea[i] - eb[i];
  }
  return ea.length - eb.length;
}
