/**
 * Runs a webtune program with its inputs read from `rgba32float` textures instead of storage
 * buffers.
 *
 * Why: on Mesa's llvmpipe (Mesa 22.3, gallivm `lp_bld_nir_soa.c`) a storage-buffer load inside
 * any loop or `if` becomes, per component, a loop over the 8 SIMD lanes with a bounds-check
 * branch and a scalar load each, so a vec4 load is ~32 branchy scalar loads. A `textureLoad` of
 * an `rgba32float` texel goes through the texel-fetch path instead: a branch-free gather with a
 * select for out-of-bounds lanes. Measured with a raw-WebGPU GEMM microbenchmark (same WGSL
 * math, only the loads differ; M 4096 × K 576 × N 64, register tile 32 × 2 vec4): storage
 * buffers 0.61 GFLOP/s, both operands in textures 4.2 GFLOP/s (6.8×), only the per-position
 * operand in a texture 3.3×, only the filter 1.4×. Folding the tensor into a fixed-width 2-D
 * texture (below) cost nothing measurable.
 *
 * Each input tensor's buffer is copied into a texture (`copyBufferToTexture`, a memcpy next to a
 * conv) on the backend's own command encoder, in stream order with the dispatch, so tfjs's
 * batching and buffer-lifetime rules hold: inputs and output are marked command-queue-owned
 * exactly as `runWebGPUProgram` does. Textures are pooled per (program, input) and only grow, to
 * power-of-two heights; a replaced one is destroyed after the encoder that used it was submitted.
 * Reusing one texture for successive dispatches in one encoder is safe: WebGPU orders the copy
 * after the earlier dispatch that read it.
 *
 * Uniforms are read through a private copy that lavapipe cannot inline (see
 * {@linkcode opaqueUniforms}): inlined, the dX program was compiled again at every dispatch.
 *
 * Two kinds of texture binding ({@linkcode TextureKind}). `sampled` (`texture_2d<f32>`) works
 * everywhere. `storage` (`texture_storage_2d<rgba32float, read>`, WGSL's
 * `readonly_and_readwrite_storage_textures`) is faster on llvmpipe: there a sampled `textureLoad`
 * of a non-rgba8 format is an indirect call to a generic texel-fetch function (~150
 * instructions: per-lane mip level and size lookups, then the gather), and the call clobbers
 * every ymm register, so a register tile's accumulators are spilled around each load; a
 * storage-texture load is inlined (~40 instructions, no call). Seen in the JIT code (gdb dump of
 * the forward conv's inner loop, tm 32 × tc 2): 40 `call`s per step sampled, none as storage;
 * the same kernel ran 1.2–1.5× faster, dW 1.9× (cli/sweep_tiles.ts, one process).
 *
 * The program's WGSL reads input `name` with `ld_name(vec4Index)` (see {@linkcode operandRead});
 * tfjs's prelude is replaced by {@linkcode texturePrelude}, which declares the same `result`,
 * `uniforms` (only the program's own fields), `localId`, `globalId`, `workgroupId` and
 * `numWorkgroups`, then calls the program's `main()`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import type { Uniforms, WebtuneProgram } from "./kernel_util.ts";
import { cachedBindGroup, encodeDispatch, type EncoderInternals } from "./dispatch_cache.ts";

/** Texels per texture row: 64 KiB rows, a multiple of the 256-byte `bytesPerRow` alignment. */
export const TEXTURE_WIDTH = 4096;
const WIDTH_SHIFT = 12;

/**
 * How a program's inputs are bound: `sampled` textures (`texture_2d<f32>`, every adapter) or
 * read-only `storage` textures (faster on llvmpipe; see the module docs), where WGSL allows them
 * (see {@linkcode storageTexturesReadable}).
 */
export type TextureKind = "sampled" | "storage";

/**
 * How {@linkcode runWithTextureOperands} binds a program's inputs: textures of a
 * {@linkcode TextureKind}, or (`buffer`) the tensors' own storage buffers, read through the same
 * `ld_name` helpers and the same opaque uniforms. `buffer` is for small programs that want this
 * runner's pipeline key (the program's `shaderKey` only; tfjs adds its inputs' ranks and
 * broadcast pattern) and its uniforms that lavapipe cannot inline, without the texture copies.
 */
