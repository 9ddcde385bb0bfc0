/**
 * Backend setup: find a WebGPU adapter, create the device ourselves, and register tfjs-webgpu
 * from that device. The same code runs in Deno and in a browser tab.
 *
 * Why not `tf.setBackend("webgpu")` as tfjs documents: its own factory trips over two traps on
 * Deno (tfjs#8518, deno#28135). It reads `adapter.info` *after* `requestDevice`, which Deno's
 * adapter no longer allows, and on GPUs that expose `bgra8unorm-storage` it pushes a nested
 * array (`[["bgra8unorm-storage"]]`) into `requiredFeatures`, which Deno rejects. So we read the
 * adapter info first, request the device with a flat feature list and the adapter's maximum
 * buffer and workgroup limits (the defaults are too small for batch 128 at 224 px), and hand the
 * device to `WebGPUBackend` directly.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
// tfjs-core's npm bundles register no gradients; @webtune/models' gradients.ts does (see there).
import "@webtune/models";
import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  cacheDispatches,
  configureKernelChoice,
  type KernelChoiceStore,
  registerFastKernels,
} from "./kernels/mod.ts";
import { watchDeviceErrors } from "./device_errors.ts";

/** The tfjs backends webtune can train on. */
export type BackendName = "webgpu" | "cpu" | "webgl";

/**
 * Which webgpu kernels run: webtune's (`fast`, core/kernels), tfjs-webgpu's own (`stock`), or
 * `auto`: webtune's, with each conv shape's variant (stock tfjs among them) chosen by timing
 * them on this adapter (core/kernels/autotune.ts) and remembered in `kernelStore`.
 */
export type KernelChoice = "auto" | "fast" | "stock";

/** The values of {@linkcode KernelChoice}, for flag validation. */
export const KERNEL_CHOICES: readonly KernelChoice[] = ["auto", "fast", "stock"];

/** What a run prints and records about the device it computes on. */
export interface AdapterReport {
  /** The tfjs backend in use. */
  backend: BackendName;
  /** Human-readable adapter name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)` or `cpu`. */
  description: string;
  vendor: string;
  architecture: string;
  /** True for software adapters (llvmpipe, lavapipe, SwiftShader) and for the cpu backend. */
  isFallbackAdapter: boolean;
  /** The limits the device was created with (webgpu only). */
  limits?: Record<string, number>;
  /** Whether webtune's own kernels replace tfjs-webgpu's (webgpu only). */
  fastKernels?: boolean;
  /** The kernel choice asked for (webgpu only). */
  kernels?: KernelChoice;
}

/** Options for {@linkcode setupBackend}. */
export interface SetupBackendOptions {
  /** Which backend to use. Default `webgpu`. Never falls back silently. */
  backend?: BackendName;
  /** The `GPU` object to ask for an adapter; defaults to `navigator.gpu`. */
  gpu?: GPU;
  /**
   * Replace tfjs-webgpu's naive kernels with webtune's faster ones (`core/kernels`). Default: yes,
   * on every adapter (SwiftShader included). false measures stock tfjs.
   */
  fastKernels?: boolean;
  /** Which kernels to use (see {@linkcode KernelChoice}); overrides `fastKernels`. */
  kernels?: KernelChoice;
  /**
   * Where `auto` keeps its measured choices per adapter (a file in the CLI's cache, IndexedDB in
   * the page). Absent: the store of an earlier call, else none (measured again every process).
   */
  kernelStore?: KernelChoiceStore;
  /** `auto` measures again instead of using the stored choices (`bench`). */
  retuneKernels?: boolean;
  /** Ignore a backend set up earlier in this process and make a new one (tests). */
  fresh?: boolean;
  /** Registers the webgl backend when `backend` is `webgl` (browser only; kept out of Deno). */
  registerWebgl?: () => Promise<void>;
  /**
   * The process environment (`Deno.env` in the CLI), so that headless runs can be kept quiet
   * (see {@linkcode quietMesaDeviceSelect}) and Deno's wgpu leaves its OpenGL backend closed
   * (see {@linkcode skipWgpuOpenGl}). Absent in a browser.
   */
  env?: EnvironmentVariables;
}

/** Thrown when WebGPU was asked for and no adapter exists. */
export class NoWebGPUError extends Error {
  override name = "NoWebGPUError";
}

/**
 * The device limits requested at the adapter's maxima: those tfjs-webgpu itself requests, plus
 * the texture bindings per stage that webtune's texture-operand kernels use (core WebGPU's
 * default of 4 storage textures would leave the 5–7-input BatchNorm kernels on sampled ones).
 */
const LIMITS_TO_MAXIMISE = [
  "maxComputeWorkgroupStorageSize",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeInvocationsPerWorkgroup",
  "maxStorageBuffersPerShaderStage",
  "maxStorageTexturesPerShaderStage",
  "maxSampledTexturesPerShaderStage",
] as const;

const NO_ADAPTER_HELP =
  "no WebGPU adapter found: install a GPU driver or Mesa's software Vulkan driver " +
  "(Debian/Ubuntu: apt-get install mesa-vulkan-drivers), use a browser with WebGPU enabled, " +
  "or use the (slow) cpu backend";

