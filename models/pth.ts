/**
 * Reads `torch.save(state_dict)` files: the zip container PyTorch has written since 1.6 and
 * torchvision's published checkpoints use.
 *
 * Layout: `<top>/data.pkl` is a pickled `OrderedDict` of tensors; each tensor's bytes live in
 * `<top>/data/<key>` (raw little-endian storage), referenced from the pickle by a persistent id
 * `('storage', torch.FloatStorage, '<key>', 'cpu', numel)`. `<top>` is whatever the writer chose
 * (the file stem, `archive`, ...), so it is taken from where `data.pkl` is found.
 *
 * @module
 */
import { unzipSync } from "fflate";
import { bf16ToFloat, halfToFloat } from "./float16.ts";
import { describe, PickleError, PickleFunction, unpickle } from "./pickle.ts";
import { formatShape, type HostTensor, numel, type StateDict, WeightsError } from "./types.ts";

/** Deflate's best case, 258 bytes from a 2-bit length/distance pair, rounded up. */
const MAX_DEFLATE_RATIO = 1032;

/** Element types of torch's legacy typed storages, as named in checkpoints. */
const STORAGES = {
  FloatStorage: { bytes: 4, float: (v: DataView, i: number) => v.getFloat32(i, true) },
  DoubleStorage: { bytes: 8, float: (v: DataView, i: number) => v.getFloat64(i, true) },
  HalfStorage: { bytes: 2, float: (v: DataView, i: number) => halfToFloat(v.getUint16(i, true)) },
  BFloat16Storage: { bytes: 2, float: (v: DataView, i: number) => bf16ToFloat(v, i) },
  LongStorage: { bytes: 8, int: (v: DataView, i: number) => v.getBigInt64(i, true) },
  IntStorage: { bytes: 4, int: (v: DataView, i: number) => BigInt(v.getInt32(i, true)) },
  ShortStorage: { bytes: 2, int: (v: DataView, i: number) => BigInt(v.getInt16(i, true)) },
  CharStorage: { bytes: 1, int: (v: DataView, i: number) => BigInt(v.getInt8(i)) },
  ByteStorage: { bytes: 1, int: (v: DataView, i: number) => BigInt(v.getUint8(i)) },
  BoolStorage: { bytes: 1, int: (v: DataView, i: number) => BigInt(v.getUint8(i)) },
} as const;
type StorageName = keyof typeof STORAGES;

/** A `torch.XStorage` class named in the pickle (a marker; never called). */
class StorageType {
  constructor(readonly name: StorageName) {}
}
/** What a persistent id resolves to: which storage file, its element type and length. */
class StorageRef {
  constructor(readonly type: StorageType, readonly key: string, readonly numel: number) {}
}
/** What `_rebuild_tensor_v2` returns: a strided view of a storage, materialised later. */
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/**
 * The allow-list: the only globals a state_dict pickle needs. Anything else is refused before
 * it is used, let alone called.
 */
function findClass(module: string, name: string): unknown {
  const full = `${module}.${name}`;
  if (full === "collections.OrderedDict") {
    return new PickleFunction(full, (args) => {
      const d = new Map<unknown, unknown>();
      if (Array.isArray(args[0])) {
        for (const item of args[0]) {
          if (!Array.isArray(item) || item.length !== 2) {
            throw new PickleError(`${full} called with an item that is not a (key, value) pair`);
          }
          d.set(item[0], item[1]);
        }
      }
      return d;
    });
  }
  if (full === "torch._utils._rebuild_tensor_v2" || full === "torch._utils._rebuild_tensor") {
    // (storage, storage_offset, size, stride, requires_grad?, backward_hooks?, metadata?)
    return new PickleFunction(full, ([storage, offset, size, stride]) => {
      const ints = (v: unknown) => Array.isArray(v) && v.every(Number.isSafeInteger);
      if (!(storage instanceof StorageRef) || !Number.isSafeInteger(offset) || !ints(size)) {
        throw new PickleError(`${full} called with unexpected arguments`);
      }
      if (!ints(stride) || (stride as number[]).length !== (size as number[]).length) {
        throw new PickleError(`${full} called with a stride that does not match the size`);
      }
      return new TensorRef(storage, offset as number, size as number[], stride as number[]);
    });
  }
  if (
    full === "torch._utils._rebuild_parameter" ||
    full === "torch._utils._rebuild_parameter_with_state"
  ) {
    // (data, requires_grad, backward_hooks[, state]): an nn.Parameter is its data here.
    return new PickleFunction(full, ([data]) => data);
  }
  if (module === "torch" && Object.hasOwn(STORAGES, name)) {
    return new StorageType(name as StorageName);
  }
  throw new PickleError(`refused pickle global ${full} (not a state_dict type)`);
}