export type OperandKind = TextureKind | "buffer";

/**
 * Whether this WebGPU implementation accepts read-only storage textures in WGSL (the
 * `readonly_and_readwrite_storage_textures` language feature: Deno 2.9, Chrome ≥ 124).
 *
 * @example
 * ```ts
 * const kind = storageTexturesReadable() ? "storage" : "sampled";
 * ```
 */
export function storageTexturesReadable(): boolean {
  const gpu = (globalThis.navigator as { gpu?: { wgslLanguageFeatures?: ReadonlySet<string> } })
    ?.gpu;
  return gpu?.wgslLanguageFeatures?.has("readonly_and_readwrite_storage_textures") ?? false;
}

/**
 * The kind a kernel asked for `textures` gets: `true` means the fastest this WebGPU allows
 * (`storage` where {@linkcode storageTexturesReadable}, else `sampled`).
 *
 * @example
 * ```ts
 * textureKindFor("sampled"); // "sampled"
 * ```
 */
export function textureKindFor(textures: true | TextureKind): TextureKind {
  if (textures !== true) return textures;
  return storageTexturesReadable() ? "storage" : "sampled";
}

/**
 * Below this many floats, a memory-bound kernel (one that reads each input element once or a few
 * times) reads its inputs from storage buffers: the texture copies cost more than the branchy
 * loads. Measured on llvmpipe with the SGD update: a [512] vector 0.7× as fast with textures, a
 * 3×3×64×64 weight (36,864 floats) 2.3× faster.
 */
export const MIN_TEXTURE_FLOATS = 4096;

/** How a program's WGSL reads input vec4 number `index` of `name`. */
export type OperandRead = (name: string, index: string) => string;

/**
 * The WGSL expression reading vec4 `index` of input `name`: an array index for storage buffers,
 * the `ld_name` helper of {@linkcode texturePrelude} for textures.
 *
 * @example
 * ```ts
 * operandRead(false)("x", "i + 1"); // "x[i + 1]"
 * operandRead(true)("x", "i + 1"); // "ld_x(i + 1)"
 * ```
 */
export function operandRead(textures: boolean): OperandRead {
  return textures ? (name, index) => `ld_${name}(${index})` : (name, index) => `${name}[${index}]`;
}

/**
 * The WGSL declarations a texture-operand program needs before its own code: bindings (result
 * 0, inputs 1…n as textures of `kind`, uniforms n+1), the builtins as private variables, and
 * `ld_name`.
 */
export function texturePrelude(program: WebtuneProgram, kind: OperandKind = "sampled"): string {
  const n = program.variableNames.length;
  const storage = kind === "storage";
  const type = storage ? "texture_storage_2d<rgba32float, read>" : "texture_2d<f32>";
  const level = storage ? "" : ", 0";
  const element = (components: number) => components === 4 ? "vec4<f32>" : "f32";
  const inputs = program.variableNames.map((name, i) =>
    kind === "buffer"
      ? `
@group(0) @binding(${i + 1}) var<storage, read> ${name} : array<${
        element(program.variableComponents[i])
      }>;
fn ld_${name}(i : i32) -> ${element(program.variableComponents[i])} {
  return ${name}[i];
}`
      : `
@group(0) @binding(${i + 1}) var ${name} : ${type};
fn ld_${name}(i : i32) -> vec4<f32> {
  return textureLoad(${name}, vec2<i32>(i & ${TEXTURE_WIDTH - 1}, i >> ${WIDTH_SHIFT}u)${level});
}`
  );
  return `
struct Uniforms { ${program.uniforms} };
@group(0) @binding(0) var<storage, read_write> result : array<${
    element(kind === "buffer" ? program.outputComponent : 4)
  }>;
${inputs.join("\n")}
@group(0) @binding(${n + 1}) var<uniform> uniformsIn : Uniforms;
// A copy that lavapipe cannot inline (see opaqueUniforms).
var<private> uniforms : Uniforms;
var<private> localId : vec3<u32>;
var<private> globalId : vec3<u32>;
var<private> workgroupId : vec3<u32>;
var<private> numWorkgroups : vec3<u32>;
`;
}