/**
 * Finds an adapter, creates the device and makes tfjs use it. Returns what it found so the
 * caller can print it; this function prints nothing.
 *
 * @example
 * ```ts
 * import { describeAdapter, setupBackend } from "@webtune/core";
 * const report = await setupBackend({ backend: "webgpu" });
 * console.log(describeAdapter(report)); // webgpu: llvmpipe (LLVM 15.0.6, 256 bits) [software fallback]
 * ```
 */
export async function setupBackend(options: SetupBackendOptions = {}): Promise<AdapterReport> {
  const backend = options.backend ?? "webgpu";
  // A second call (e.g. `compare` running two trainings) reuses the device it already made.
  if (!options.fresh && active?.backend === backend && tf.getBackend() === backend) return active;
  active = await createBackend(backend, options);
  return active;
}

let active: AdapterReport | undefined;

async function createBackend(
  backend: BackendName,
  options: SetupBackendOptions,
): Promise<AdapterReport> {
  if (backend === "cpu") {
    await activate("cpu");
    skipNodeBanner();
    return {
      backend,
      description: "cpu",
      vendor: "",
      architecture: "",
      isFallbackAdapter: true,
    };
  }
  if (backend === "webgl") {
    if (!options.registerWebgl) throw new Error("the webgl backend is only offered in a browser");
    await options.registerWebgl();
    await activate("webgl");
    return {
      backend,
      description: "webgl",
      vendor: "",
      architecture: "",
      isFallbackAdapter: false,
    };
  }

  if (options.env) {
    quietMesaDeviceSelect(options.env);
    skipWgpuOpenGl(options.env);
  }
  const gpu = options.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new NoWebGPUError(`${NO_ADAPTER_HELP} (navigator.gpu is missing)`);
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new NoWebGPUError(NO_ADAPTER_HELP);

  // Read everything we need from the adapter before requestDevice (deno#28135).
  const info = adapter.info;
  const adapterInfo = {
    vendor: info?.vendor ?? "",
    architecture: info?.architecture ?? "",
    device: info?.device ?? "",
    description: info?.description ?? "",
  };
  const isFallbackAdapter = Boolean(
    (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ??
      (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  );
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMITS_TO_MAXIMISE) {
    const value = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof value === "number") requiredLimits[name] = value;
  }
  // A flat list of feature names (tfjs#8518 pushes a nested array for bgra8unorm-storage).
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");

  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  watchDeviceErrors(device);

  // Replace the factory tfjs-webgpu registers on import with one that uses our device.
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", () => new WebGPUBackend(device, adapterInfo as GPUAdapterInfo));
  await activate("webgpu");
  // Host work per dispatch, cached (exact; see dispatch_cache.ts): for every kernel choice.
  cacheDispatches(tf.backend() as WebGPUBackend);
  const kernels: KernelChoice = options.kernels ??
    (options.fastKernels === undefined ? "auto" : options.fastKernels ? "fast" : "stock");
  if (!KERNEL_CHOICES.includes(kernels)) {
    throw new Error(`unknown kernel choice "${kernels}" (expected ${KERNEL_CHOICES.join(", ")})`);
  }
  // auto: webtune's kernels on every adapter, SwiftShader included (its device loss came from
  // short-circuit && in our WGSL, see kernel_util.ts's allOf).
  const fastKernels = kernels !== "stock";
  if (fastKernels) registerFastKernels();
  await configureKernelChoice({
    mode: kernels === "auto" ? "auto" : "fast",
    adapter: [adapterInfo.vendor, adapterInfo.architecture, adapterInfo.description].join(" / "),
    store: options.kernelStore,
    fresh: options.retuneKernels,
  });

  return {
    backend,
    description: adapterInfo.description ||
      [adapterInfo.vendor, adapterInfo.architecture].filter(Boolean).join(" ") ||
      "unknown WebGPU adapter",
    vendor: adapterInfo.vendor,
    architecture: adapterInfo.architecture,
    isFallbackAdapter,
    limits: requiredLimits,
    fastKernels,
    kernels,
  };
}

/** Reading and setting environment variables, as `Deno.env` does (core itself uses no Deno API). */
export interface EnvironmentVariables {
  /** The variable's value, or undefined. */
  get(key: string): string | undefined;
  /** Sets the variable for this process (and its children). */
  set(key: string, value: string): void;
}

/**
 * Keeps Mesa's Vulkan device-selection layer from printing
 * `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` (twice) on headless
 * machines. That implicit layer (`VK_LAYER_MESA_device_select`, installed with
 * mesa-vulkan-drivers) connects to the Wayland compositor while the adapters are enumerated, to
 * prefer the GPU driving the display; without `XDG_RUNTIME_DIR` there is no session and
 * libwayland prints that line. With no session there is no display GPU to prefer, so the layer
 * is switched off through its documented opt-out, `NODEVICE_SELECT=1`, before the first
 * adapter request (the Vulkan loader reads it then). Desktop sessions (`XDG_RUNTIME_DIR` set)
 * and an explicit `MESA_VK_DEVICE_SELECT` or `NODEVICE_SELECT` are left alone.
 *
 * @example
 * ```ts ignore
 * import { quietMesaDeviceSelect } from "@webtune/core";
 * quietMesaDeviceSelect(Deno.env);
 * ```
 */