function persistentLoad(pid: unknown): StorageRef {
  // ('storage', storage_type, key, location, numel)
  if (!Array.isArray(pid) || pid[0] !== "storage" || !(pid[1] instanceof StorageType)) {
    throw new PickleError(`unexpected persistent id (${describe(pid)}), not a torch storage`);
  }
  const [, type, key, , count] = pid;
  if (typeof key !== "string" || !Number.isSafeInteger(count) || count < 0) {
    throw new PickleError("malformed torch storage reference in the pickle");
  }
  return new StorageRef(type, key, count);
}

/**
 * Reads a `torch.save` zip checkpoint into a state dict (PyTorch layout, PyTorch's key order).
 * Float tensors of any precision become float32; integer tensors become int64. Strided and
 * offset views are gathered into contiguous arrays, so tensors sharing a storage come out as
 * independent copies.
 *
 * @param bytes the whole file
 * @param fileName used in error messages only
 * @throws {WeightsError} one line naming the file: a truncated or corrupt zip, a refused pickle global
 * (`resnet.pth: refused pickle global os.system (not a state_dict type)`), missing storage data.
 *
 * @example
 * ```ts
 * import { readPth } from "@webtune/models";
 * const sd = readPth(await Deno.readFile("resnet18-f37072fd.pth"), "resnet18-f37072fd.pth");
 * sd.get("fc.weight")?.shape; // [1000, 512]
 * ```
 */
export function readPth(bytes: Uint8Array, fileName: string): StateDict {
  const fail = (message: string): never => {
    throw new WeightsError(`${fileName}: ${message}`);
  };

  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, {
      filter: (f) => {
        const wanted = f.name.endsWith("data.pkl") || f.name.includes("/data/") ||
          f.name.endsWith("byteorder");
        // fflate allocates an entry's declared size before inflating it: refuse sizes its
        // bytes cannot hold (stored: exactly; deflate: at most about 1032:1).
        if (
          wanted && f.originalSize > (f.compression === 0 ? f.size : MAX_DEFLATE_RATIO * f.size)
        ) {
          fail(
            `zip entry ${f.name} declares ${f.originalSize} bytes from ${f.size} stored bytes ` +
              `(corrupt or hostile archive)`,
          );
        }
        return wanted;
      },
    });
  } catch (e) {
    if (e instanceof WeightsError) throw e;
    // fflate's own errors carry a numeric code; anything else is a bug, not a bad file.
    if (typeof (e as { code?: unknown }).code !== "number") throw e;
    return fail(`not a readable zip archive, truncated or corrupt? (${(e as Error).message})`);
  }
  const pkl = Object.keys(files).filter((n) => n === "data.pkl" || n.endsWith("/data.pkl"))
    .sort((a, b) => a.length - b.length)[0];
  if (pkl === undefined) fail("no data.pkl in the zip archive (not a torch.save checkpoint)");
  const top = pkl.slice(0, -"data.pkl".length);
  const byteorder = files[`${top}byteorder`];
  if (byteorder && new TextDecoder().decode(byteorder).trim() !== "little") {
    fail(
      "big-endian checkpoint (byteorder is not 'little'); re-save it on a little-endian machine",
    );
  }

  let root: unknown;
  try {
    root = unpickle(files[pkl], { findClass, persistentLoad });
  } catch (e) {
    if (!(e instanceof PickleError)) throw e;
    return fail(e.message);
  }
  const entries = stateDictEntries(root) ??
    fail(`data.pkl holds a ${describe(root)}, not a state_dict`);

  const storages = new Map<string, Float32Array | BigInt64Array>();
  const sd: StateDict = new Map();
  for (const [name, value] of entries) {
    if (typeof name !== "string") fail(`state_dict key ${String(name)} is not a string`);
    if (!(value instanceof TensorRef)) fail(`${name} is a ${describe(value)}, not a tensor`);
    const { storage } = value as TensorRef;
    const cacheKey = `${storage.type.name}/${storage.key}`;
    let data = storages.get(cacheKey);
    if (!data) {
      const raw = files[`${top}data/${storage.key}`] ??
        fail(`storage data/${storage.key} of ${name} is missing from the archive`);
      data = decodeStorage(raw, storage) ??
        fail(
          `storage data/${storage.key} of ${name} is shorter than its ${storage.numel} elements`,
        );
      storages.set(cacheKey, data);
    }
    sd.set(name as string, gather(value as TensorRef, data, name as string, fail));
  }
  return sd;
}