/**
 * WGSL that copies the uniform block `from` into the private `uniforms`, adding `zero` (an
 * expression that is always 0 but not known to be) to every field.
 *
 * Why: lavapipe (Mesa 22.3, `lvp_inline_uniforms.c`) looks for uniforms that decide a loop's
 * trip count or an `if`, and where it finds some it compiles, at every dispatch (each time the
 * pipeline is bound), a new shader with their current values inlined
 * (`update_inline_shader_state`; nothing caches these but Mesa's on-disk cache). It stops only
 * if the first such copy shrank the shader by less than half (an unsigned difference: a copy
 * that grew, e.g. from unrolled loops, counts as a big shrink), and never for shaders it marks
 * `must_inline`. Our texture dX program was caught so: replaying a ResNet-18 step's calls at
 * 64 px with `MESA_SHADER_CACHE_DISABLE=true`, each dX dispatch took 0.6–1.0 s instead of
 * 30–90 ms (about 10 s per step on the 2-core machine); with the cache on, each paid a NIR pass
 * and a cache lookup (warm, a step's conv calls replayed in one process alternating both
 * preludes: 2.03 s with this copy, 2.44 s with a plain one; dX and dW gained, forward the same
 * within noise). A uniform plus something lavapipe cannot prove is 0 (`workgroup_id.z >=
 * num_workgroups.z`, as an integer) is no longer a uniform-only value, so nothing is inlined and
 * each pipeline compiles once. The added value is the same in every invocation, so the
 * compiler still treats the fields as uniform across a workgroup.
 *
 * @example
 * ```ts ignore
 * opaqueUniforms(program, "uniformsIn", "select(0, 1, wid.z >= nwg.z)");
 * // "uniforms = uniformsIn;\n  let opaqueZero = …;\n  uniforms.cin4 += opaqueZero; …"
 * ```
 */
export function opaqueUniforms(program: WebtuneProgram, from: string, zero: string): string {
  const fields = program.uniforms.split(",").map((f) => f.split(":").map((p) => p.trim()))
    .filter(([name]) => name);
  return [
    `uniforms = ${from};`,
    `let opaqueZero = ${zero};`,
    ...fields.map(([name, type]) =>
      `uniforms.${name} += ${type === "i32" ? "opaqueZero" : `${type}(opaqueZero)`};`
    ),
  ].join("\n  ");
}

function entryPoint(program: WebtuneProgram): string {
  const [x, y, z] = program.workgroupSize;
  return `
@compute @workgroup_size(${x}, ${y}, ${z})
fn _start(@builtin(local_invocation_id) lid : vec3<u32>,
          @builtin(global_invocation_id) gid : vec3<u32>,
          @builtin(workgroup_id) wid : vec3<u32>,
          @builtin(num_workgroups) nwg : vec3<u32>) {
  localId = lid;
  globalId = gid;
  workgroupId = wid;
  numWorkgroups = nwg;
  ${opaqueUniforms(program, "uniformsIn", "select(0, 1, wid.z >= nwg.z)")}
  main();
}`;
}

/** The parts of tfjs-webgpu 4.22's backend this module drives (not in its public types). */
interface BackendInternals extends EncoderInternals {
  tensorMap: { get(dataId: unknown): { resource: unknown }; has(dataId: unknown): boolean };
  pipelineCache: Record<string, GPUComputePipeline | Promise<GPUComputePipeline>>;
  uploadToGPU(dataId: unknown): void;
  makeUniforms(uniforms: Uniforms): GPUBufferBinding;
}

/** Per device: the bind group layouts by kind and input count, and the texture pool by slot. */
interface DeviceState {
  layouts: Map<string, GPUBindGroupLayout>;
  pool: Map<string, GPUTexture>;
  /** Replaced textures, destroyed once the encoder that may use them is submitted. */
  retired: GPUTexture[];
  /** By shared slot (see {@linkcode sharedSlots}): the tensor data its texture last received. */
  holds: Map<string, unknown>;
  /** A view per pooled texture (a view is all a bind group needs; creating one costs a call). */
  views: WeakMap<GPUTexture, GPUTextureView>;
  /** Kept filter textures (see {@linkcode keptTexture}) by tensor data, least recently used first. */
  kept: Map<unknown, GPUTexture>;
  /** Bytes of the kept textures. */
  keptBytes: number;
  /** The data a `second`-policy slot copied once (see {@linkcode keepPolicy}). */
  seen: WeakSet<object>;
}
const states = new WeakMap<GPUDevice, DeviceState>();

