/**
 * Per-dispatch host work of tfjs-webgpu, cached: uniform buffers by their bytes, bind groups by
 * the identity of what they bind.
 *
 * Why: on a software adapter the host work around a dispatch is CPU time taken from the same
 * cores that run the kernels (llvmpipe's threads; Deno's `queue.submit` waits for the previous
 * submit's work), so it adds to the step. tfjs 4.22 makes, for each of a ResNet-18 training
 * step's ~470 dispatches, a uniform buffer (taken from its pool, filled with `queue.writeBuffer`)
 * and a new bind group (~75 µs of CPU each in Deno). Yet a step's uniforms are the same bytes
 * every step (shapes, strides, constants), and its tensors land in the same pooled buffers, so
 * after a few steps nearly every dispatch finds both in the caches. Measured at 64 px, batch 16
 * (`cli/bench_host.ts --ab`, variants alternated in one process, medians): the main thread's CPU
 * per training step fell from 143 to 112 ms in one run and from 164 to 112 ms in another, per
 * inference step from 12 to 10 ms.
 *
 * Why it is exact:
 * - A cached uniform buffer is written once, when made, and never again: a dispatch that needs
 *   other bytes gets another buffer. So no dispatch, recorded or in flight, can see its uniforms
 *   change.
 * - A bind group binds GPU objects, not data: it is valid exactly as long as those objects live,
 *   whatever tensor their memory holds by then. It is looked up by the identity of the objects
 *   (pipeline or layout, each buffer or texture view, offset and size), so a hit binds the very
 *   objects the dispatch asked for. A destroyed object is never asked for again: tfjs destroys
 *   pooled buffers only when the backend is disposed, and webtune's operand textures forget a
 *   replaced texture's view (texture_operands.ts). Its cached groups then only wait for the next
 *   clearing.
 * - Both caches are bounded: past {@linkcode MAX_CACHED_UNIFORMS} uniform buffers or
 *   {@linkcode MAX_CACHED_BIND_GROUPS} bind groups they are emptied, right after a submit (a
 *   destroyed buffer may still be in flight, which WebGPU allows, but must not be in a command
 *   encoder that is still recording).
 *
 * {@linkcode cacheDispatches} installs this on a backend (core/backend.ts does, for every kernel
 * choice); webtune's texture-operand kernels use {@linkcode cachedBindGroup} directly.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** Uniform buffers kept before the cache is emptied (a ResNet-18 step uses a few hundred). */
export const MAX_CACHED_UNIFORMS = 4096;
/** Bind groups kept before the cache is emptied (a ResNet-18 step uses ~470). */
export const MAX_CACHED_BIND_GROUPS = 8192;

/** A uniform field as tfjs-webgpu passes it (its own fields are int32 or float32). */
type UniformField = { type: "int32" | "uint32" | "float32"; data: number[] };

/**
 * The parts of tfjs-webgpu 4.22's backend (not in its public types) that both of webtune's
 * dispatch paths drive, this module's and texture_operands.ts's: {@linkcode encodeDispatch}
 * and the ownership of the tensors a dispatch binds.
 */
export interface EncoderInternals {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  computePassEncoder: GPUComputePassEncoder | null;
  commandQueueOwnedIds: WeakSet<object>;
  dispatchCountInPass: number;
  activeTimers: { name: string; query: Promise<number> }[] | null;
  supportTimestampQuery: boolean;
  querySet: GPUQuerySet | null;
  querySetCount: number;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  getQueryTime(): Promise<number>;
}

/** The parts of tfjs-webgpu 4.22's backend this module drives (not in its public types). */
interface BackendInternals extends EncoderInternals {
  queue: GPUQueue;
  tensorMap: { get(dataId: unknown): { resource: unknown } };
  bufferManager: BufferManager;
  tensorToBinding(tensor: tf.TensorInfo): GPUBindingResource;
  makeUniforms(uniforms: UniformField[]): GPUBufferBinding;
  recordAndSubmit(
    program: TfjsProgram,
    output: tf.TensorInfo,
    inputs: tf.TensorInfo[],
    programUniforms?: UniformField[],
  ): void;
}