/**
 * The (key, value) pairs of a state_dict pickle. Training scripts often save
 * `{"state_dict": ...}` or `{"model": ...}` around it; such a wrapper is looked through.
 */
function stateDictEntries(root: unknown): [unknown, unknown][] | undefined {
  if (!(root instanceof Map)) return undefined;
  const hasTensors = [...root.values()].some((v) => v instanceof TensorRef);
  if (!hasTensors) {
    for (const key of ["state_dict", "model"]) {
      const inner = root.get(key);
      if (inner instanceof Map) return [...inner];
    }
  }
  return [...root];
}

/** Raw little-endian storage bytes → float32 or int64 elements; undefined if too short. */
function decodeStorage(raw: Uint8Array, ref: StorageRef): Float32Array | BigInt64Array | undefined {
  const type: { bytes: number; float?: Reader<number>; int?: Reader<bigint> } =
    STORAGES[ref.type.name];
  const n = ref.numel;
  if (raw.length < n * type.bytes) return undefined;
  if (ref.type.name === "FloatStorage") {
    // The common case: one copy (the DataView loop below is several times slower).
    return new Float32Array(raw.slice(0, n * 4).buffer);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (type.int) {
    const out = new BigInt64Array(n);
    for (let i = 0; i < n; i++) out[i] = type.int(view, i * type.bytes);
    return out;
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = type.float!(view, i * type.bytes);
  return out;
}
type Reader<T> = (v: DataView, byteOffset: number) => T;

/** The tensor's elements in row-major order, following its offset and strides. */
function gather(
  ref: TensorRef,
  src: Float32Array | BigInt64Array,
  name: string,
  fail: (m: string) => never,
): HostTensor {
  const { shape, stride, offset } = ref;
  const n = numel(shape);
  // A stride-0 (expanded) view can claim far more elements than its storage holds.
  if (n > 2 ** 28) fail(`${name} has ${n} elements, more than this reader accepts`);
  const dtype = src instanceof Float32Array ? "float32" : "int64";
  if (n === 0) return { dtype, shape, data: src.slice(0, 0) };
  let last = offset;
  for (let d = 0; d < shape.length; d++) {
    if (stride[d] < 0) fail(`${name} has a negative stride`);
    last += (shape[d] - 1) * stride[d];
  }
  if (offset < 0 || last >= src.length) {
    fail(
      `${name} (shape ${formatShape(shape)}, offset ${offset}) reaches past its storage of ` +
        `${src.length} elements`,
    );
  }

  let contiguous = true;
  for (let d = shape.length - 1, expect = 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expect) contiguous = false;
    expect *= shape[d];
  }
  if (contiguous) return { dtype, shape, data: src.slice(offset, offset + n) };

  // Odometer over the index space: non-contiguous views (transposes, slices) are rare in
  // state dicts, so clarity beats speed here.
  const data = src instanceof Float32Array ? new Float32Array(n) : new BigInt64Array(n);
  const index = new Array(shape.length).fill(0);
  let at = offset;
  for (let i = 0; i < n; i++) {
    (data as Float32Array)[i] = src[at] as number;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) {
        at += stride[d];
        break;
      }
      at -= (shape[d] - 1) * stride[d];
      index[d] = 0;
    }
  }
  return { dtype, shape, data };
}