function stateOf(device: GPUDevice): DeviceState {
  let s = states.get(device);
  if (!s) {
    s = {
      layouts: new Map(),
      pool: new Map(),
      retired: [],
      holds: new Map(),
      views: new WeakMap(),
      kept: new Map(),
      keptBytes: 0,
      seen: new WeakSet(),
    };
    states.set(device, s);
  }
  return s;
}

function viewOf(s: DeviceState, texture: GPUTexture): GPUTextureView {
  let view = s.views.get(texture);
  if (!view) {
    view = texture.createView();
    s.views.set(texture, view);
  }
  return view;
}

/** Slot names {@linkcode sharedSlots} handed out: their copies may be reused (see there). */
const reusableSlots = new Set<string>();
let reuseCopies = true;
let copies = 0;

/**
 * Turns off (or on again) the reuse of copies: shared slots' (see {@linkcode sharedSlots}) and
 * kept filter textures' (see {@linkcode keptTexture}). For measurements that replay one kernel
 * call on the same inputs (`bench --profile`, the conv tuner): there every replay after the first
 * would skip its copies, which a training step does not. Returns the previous setting.
 *
 * @example
 * ```ts
 * const was = setOperandCopyReuse(false);
 * try {
 *   // … time kernel calls on fixed inputs …
 * } finally {
 *   setOperandCopyReuse(was);
 * }
 * ```
 */
export function setOperandCopyReuse(enabled: boolean): boolean {
  const was = reuseCopies;
  reuseCopies = enabled;
  return was;
}

/**
 * How many buffer-to-texture copies {@linkcode runWithTextureOperands} has recorded in this
 * process (for tests and benchmarks).
 *
 * @example
 * ```ts
 * const before = operandCopyCount();
 * // … run a kernel …
 * console.log(operandCopyCount() - before, "operand copies");
 * ```
 */
export function operandCopyCount(): number {
  return copies;
}

function layoutFor(device: GPUDevice, inputs: number, kind: OperandKind): GPUBindGroupLayout {
  const s = stateOf(device);
  let layout = s.layouts.get(`${kind} ${inputs}`);
  if (!layout) {
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "storage" } },
    ];
    for (let i = 0; i < inputs; i++) {
      entries.push({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        ...(kind === "buffer"
          ? { buffer: { type: "read-only-storage" as const } }
          : kind === "storage"
          ? { storageTexture: { access: "read-only", format: "rgba32float" } }
          // rgba32float is not filterable in core WebGPU; textureLoad needs no filtering.
          : { texture: { sampleType: "unfilterable-float" } }),
      });
    }
    entries.push({ binding: inputs + 1, visibility: GPUShaderStage.COMPUTE, buffer: {} });
    layout = device.createBindGroupLayout({ entries });
    s.layouts.set(`${kind} ${inputs}`, layout);
  }
  return layout;
}

/** Rows of a {@linkcode TEXTURE_WIDTH}-wide texture holding `floats` floats (a multiple of 4). */
function rowsFor(floats: number): number {
  return Math.max(1, Math.ceil(floats / 4 / TEXTURE_WIDTH));
}

/**
 * Whether tensors of these sizes fit textures on `backend`'s device (the largest 2-D texture
 * must hold each one as {@linkcode TEXTURE_WIDTH}-wide rows), and are vec4-sized.
 */
export function texturesFit(backend: WebGPUBackend, tensors: tf.TensorInfo[]): boolean {
  const device = (backend as unknown as BackendInternals).device;
  return tensors.every((t) => {
    const floats = tf.util.sizeFromShape(t.shape);
    return floats % 4 === 0 && rowsFor(floats) <= device.limits.maxTextureDimension2D;
  });
}