/** tfjs-webgpu 4.22's buffer pool (buffer_manager.js): free buffers by size and usage. */
interface BufferManager {
  freeBuffers: Map<string, GPUBuffer[]>;
  acquireBuffer(
    size: number,
    usage: number,
    mappedAtCreation?: boolean,
    reuse?: boolean,
  ): GPUBuffer;
  releaseBuffer(buffer: GPUBuffer, reuse?: boolean): void;
}

/** The fields of a tfjs-webgpu program `recordAndSubmit` reads. */
interface TfjsProgram {
  pipeline: GPUComputePipeline | Promise<GPUComputePipeline>;
  pixelsOpType?: number | null;
  size?: boolean;
  outputShape: number[];
  outputComponent?: number;
  dispatch: [number, number, number];
}

/** tfjs-webgpu's `PixelsOpType.DRAW` (webgpu_program.js): a draw program submits at once. */
const PIXELS_OP_DRAW = 1;

/** Per device: both caches and their counters. */
interface CacheState {
  uniforms: Map<string, GPUBufferBinding>;
  bindGroups: Map<string, GPUBindGroup>;
  /** The bind group layout of each tfjs pipeline (`getBindGroupLayout` makes a new object). */
  layouts: WeakMap<GPUComputePipeline, GPUBindGroupLayout>;
  /** Set when a cache outgrew its bound: emptied after the next submit. */
  overfull: boolean;
  stats: DispatchCacheStats;
}

/** How often the caches were hit and missed, for tests and `cli/bench_host.ts`. */
export interface DispatchCacheStats {
  uniformHits: number;
  uniformMisses: number;
  bindGroupHits: number;
  bindGroupMisses: number;
  /** Times both caches were emptied for outgrowing their bounds. */
  clears: number;
}

const states = new WeakMap<GPUDevice, CacheState>();

function stateOf(device: GPUDevice): CacheState {
  let s = states.get(device);
  if (!s) {
    s = {
      uniforms: new Map(),
      bindGroups: new Map(),
      layouts: new WeakMap(),
      overfull: false,
      stats: { uniformHits: 0, uniformMisses: 0, bindGroupHits: 0, bindGroupMisses: 0, clears: 0 },
    };
    states.set(device, s);
  }
  return s;
}

/** A number per GPU object, for cache keys (objects have no key of their own). */
const ids = new WeakMap<object, number>();
let nextId = 0;

function idOf(object: object): number {
  let id = ids.get(object);
  if (id === undefined) {
    id = ++nextId;
    ids.set(object, id);
  }
  return id;
}

/**
 * The bytes tfjs-webgpu 4.22's `makeUniforms` writes for `fields`: each field at WGSL's
 * alignment for its length (4, 8, then 16 bytes; 16 also after a 5- or 6-element field), the
 * block padded to its largest alignment. An empty field becomes `[1]`, as there.
 *
 * @example
 * ```ts
 * const bytes = uniformBytes([{ type: "int32", data: [3] }, { type: "int32", data: [1, 2] }]);
 * new Int32Array(bytes); // Int32Array [3, 0, 1, 2]
 * ```
 */
export function uniformBytes(fields: readonly UniformField[]): ArrayBuffer {
  let offset = 0, previousLength = 0, maxAlignment = 1;
  const offsets: number[] = [];
  for (const field of fields) {
    const length = field.data.length === 0 ? 1 : field.data.length;
    if (length > 6) throw new Error(`Unsupported ${length}D shape`);
    let alignment = length === 1 ? 4 : length === 2 ? 8 : 16;
    if (previousLength === 5 || previousLength === 6) alignment = 16;
    maxAlignment = Math.max(maxAlignment, alignment);
    offset = Math.ceil(offset / alignment) * alignment;
    previousLength = length;
    offsets.push(offset);
    offset += length * 4;
  }
  const bytes = new ArrayBuffer(Math.ceil(offset / maxAlignment) * maxAlignment);
  fields.forEach((field, i) => {
    const data = field.data.length === 0 ? [1] : field.data;
    const View = field.type === "int32"
      ? Int32Array
      : field.type === "uint32"
      ? Uint32Array
      : Float32Array;
    new View(bytes, offsets[i], data.length).set(data);
  });
  return bytes;
}