export function quietMesaDeviceSelect(env: EnvironmentVariables): void {
  if (env.get("XDG_RUNTIME_DIR") || env.get("MESA_VK_DEVICE_SELECT")) return;
  if (env.get("NODEVICE_SELECT") === undefined) env.set("NODEVICE_SELECT", "1");
}

/** The wgpu backends Deno's WebGPU may open: every native one but OpenGL. */
export const DENO_WEBGPU_BACKENDS = "vulkan,metal,dx12";

/**
 * Keeps Deno's wgpu from opening its OpenGL backend, by setting `DENO_WEBGPU_BACKEND` (which Deno
 * reads at each adapter request) to {@linkcode DENO_WEBGPU_BACKENDS} unless it is set already.
 *
 * Why: with every backend allowed, wgpu initialises EGL (glvnd's libEGL, Mesa's llvmpipe) next
 * to the Vulkan adapter it then picks, and never uses it. About 1.4 % of WebGPU `deno test` runs
 * then aborted after their summary with glibc's "corrupted size vs. prev_size in fastbins" (or
 * "malloc_consolidate(): invalid chunk size", or a SIGSEGV in unlink_chunk). In all 4 core dumps
 * the main thread is in libEGL.so.1's destructor (`exit` → `_dl_fini`) freeing into a heap arena
 * while another thread frees into the same arena on its way out (`tcache_thread_shutdown`): a
 * teardown race inside glvnd/Mesa, of the kind of libglvnd#103. Without OpenGL, libEGL is never
 * loaded: core/{loss,sgd,head_init}_test.ts together crashed in 4 of 288 runs with every
 * backend, 0 of 275 with this. Destroying the device on unload (tried before) did not help: 1
 * of 80. The adapter is the same (Vulkan: lavapipe here); an explicit `DENO_WEBGPU_BACKEND`
 * (e.g. `gl` on a machine without Vulkan) is left alone. `deno task test` sets the same value
 * for test processes, which call setupBackend without `env`.
 *
 * @example
 * ```ts ignore
 * import { skipWgpuOpenGl } from "@webtune/core";
 * skipWgpuOpenGl(Deno.env);
 * ```
 */
export function skipWgpuOpenGl(env: EnvironmentVariables): void {
  if (env.get("DENO_WEBGPU_BACKEND") === undefined) {
    env.set("DENO_WEBGPU_BACKEND", DENO_WEBGPU_BACKENDS);
  }
}

/**
 * tfjs-backend-cpu prints a "looks like you are running TensorFlow.js in Node.js ... install
 * tfjs-node" banner on its first tensor when tfjs detects Node, which Deno's npm compatibility
 * looks like. `--backend cpu` is a deliberate choice here (tfjs-node is a native addon webtune
 * does not use), so the banner is noise; its own show-once flag is cleared as if it had shown.
 */
function skipNodeBanner(): void {
  const cpu = tf.backend() as unknown as { firstUse?: boolean };
  if (cpu.firstUse === true) cpu.firstUse = false;
}

async function activate(name: BackendName): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok || tf.getBackend() !== name) throw new Error(`could not initialise the ${name} backend`);
  await tf.ready();
}

/**
 * One line naming the backend and adapter, e.g.
 * `webgpu: llvmpipe (LLVM 15.0.6, 256 bits) [software fallback adapter]`.
 */
export function describeAdapter(report: AdapterReport): string {
  if (report.backend !== "webgpu") return `${report.backend} (no GPU)`;
  const kind = report.isFallbackAdapter ? "software fallback adapter" : "hardware adapter";
  return `webgpu: ${report.description} [${kind}]`;
}

/**
 * Puts tensors' data on the GPU now (webgpu; elsewhere nothing). tfjs-webgpu runs an op on the
 * CPU when all its inputs are small (under 1000 values) and were never uploaded
 * (`WEBGPU_CPU_FORWARD`), and the CPU rounds differently (e.g. `rsqrt`). A model loaded from host
 * values would then compute its [C] BatchNorm scale and shift there, the same model after
 * training (its variables written by GPU ops) on the GPU, and the two predict differently in the
 * last bits. Models are put on the device when they are made or loaded, so where their ops run
 * does not depend on how they came to be.
 *
 * @example
 * ```ts ignore
 * const model = createResNet18({ numClasses: 2 });
 * placeOnDevice(model.variables.values());
 * ```
 */
export function placeOnDevice(tensors: Iterable<tf.TensorInfo>): void {
  if (tf.getBackend() !== "webgpu") return;
  const backend = tf.backend() as WebGPUBackend;
  for (const t of tensors) backend.uploadToGPU(t.dataId);
}