/** The pooled texture of input slot `slot`, grown to at least `rows` rows. */
function slotTexture(be: BackendInternals, slot: string, rows: number): GPUTexture {
  const s = stateOf(be.device);
  if (be.commandEncoder === null) {
    // Everything recorded so far was submitted: destroying now is safe for in-flight work.
    for (const t of s.retired) t.destroy();
    s.retired = [];
  }
  const old = s.pool.get(slot);
  if (old && old.height >= rows) return old;
  if (old) s.retired.push(old);
  s.holds.delete(slot);
  const texture = createOperandTexture(be.device, `webtune operand ${slot}`, rows);
  s.pool.set(slot, texture);
  return texture;
}

/** A texture height for `rows` rows of data: a power of two (see createOperandTexture). */
function heightFor(device: GPUDevice, rows: number): number {
  return Math.min(device.limits.maxTextureDimension2D, 2 ** Math.ceil(Math.log2(rows)));
}

function createOperandTexture(device: GPUDevice, label: string, rows: number): GPUTexture {
  return device.createTexture({
    label,
    // Heights are powers of two: llvmpipe specialises a compiled shader on whether its texture
    // sizes are powers of two, so mixed heights would compile each pipeline up to 4 times.
    size: [TEXTURE_WIDTH, heightFor(device, rows)],
    format: "rgba32float",
    // Both kinds of binding (rgba32float allows storage binding in core WebGPU), so one pool
    // serves both.
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING |
      GPUTextureUsage.COPY_DST,
  });
}

/** The most bytes of kept filter textures per device, by default (see {@linkcode keptTexture}). */
export const MAX_KEPT_TEXTURE_BYTES = 160 * 2 ** 20;
let maxKeptBytes = MAX_KEPT_TEXTURE_BYTES;

/**
 * Sets the bound on kept filter textures' bytes (tests use a small one; 0 turns them off, for
 * `cli/bench_host.ts --ab`); returns the previous bound. Textures over a lowered bound go as new
 * filters need room.
 *
 * @example
 * ```ts
 * const was = setMaxKeptTextureBytes(64 * 2 ** 20);
 * setMaxKeptTextureBytes(was);
 * ```
 */
export function setMaxKeptTextureBytes(bytes: number): number {
  const was = maxKeptBytes;
  maxKeptBytes = bytes;
  return was;
}

/**
 * Which inputs keep a texture of their own, by slot: conv filters (`w` of the direct and dX
 * programs, `winograd filter` of the Winograd filter transforms) from their first copy, and
 * Winograd's transformed filter (`winograd U`) from its second (a training step transforms its
 * filters anew and reads each transform once; an evaluation reads the transform it keeps with
 * the fold at every step). Slot names as the conv kernels name them (`SLOTS` in
 * conv2d_winograd.ts, the default `<program> <input>` elsewhere; texture_operands_test.ts checks).
 */
function keepPolicy(slot: string): "first" | "second" | undefined {
  if (slot === "winograd U") return "second";
  if (slot === "winograd filter" || slot.endsWith(" w")) return "first";
  return undefined;
}

let keptHits = 0;

/**
 * How many filter copies kept textures saved in this process (for tests and benchmarks).
 *
 * @example
 * ```ts
 * const before = keptTextureHits();
 * // … run a step …
 * console.log(keptTextureHits() - before, "filter copies saved");
 * ```
 */
export function keptTextureHits(): number {
  return keptHits;
}

/**
 * The texture `input` keeps (see {@linkcode keepPolicy}), copied into it on first use; undefined
 * where its slot keeps none (the caller copies into the slot's texture).
 *
 * Why: a conv's filter is read by its forward and its dX in a training step, and by every
 * evaluation step (the folded filters, and the Winograd transforms kept with them, do not
 * change). Copied into the slot every time, filters were about half of an evaluation step's
 * copies (51 of 91 MB at 64 px, batch 16), and lavapipe copies a buffer into a texture at
 * about 1–2 GB/s on one thread.
 *
 * Exact for the reasons shared slots are (see {@linkcode sharedSlots}): a tensor's data id is
 * never reused and its data never changes while it lives, and the copy that filled the texture
 * was recorded earlier in stream order. A new filter takes the texture of a disposed one of the
 * same height (a training step's filters replace the step before's), else a new texture; past
 * {@linkcode MAX_KEPT_TEXTURE_BYTES} (see {@linkcode setMaxKeptTextureBytes}) textures are evicted, disposed tensors' first, then the
 * least recently used. An evicted texture of the right height takes the new data (a copy
 * recorded after the dispatches that read the old data, so it runs after them), any other is
 * destroyed after the next submit. `pinned` textures (bound by the dispatch
 * being recorded) are never evicted. Off while copy reuse is (see {@linkcode setOperandCopyReuse}).
 */