/** The bytes as a string, to key a Map by content (two bytes per UTF-16 code unit). */
function bytesKey(bytes: ArrayBuffer): string {
  return String.fromCharCode(...new Uint16Array(bytes));
}

/**
 * A uniform buffer holding `fields` as tfjs-webgpu lays them out ({@linkcode uniformBytes}):
 * the one made earlier for the same bytes, else a new one, written once (see the module docs).
 *
 * @example
 * ```ts ignore
 * const binding = cachedUniforms(device, [{ type: "int32", data: [16, 64] }]);
 * ```
 */
export function cachedUniforms(
  device: GPUDevice,
  fields: readonly UniformField[],
): GPUBufferBinding {
  const s = stateOf(device);
  const bytes = uniformBytes(fields);
  const key = bytesKey(bytes);
  let binding = s.uniforms.get(key);
  if (binding) {
    s.stats.uniformHits++;
    return binding;
  }
  s.stats.uniformMisses++;
  const buffer = device.createBuffer({
    label: "webtune uniforms",
    size: bytes.byteLength,
    usage: GPUBufferUsage.UNIFORM,
    mappedAtCreation: true,
  });
  new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(bytes));
  buffer.unmap();
  binding = { buffer, offset: 0, size: bytes.byteLength };
  s.uniforms.set(key, binding);
  if (s.uniforms.size > MAX_CACHED_UNIFORMS) s.overfull = true;
  return binding;
}

/** The cache key of one bind group entry's resource: object ids, offset and size. */
function resourceKey(resource: GPUBindingResource): string {
  const binding = resource as GPUBufferBinding;
  if (binding.buffer !== undefined) {
    return `${idOf(binding.buffer)}@${binding.offset ?? 0}+${binding.size ?? "all"}`;
  }
  return String(idOf(resource as object));
}

/**
 * A bind group of `layout` binding `resources` to bindings 0, 1, …: the one made earlier for the
 * same layout and the same objects (see the module docs), else a new one. `owner` names the
 * layout in the key: the layout itself when it is a stable object, or the pipeline whose
 * `getBindGroupLayout(0)` it is (that returns a new object on every call).
 *
 * @example
 * ```ts ignore
 * const group = cachedBindGroup(device, layout, layout, [{ buffer: out }, view, uniforms]);
 * ```
 */
export function cachedBindGroup(
  device: GPUDevice,
  layout: GPUBindGroupLayout,
  owner: object,
  resources: readonly GPUBindingResource[],
): GPUBindGroup {
  if (!caching) {
    return device.createBindGroup({
      layout,
      entries: resources.map((resource, binding) => ({ binding, resource })),
    });
  }
  const s = stateOf(device);
  let key = String(idOf(owner));
  for (const resource of resources) key += "|" + resourceKey(resource);
  let group = s.bindGroups.get(key);
  if (group) {
    s.stats.bindGroupHits++;
    return group;
  }
  s.stats.bindGroupMisses++;
  group = device.createBindGroup({
    layout,
    entries: resources.map((resource, binding) => ({ binding, resource })),
  });
  s.bindGroups.set(key, group);
  if (s.bindGroups.size > MAX_CACHED_BIND_GROUPS) s.overfull = true;
  return group;
}

/** Empties both caches if one outgrew its bound; call only when no encoder is recording. */
function clearIfOverfull(device: GPUDevice): void {
  const s = stateOf(device);
  if (!s.overfull) return;
  for (const { buffer } of s.uniforms.values()) buffer.destroy();
  s.uniforms.clear();
  s.bindGroups.clear();
  s.overfull = false;
  s.stats.clears++;
}

/**
 * The hit and miss counts of `backend`'s caches so far.
 *
 * @example
 * ```ts ignore
 * const { bindGroupHits, bindGroupMisses } = dispatchCacheStats(tf.backend() as WebGPUBackend);
 * ```
 */
