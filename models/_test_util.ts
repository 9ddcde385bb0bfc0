/**
 * Shared by the models tests (not exported from mod.ts): fixture access and backend setup.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert } from "@std/assert";
import { zipSync } from "fflate";

/** `../shared` next to the repository, where the reference fixtures live (never copied in). */
const SHARED = new URL("../../shared/", import.meta.url);

function exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch {
    return false;
  }
}

/** Why fixture tests are skipped, or undefined when ../shared is present. */
export const noFixtures: string | undefined = exists(SHARED)
  ? undefined
  : `skipping fixture tests: ${SHARED.pathname} is absent`;
if (noFixtures) console.log(noFixtures);

/** The bytes of a fixture file under ../shared/fixtures. */
export function readFixture(relative: string): Promise<Uint8Array> {
  return Deno.readFile(new URL(`fixtures/${relative}`, SHARED));
}

/**
 * tfjs-webgpu on a device of our own, with tfjs' stock kernels: the models tests check the
 * network's semantics, so they need no part of `@webtune/core` (which sits above models; its
 * own kernels are tested there). tfjs-webgpu's own device setup trips over Deno (tfjs#8518), so
 * the device is made here, its adapter info read before `requestDevice` (deno#28135).
 */
async function registerWebgpu(): Promise<void> {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) throw new Error("no WebGPU adapter (Debian: apt-get install mesa-vulkan-drivers)");
  const { vendor, architecture, device: name, description } = adapter.info;
  const info = { vendor, architecture, device: name, description } as GPUAdapterInfo;
  const { maxStorageBufferBindingSize, maxBufferSize } = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: { maxStorageBufferBindingSize, maxBufferSize },
  });
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", () => new WebGPUBackend(device, info));
}

let ready: Promise<unknown> | undefined;
/** Makes webgpu the tfjs backend (once per test module). */
export function useWebgpu(): Promise<unknown> {
  ready ??= registerWebgpu();
  return ready.then(() => tf.setBackend("webgpu"));
}

/** Largest |a - b| and largest |b| over two equally long arrays. */
export function maxErrors(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): { abs: number; scale: number } {
  assert(a.length === b.length, `lengths differ: ${a.length} vs ${b.length}`);
  let abs = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { abs, scale };
}

/** A small seeded uniform [0,1) generator (mulberry32) so tests are reproducible. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Byte-level equality of two typed arrays. */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Writes pickle opcodes by hand, to build test pickles (torch-like and malicious) byte by byte. */
export class PickleBuilder {
  #bytes: number[] = [];

  op(...bytes: number[]): this {
    this.#bytes.push(...bytes);
    return this;
  }
  ascii(s: string): this {
    return this.op(...[...s].map((c) => c.charCodeAt(0)));
  }
  proto(version = 2): this {
    return this.op(0x80, version);
  }
  global(module: string, name: string): this {
    return this.op(0x63).ascii(`${module}\n${name}\n`);
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.op(0x58, ...u32(b.length), ...b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    return this.op(0x4a, ...u32(n >>> 0));
  }
  ints(values: number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  reduce(): this {
    return this.op(0x52);
  }
  /** `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`. */
  tensor(
    storage: string,
    key: string,
    numel: number,
    offset: number,
    size: number[],
    stride: number[],
  ): this {
    this.global("torch._utils", "_rebuild_tensor_v2").mark();
    this.mark().str("storage").global("torch", storage).str(key).str("cpu").int(numel).tuple();
    this.op(0x51); // BINPERSID
    this.int(offset).ints(size).ints(stride).op(0x89); // NEWFALSE
    this.global("collections", "OrderedDict").op(0x29).reduce();
    return this.tuple().reduce();
  }
  stop(): Uint8Array {
    return new Uint8Array([...this.#bytes, 0x2e]);
  }
}

function u32(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
}

/** A torch.save-style zip: `<top>/data.pkl`, `<top>/data/<key>`, `<top>/version`. */
export function torchZip(
  top: string,
  pkl: Uint8Array,
  storages: Record<string, Uint8Array> = {},
  level: 0 | 6 = 0,
): Uint8Array {
  const files: Record<string, Uint8Array> = {
    [`${top}/data.pkl`]: pkl,
    [`${top}/version`]: new TextEncoder().encode("3\n"),
  };
  for (const [key, bytes] of Object.entries(storages)) files[`${top}/data/${key}`] = bytes;
  return zipSync(files, { level });
}

/** An OrderedDict of the given tensors, as torch.save pickles a state_dict. */
export function stateDictPickle(entries: [string, (p: PickleBuilder) => void][]): Uint8Array {
  const p = new PickleBuilder().proto(2).global("collections", "OrderedDict").op(0x29).reduce();
  p.mark();
  for (const [name, tensor] of entries) {
    p.str(name);
    tensor(p);
  }
  return p.op(0x75).stop(); // SETITEMS
}