function keptTexture(
  be: BackendInternals,
  input: tf.TensorInfo,
  slot: string,
  pinned: ReadonlySet<GPUTexture>,
): GPUTexture | undefined {
  const policy = reuseCopies && maxKeptBytes > 0 ? keepPolicy(slot) : undefined;
  if (!policy) return undefined;
  const s = stateOf(be.device);
  const hit = s.kept.get(input.dataId);
  if (hit) {
    s.kept.delete(input.dataId); // most recently used last
    s.kept.set(input.dataId, hit);
    keptHits++;
    return hit;
  }
  if (policy === "second" && !s.seen.has(input.dataId as object)) {
    s.seen.add(input.dataId as object);
    return undefined;
  }
  const rows = rowsFor(tf.util.sizeFromShape(input.shape));
  const height = heightFor(be.device, rows);
  const bytes = TEXTURE_WIDTH * height * 16;
  if (bytes > maxKeptBytes / 4) return undefined;
  // Disposed tensors' textures go first: a step's new filters take their predecessors' ones.
  const alive = (dataId: unknown) => be.tensorMap.has(dataId);
  let texture: GPUTexture | undefined;
  for (const [dataId, old] of s.kept) {
    if (old.height === height && !alive(dataId)) {
      s.kept.delete(dataId);
      texture = old; // takes the new data; its bytes stay counted
      break;
    }
  }
  for (const evictLive of [false, true]) {
    for (const [dataId, old] of s.kept) {
      if (texture || s.keptBytes + bytes <= maxKeptBytes) break;
      if (pinned.has(old) || (!evictLive && alive(dataId))) continue;
      s.kept.delete(dataId);
      if (old.height === height) {
        texture = old;
      } else {
        s.retired.push(old);
        s.keptBytes -= old.width * old.height * 16;
      }
    }
  }
  if (!texture) {
    if (s.keptBytes + bytes > maxKeptBytes) return undefined;
    texture = createOperandTexture(be.device, "webtune kept filter", rows);
    s.keptBytes += bytes;
  }
  s.kept.set(input.dataId, texture);
  recordCopy(be, input, texture);
  return texture;
}

/**
 * Records the copy of `input`'s buffer into its slot's texture, unless that texture holds
 * `input`'s data already (see {@linkcode sharedSlots}); returns the texture.
 */
function copyToTexture(
  be: BackendInternals,
  input: tf.TensorInfo,
  slot: string,
  pinned: ReadonlySet<GPUTexture>,
): GPUTexture {
  const kept = keptTexture(be, input, slot, pinned);
  if (kept) return kept;
  const texture = slotTexture(be, slot, rowsFor(tf.util.sizeFromShape(input.shape)));
  const s = stateOf(be.device);
  if (reuseCopies && reusableSlots.has(slot)) {
    if (s.holds.get(slot) === input.dataId) return texture;
    s.holds.set(slot, input.dataId);
  } else {
    s.holds.delete(slot);
  }
  recordCopy(be, input, texture);
  return texture;
}

/** Records the copy of `input`'s buffer into `texture`, on the backend's encoder. */
function recordCopy(be: BackendInternals, input: tf.TensorInfo, texture: GPUTexture): void {
  be.uploadToGPU(input.dataId);
  const buffer = be.tensorMap.get(input.dataId).resource as GPUBuffer;
  const texels = tf.util.sizeFromShape(input.shape) / 4;
  copies++;
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  const encoder = be.commandEncoder!;
  const bytesPerRow = TEXTURE_WIDTH * 16;
  const fullRows = Math.floor(texels / TEXTURE_WIDTH);
  if (fullRows > 0) {
    encoder.copyBufferToTexture({ buffer, bytesPerRow }, { texture }, [TEXTURE_WIDTH, fullRows]);
  }
  const rest = texels - fullRows * TEXTURE_WIDTH;
  if (rest > 0) {
    encoder.copyBufferToTexture(
      { buffer, offset: fullRows * bytesPerRow, bytesPerRow },
      { texture, origin: [0, fullRows] },
      [rest, 1],
    );
  }
}