export function dispatchCacheStats(backend: WebGPUBackend): DispatchCacheStats {
  return { ...stateOf((backend as unknown as BackendInternals).device).stats };
}

const installed = new WeakSet<object>();

/**
 * Makes `backend` take its uniform buffers from {@linkcode cachedUniforms} and its bind groups
 * from {@linkcode cachedBindGroup} (replacing its `makeUniforms` and `recordAndSubmit`, which
 * otherwise do what tfjs-webgpu 4.22's do), and empty the caches after a submit when they
 * outgrew their bounds. Idempotent.
 *
 * @example
 * ```ts ignore
 * import { cacheDispatches } from "./dispatch_cache.ts";
 * cacheDispatches(tf.backend() as WebGPUBackend);
 * ```
 */
export function cacheDispatches(backend: WebGPUBackend): void {
  if (installed.has(backend)) return;
  installed.add(backend);
  const be = backend as unknown as BackendInternals;
  reuseBuffersInOrder(be.bufferManager);
  const { submitQueue, makeUniforms, recordAndSubmit: record } = be;
  be.makeUniforms = function (this: BackendInternals, fields) {
    return caching ? cachedUniforms(this.device, fields) : makeUniforms.call(this, fields);
  };
  be.submitQueue = function (this: BackendInternals) {
    submitQueue.call(this);
    clearIfOverfull(this.device);
  };
  be.recordAndSubmit = function (this: BackendInternals, program, output, inputs, defined) {
    if (caching) recordAndSubmit(this, program, output, inputs, defined);
    else record.call(this, program, output, inputs, defined);
  };
}

let caching = true;

/**
 * Turns the caches off (tfjs-webgpu's own per-dispatch uniform buffers and bind groups, its
 * buffer reuse order) or on again, on every backend {@linkcode cacheDispatches} was called on:
 * for measuring their effect in one process (`cli/bench_host.ts`) and for tests.
 *
 * @example
 * ```ts
 * import { setDispatchCaching } from "./dispatch_cache.ts";
 * setDispatchCaching(false);
 * try {
 *   // … time a step as tfjs alone runs it …
 * } finally {
 *   setDispatchCaching(true);
 * }
 * ```
 */
export function setDispatchCaching(enabled: boolean): void {
  caching = enabled;
}

/**
 * Keeps each of `pool`'s free lists sorted so that `acquireBuffer` (which pops the last one)
 * takes the free buffer that was handed out first, instead of the one released last.
 *
 * Why: the bind group cache hits only when a dispatch binds the same buffers as in an earlier
 * step. tfjs's last-released-first order permutes a step's buffers from one step to the next
 * (the order of releases depends on what was in use when): without this, 90% of a ResNet-18
 * step's dispatches bound another output buffer than the step before, and a step still missed
 * ~200 bind groups after 15 steps. In a fixed order the buffers a step takes depend only on which
 * are free, which settles: ~10 misses per step after 15 steps (cli/bench_host.ts). It changes
 * which free buffer of the asked size and usage is taken, never how many exist.
 */
function reuseBuffersInOrder(pool: BufferManager): void {
  const { acquireBuffer, releaseBuffer } = pool;
  pool.acquireBuffer = function (this: BufferManager, ...args) {
    const buffer = acquireBuffer.apply(this, args);
    idOf(buffer); // numbers buffers in the order they are first handed out
    return buffer;
  };
  pool.releaseBuffer = function (this: BufferManager, buffer, reuse = true) {
    releaseBuffer.call(this, buffer, reuse);
    if (!reuse || !caching) return;
    const free = this.freeBuffers.get(`${buffer.size}_${buffer.usage}`);
    if (!free || free[free.length - 1] !== buffer) return;
    // Sorted by descending id, so that pop() returns the lowest: insert the released one.
    const id = idOf(buffer);
    let i = free.length - 1;
    while (i > 0 && idOf(free[i - 1]) < id) {
      free[i] = free[i - 1];
      i--;
    }
    free[i] = buffer;
  };
}

