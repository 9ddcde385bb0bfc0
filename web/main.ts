/**
 * The page's entry point: sets up the backend (WebGPU, or WebGL when the user asks), wires the
 * five sections, and publishes `window.webtune`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  type AdapterReport,
  describeAdapter,
  KERNEL_CHOICES,
  type KernelChoice,
  NoWebGPUError,
  setupBackend,
} from "@webtune/core";
import { setupBuilderView } from "./builder_view.ts";
import { setupLivePrediction } from "./camera_predict.ts";
import { setupDataView } from "./data_view.ts";
import { byId } from "./dom.ts";
import { publishHook, type WebtuneHook } from "./hook.ts";
import { setupLrFindView } from "./lr_find_view.ts";
import { errorMessage, setupModelView } from "./model_view.ts";
import type { Page } from "./page.ts";
import { setupSavedView } from "./saved_view.ts";
import { kernelChoiceStore } from "./store.ts";
import { Session } from "./session.ts";
import { setupTrainView } from "./train_view.ts";
import { setupUseView } from "./use_view.ts";
import { setupWeightsUrl } from "./weights_url_view.ts";

const session = new Session();
const hook: WebtuneHook = {
  state: "starting",
  busy: 0,
  history: [],
  batchLosses: [],
  predictions: [],
  numTensors: () => tf.memory().numTensors,
};
publishHook(hook);

/**
 * `?test-device-loss` adds `webtune.destroyDevice()`, for the browser test of the lost-device
 * message (tests/web_device_loss_test.ts): it must lose the device in the middle of training, as
 * a driver reset or the GPU process's watchdog would, and the device is private to tfjs' backend,
 * out of a test's reach. The current backend's device is looked up at the call (Start after a
 * loss makes a new one). Without the parameter the page exposes nothing more.
 */
if (new URLSearchParams(location.search).has("test-device-loss")) {
  hook.destroyDevice = () => (tf.backend() as WebGPUBackend).device.destroy();
}

const errorBox = byId("error", HTMLElement);
const updates: (() => void)[] = [];
const page: Page = {
  session,
  hook,
  backendReady: () => hook.backend !== undefined,
  async act(action) {
    errorBox.textContent = "";
    hook.error = undefined;
    hook.busy++;
    page.refresh();
    try {
      await action();
    } catch (e) {
      const message = errorMessage(e);
      console.error(e);
      errorBox.textContent = message;
      hook.error = message;
    } finally {
      hook.busy--;
      page.refresh();
    }
  },
  refresh: () => updates.forEach((update) => update()),
  onRefresh: (update) => updates.push(update),
};

const showSkipped = setupDataView(page);
const settings = setupModelView(page);
setupTrainView(page, settings, showSkipped);
setupLrFindView(page, settings);
setupUseView(page);
setupBuilderView(page).catch((e) => console.error(e));
setupWeightsUrl(page);
setupLivePrediction(page);
setupSavedView(page);
// Keeps the page's files for offline use; the page works without it (e.g. on file://).
navigator.serviceWorker?.register("./sw.js").catch((e) => console.warn("no offline copy:", e));

/** Shows the backend in use and lets training start. */
function useBackend(report: AdapterReport): void {
  hook.backend = report;
  session.adapter = report;
  hook.state = "idle";
  byId("no-webgpu", HTMLElement).hidden = true;
  const software = report.isFallbackAdapter && report.backend === "webgpu"
    ? " This software adapter computes on the CPU, far slower than a GPU: try a small image " +
      "size (e.g. 64) and few images."
    : "";
  byId("adapter", HTMLElement).textContent = `Using ${describeAdapter(report)}.${software}`;
  if (report.backend === "webgpu") watchDeviceLoss();
  page.refresh();
}

/**
 * A lost device (driver reset, the browser's GPU process killed by its watchdog) leaves every
 * pending GPU read waiting forever, so say so instead of showing a frozen progress bar.
 */
function watchDeviceLoss(): void {
  const device = (tf.backend() as WebGPUBackend).device;
  device.lost.then((info) => {
    if (info.reason === "destroyed") return;
    const message = `The GPU device was lost (${info.message || info.reason}). ` +
      "Reload the page to start again; a smaller image size or batch may help.";
    errorBox.textContent = message;
    hook.error = message;
    byId("adapter", HTMLElement).textContent = "The WebGPU device was lost.";
  });
}

/** Switches to tfjs' webgl backend (loaded only on request: a chunk of its own). */
const useWebgl = () =>
  page.act(async () => {
    useBackend(
      await setupBackend({
        backend: "webgl",
        registerWebgl: async () => {
          await import("@tensorflow/tfjs-backend-webgl");
        },
      }),
    );
  });
byId("use-webgl", HTMLButtonElement).addEventListener("click", useWebgl);

/**
 * `?kernels=stock|fast|auto` overrides core's choice of kernels (`auto` by default: each conv
 * shape's variant measured on this adapter, the choices kept in IndexedDB; `fast` and `stock`
 * to compare, as `web/bench_browser.ts` does).
 */
function askedKernels(): KernelChoice | undefined {
  const asked = new URLSearchParams(location.search).get("kernels");
  return KERNEL_CHOICES.find((k) => k === asked);
}

/** `?backend=webgl` starts on tfjs' webgl backend (to compare speed: `web/bench_browser.ts`). */
const askedWebgl = new URLSearchParams(location.search).get("backend") === "webgl";

if (askedWebgl) {
  await useWebgl();
} else {
  await startWebgpu();
}

async function startWebgpu(): Promise<void> {
  try {
    const report = await setupBackend({
      backend: "webgpu",
      gpu: navigator.gpu,
      kernels: askedKernels(),
      kernelStore: kernelChoiceStore(),
    });
    useBackend(report);
    hook.fastKernels = report.fastKernels;
  } catch (e) {
    hook.state = "no-webgpu";
    // Core's message speaks to the terminal (apt-get); say it for a browser.
    const why = !(e instanceof NoWebGPUError)
      ? `WebGPU failed to start: ${e instanceof Error ? e.message : e}`
      : navigator.gpu
      ? "The browser has WebGPU but offers no adapter (its GPU or driver may be blocklisted)."
      : "navigator.gpu is missing: this browser has no WebGPU, or it is turned off.";
    byId("adapter", HTMLElement).textContent = "No WebGPU in this browser.";
    byId("no-webgpu-why", HTMLElement).textContent = why;
    byId("no-webgpu", HTMLElement).hidden = false;
    page.refresh();
  }
}
