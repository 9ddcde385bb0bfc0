/**
 * A new model's initial weights, drawn on another thread where one is at hand.
 *
 * A ResNet-18 draws 11 million normals (~0.4 s of CPU): on a 2-core machine that time can
 * overlap the main thread's own work before the first step (decoding the images, compiling
 * pipelines) instead of adding to it.
 *
 * @module
 */
import type { Rng } from "@webtune/data";
import {
  type Arch,
  ARCHITECTURES,
  initialStateDict,
  resnetSpec,
  type StateDict,
} from "@webtune/models";
import type { InitReply, InitRequest } from "./init_worker.ts";

/** The worker's module, next to this one. */
const INIT_WORKER = new URL("./init_worker.ts", import.meta.url);

/**
 * Whether this module can start {@linkcode INIT_WORKER}: a module Worker exists and the source
 * files are themselves the modules (Deno runs them from `file:` URLs). A bundle (the web page)
 * carries no `init_worker.ts` beside it, so there the weights are drawn in-thread.
 */
export function canInitInWorker(): boolean {
  return typeof Worker === "function" && INIT_WORKER.protocol === "file:";
}

/** Options for {@linkcode initialWeights}. */
export interface InitialWeightsOptions {
  /** Draw on a Worker (default {@linkcode canInitInWorker}); false: on this thread. */
  worker?: boolean;
  /** The worker module (tests point it at a missing file to exercise the fallback). */
  workerUrl?: URL;
}

/** What {@linkcode initialWeights} drew, and where. */
export interface InitialWeights {
  /** PyTorch's names and shapes; the data in the layout {@linkcode InitialWeights.layout} says. */
  stateDict: StateDict;
  /** `tfjs` from the Worker, which transposes too (load with `dataInTfjsLayout`). */
  layout: "torch" | "tfjs";
  /** False when drawn on the calling thread (asked to, or the worker failed). */
  onWorker: boolean;
}

/**
 * `initialStateDict(numClasses, () => rng.float(), arch)`, bit for bit, leaving `rng` where
 * that call would: drawn (and transposed to tfjs layout) on a Worker while the caller's thread
 * does other work. Should the worker fail to start or answer, the weights are drawn on this
 * thread instead.
 *
 * @example
 * ```ts ignore
 * const weights = initialWeights("resnet18", 2, createRng(0)); // starts drawing
 * await decodeImages(); // meanwhile, on this thread
 * const { stateDict, layout } = await weights;
 * loadStateDict(model, stateDict, { dataInTfjsLayout: layout === "tfjs" });
 * ```
 */
export async function initialWeights(
  arch: Arch,
  numClasses: number,
  rng: Rng,
  options: InitialWeightsOptions = {},
): Promise<InitialWeights> {
  const inThread = () => ({
    stateDict: initialStateDict(numClasses, () => rng.float(), arch),
    layout: "torch" as const,
    onWorker: false,
  });
  if (!(options.worker ?? canInitInWorker())) return inThread();
  let reply: InitReply;
  try {
    reply = await askWorker(options.workerUrl ?? INIT_WORKER, {
      spec: resnetSpec(arch, numClasses),
      features: ARCHITECTURES[arch].features,
      rngState: rng.getState(),
    });
  } catch {
    return inThread();
  }
  if ("error" in reply) throw new Error(`initial weights: ${reply.error}`);
  rng.setState(reply.rngState);
  return { stateDict: new Map(reply.entries), layout: "tfjs", onWorker: true };
}

/** One request to a fresh worker, which is closed once it answered or failed. */
function askWorker(url: URL, request: InitRequest): Promise<InitReply> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(url, { type: "module" });
    worker.onmessage = (event: MessageEvent<InitReply>) => {
      worker.terminate();
      resolve(event.data);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      worker.terminate();
      reject(new Error(event.message));
    };
    worker.postMessage(request);
  });
}
