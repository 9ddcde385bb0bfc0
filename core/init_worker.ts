/**
 * The module Worker behind `initialWeights` (initial_weights.ts): draws a new model's initial
 * state dict from a given generator state, on another thread. It imports only the tfjs-free
 * modules it needs: the packages' entry points would load tfjs and image-js first (~0.5 s).
 *
 * @module
 */
import { createRng } from "@webtune/data/rng";
import { drawStateDict } from "@webtune/models/init";
import { toTfjsLayout } from "@webtune/models/layout";
import type { EntrySpec, HostTensor } from "@webtune/models";

/** What the worker is asked: `drawStateDict`'s arguments, the generator as its state. */
export interface InitRequest {
  spec: EntrySpec[];
  features: number;
  /** The generator's state (`Rng.getState()`) before the first draw. */
  rngState: number;
}

/**
 * The worker's answer: the state dict's entries, their data already in tfjs layout (the shapes
 * PyTorch's; `loadStateDict`'s `dataInTfjsLayout`), and the generator's state after them.
 */
export type InitReply = { entries: [string, HostTensor][]; rngState: number } | { error: string };

/** The worker side of messaging, typed without a DOM or Deno worker lib. */
interface WorkerScope {
  onmessage: ((event: MessageEvent<InitRequest>) => void) | null;
  postMessage(message: InitReply, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
scope.onmessage = ({ data }) => {
  let reply: InitReply;
  try {
    const rng = createRng(0);
    rng.setState(data.rngState);
    const sd = drawStateDict(data.spec, data.features, () => rng.float());
    // Transposed here, off the thread that waits for the weights.
    for (const t of sd.values()) {
      if (t.dtype === "float32") t.data = toTfjsLayout(t.data as Float32Array, t.shape);
    }
    reply = { entries: [...sd], rngState: rng.getState() };
  } catch (e) {
    scope.postMessage({ error: (e as Error).message });
    return;
  }
  // Moved, not copied: 45 MB for a ResNet-18.
  scope.postMessage(reply, reply.entries.map(([, t]) => t.data.buffer as ArrayBuffer));
};