/**
 * Like `backend.runWebGPUProgram(program, inputs, "float32", uniforms)`, with the inputs read
 * from textures of the `asked` kind (the program's WGSL uses `ld_name`, see
 * {@linkcode operandRead}; callers check {@linkcode storageTexturesReadable} before asking for
 * `storage`; programs with more inputs than the device allows storage textures get `sampled`). Honours
 * `WEBGPU_ENGINE_COMPILE_ONLY` (compile asynchronously into the backend's pipeline cache, record
 * nothing), the deferred-submit batch size and `tf.time`'s timers as tfjs does.
 *
 * `slots` names the pooled texture each input is copied into (default: one per program class and
 * input name); see {@linkcode sharedSlots}.
 *
 * @returns a new tensor of `program.outputShape` and `program.outputDtype` (float32 unless the
 *   program says), owned by the caller.
 */
export function runWithTextureOperands(
  backend: WebGPUBackend,
  program: WebtuneProgram,
  inputs: tf.TensorInfo[],
  uniforms: Uniforms,
  asked: OperandKind = "sampled",
  slots?: readonly string[],
): tf.TensorInfo {
  const be = backend as unknown as BackendInternals;
  // Read-only storage textures count against maxStorageTexturesPerShaderStage (4 in core
  // WebGPU); past it the pipeline is invalid and every dispatch in its submit silently skipped.
  const kind = asked === "storage" &&
      inputs.length > be.device.limits.maxStorageTexturesPerShaderStage
    ? "sampled"
    : asked;
  const output = backend.makeTensorInfo(program.outputShape, program.outputDtype);
  be.uploadToGPU(output.dataId);
  const textureKey = kind === "buffer"
    ? "buffers"
    : kind === "storage"
    ? "storage_textures"
    : "textures";
  const key = `${program.shaderKey}_${textureKey}_${program.workgroupSize.join("_")}`;
  const compileOnly = tf.env().getBool("WEBGPU_ENGINE_COMPILE_ONLY");
  if (!(key in be.pipelineCache)) {
    const module = be.device.createShaderModule({
      code: texturePrelude(program, kind) + program.getUserCode() + entryPoint(program),
      label: key,
    });
    const descriptor: GPUComputePipelineDescriptor = {
      label: key,
      layout: be.device.createPipelineLayout({
        bindGroupLayouts: [layoutFor(be.device, inputs.length, kind)],
      }),
      compute: { module, entryPoint: "_start" },
    };
    be.pipelineCache[key] = compileOnly
      ? be.device.createComputePipelineAsync(descriptor)
      : be.device.createComputePipeline(descriptor);
  }
  if (compileOnly) return output;
  const pipeline = be.pipelineCache[key];
  if (pipeline instanceof Promise) {
    throw new Error(
      "Please call checkCompileCompletionAsync to ensure parallel compilation is done!",
    );
  }
  const pinned = new Set<GPUTexture>();
  const operandResource = (input: tf.TensorInfo, i: number): GPUBindingResource => {
    if (kind === "buffer") {
      be.uploadToGPU(input.dataId);
      return { buffer: be.tensorMap.get(input.dataId).resource as GPUBuffer };
    }
    const texture = copyToTexture(
      be,
      input,
      slots?.[i] ?? `${program.constructor.name} ${program.variableNames[i]}`,
      pinned,
    );
    pinned.add(texture);
    return viewOf(stateOf(be.device), texture);
  };
  const resources: GPUBindingResource[] = [];
  inputs.forEach((input, i) => {
    // An input passed twice is copied once.
    const first = inputs.findIndex((t) => t.dataId === input.dataId);
    resources.push(first < i ? resources[first] : operandResource(input, i));
  });
  const outBuffer = be.tensorMap.get(output.dataId).resource as GPUBuffer;
  const layout = layoutFor(be.device, inputs.length, kind);
  const bindGroup = cachedBindGroup(be.device, layout, layout, [
    { buffer: outBuffer },
    ...resources,
    be.makeUniforms(uniforms),
  ]);
  for (const input of inputs) be.commandQueueOwnedIds.add(input.dataId);
  be.commandQueueOwnedIds.add(output.dataId);
  // A WebtuneProgram is never a draw program: it submits as tfjs's compute programs do.
  encodeDispatch(be, pipeline, bindGroup, program);
  textureDispatches++;
  return output;
}