/** tfjs-webgpu 4.22's `recordAndSubmit` (backend_webgpu.js), with the bind group cached. */
function recordAndSubmit(
  be: BackendInternals,
  program: TfjsProgram,
  output: tf.TensorInfo,
  inputs: tf.TensorInfo[],
  programDefinedUniforms?: UniformField[],
): void {
  const pipeline = program.pipeline;
  if (pipeline instanceof Promise) {
    throw new Error(
      "Please call checkCompileCompletionAsync to ensure parallel compilation is done!",
    );
  }
  // Six kinds of uniforms: NaN, Infinity, shapes, shape strides, program size, the program's own.
  let fields: UniformField[] = [];
  if (program.pixelsOpType == null) {
    fields.push({ type: "float32", data: [NaN] }, { type: "float32", data: [Infinity] });
    for (const shape of [...inputs, output].map((t) => t.shape)) {
      fields.push({ type: "int32", data: shape });
      fields.push({ type: "int32", data: tf.util.computeStrides(shape) });
    }
  } else {
    fields.push({ type: "int32", data: tf.util.computeStrides(output.shape) });
  }
  if (program.size) {
    const size = tf.util.sizeFromShape(program.outputShape);
    fields.push({
      type: "int32",
      data: [program.outputComponent ? size / program.outputComponent : size],
    });
  }
  if (programDefinedUniforms) fields = [...fields, ...programDefinedUniforms];
  const resources = [
    be.tensorToBinding(output),
    ...inputs.map((t) => be.tensorToBinding(t)),
    be.makeUniforms(fields),
  ];
  for (const input of inputs) be.commandQueueOwnedIds.add(input.dataId);
  be.commandQueueOwnedIds.add(output.dataId);
  const layouts = stateOf(be.device).layouts;
  let layout = layouts.get(pipeline);
  if (!layout) {
    layout = pipeline.getBindGroupLayout(0);
    layouts.set(pipeline, layout);
  }
  const bindGroup = cachedBindGroup(be.device, layout, pipeline, resources);
  encodeDispatch(be, pipeline, bindGroup, program);
}

/**
 * Encodes one dispatch of `pipeline` with `bindGroup` as tfjs-webgpu 4.22's `recordAndSubmit`
 * does: into the open compute pass (a pass of its own, with timestamps, while a timer is on),
 * then submits when the pass holds `WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE` dispatches, when timed
 * (the timer's name is the program's class) or for a draw program. Shared with
 * texture_operands.ts, which binds its own bind groups.
 */
export function encodeDispatch(
  be: EncoderInternals,
  pipeline: GPUComputePipeline,
  bindGroup: GPUBindGroup,
  program: { dispatch: [number, number, number]; pixelsOpType?: number | null },
): void {
  const timed = be.activeTimers != null;
  be.ensureCommandEncoderReady();
  if (timed && be.supportTimestampQuery) {
    be.endComputePassEncoder();
    if (be.querySet == null) {
      be.querySet = be.device.createQuerySet({ type: "timestamp", count: be.querySetCount });
    }
    be.computePassEncoder = be.commandEncoder!.beginComputePass({
      timestampWrites: {
        querySet: be.querySet,
        beginningOfPassWriteIndex: 0,
        endOfPassWriteIndex: 1,
      },
    });
  } else if (!be.computePassEncoder) {
    be.computePassEncoder = be.commandEncoder!.beginComputePass({});
  }
  be.computePassEncoder.setPipeline(pipeline);
  be.computePassEncoder.setBindGroup(0, bindGroup);
  be.computePassEncoder.dispatchWorkgroups(...program.dispatch);
  be.dispatchCountInPass++;
  if (
    timed ||
    tf.env().get("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE") as number <= be.dispatchCountInPass ||
    program.pixelsOpType === PIXELS_OP_DRAW
  ) {
    be.endComputePassEncoder();
    if (timed) {
      be.activeTimers!.push({ name: program.constructor.name, query: be.getQueryTime() });
    } else {
      be.submitQueue();
    }
  }
}