let textureDispatches = 0;

/**
 * How many programs {@linkcode runWithTextureOperands} has dispatched in this process: they
 * bypass `backend.runWebGPUProgram`, where tfjs's own dispatches can be counted.
 *
 * @example
 * ```ts
 * const before = textureDispatchCount();
 * // … run a step …
 * console.log(textureDispatchCount() - before, "texture-operand dispatches");
 * ```
 */
export function textureDispatchCount(): number {
  return textureDispatches;
}

/**
 * Bytes of the operand textures held for `backend`'s device (pooled, kept and retired): memory that
 * `tf.memory()` does not see. The pool only grows, so after a step this is that step's peak.
 *
 * @example
 * ```ts
 * console.log(operandTextureBytes(tf.backend() as WebGPUBackend) / 2 ** 20, "MiB");
 * ```
 */
export function operandTextureBytes(backend: WebGPUBackend): number {
  const s = states.get((backend as unknown as BackendInternals).device);
  if (!s) return 0;
  const bytes = (t: GPUTexture) => t.width * t.height * 16;
  return [...s.pool.values(), ...s.kept.values(), ...s.retired]
    .reduce((sum, t) => sum + bytes(t), 0);
}

/**
 * Runs `program` with its inputs in textures when `textures` (built for them, see
 * {@linkcode operandRead}; `true`: the fastest kind this WebGPU allows, see
 * {@linkcode textureKindFor}), from storage buffers through the same prelude for `buffer` (see
 * {@linkcode OperandKind}), else as tfjs does, from storage buffers.
 *
 * @returns a new float32 tensor of `program.outputShape`, owned by the caller.
 */
export function runWithOperands(
  backend: WebGPUBackend,
  program: WebtuneProgram,
  inputs: tf.TensorInfo[],
  uniforms: Uniforms,
  textures: boolean | OperandKind,
  slots?: readonly string[],
): tf.TensorInfo {
  if (textures === false) return backend.runWebGPUProgram(program, inputs, "float32", uniforms);
  const kind = textures === "buffer" ? "buffer" : textureKindFor(textures);
  return runWithTextureOperands(backend, program, inputs, uniforms, kind, slots);
}

/**
 * Texture slots shared by the memory-bound kernels (SGD update, BatchNorm, reductions, pooling),
 * which run one after another: the n-th large (activation- or weight-sized) input of any of them
 * goes to slot `large n`, the n-th per-channel vector to `small n`. The pool then holds about
 * three activation-sized textures for all of them, instead of one per kernel and input.
 *
 * A shared slot remembers whose data it last received, and a later kernel reading the same tensor
 * through the same slot skips the copy: BatchNorm's forward reads x three times (mean, variance,
 * normalise) and its backward dy, x and y twice (the two sums, then dx), each time into the same
 * slots. This is exact: a tensor's data id is never reused and its data never changes while it
 * lives (tfjs's `Variable.assign` and every kernel make new data ids), a replaced texture forgets
 * what it held, and the copy that filled the texture was recorded earlier in stream order. Slots
 * of other names (the conv kernels', timed by the tuner on fixed inputs) always copy.
 *
 * @example
 * ```ts
 * import { sharedSlots } from "./texture_operands.ts";
 * sharedSlots(["large", "small", "large"]); // ["large 0", "small 0", "large 1"]
 * ```
 */
export function sharedSlots(kinds: readonly ("large" | "small")[]): string[] {
  const seen = { large: 0, small: 0 };
  const names = kinds.map((kind) => `${kind} ${seen[kind]++}`);
  for (const name of names) reusableSlots.add(name);
  return names;
}
