/**
 * `window.webtune`: a small read-only view of the page's state for debugging in the console and
 * for the browser test, which waits on it instead of sleeping.
 *
 * @module
 */
import type { AdapterReport, ClassReport, EpochMetrics } from "@webtune/core";
import type { BuilderHook } from "./builder_view.ts";
import type { LiveHook } from "./camera_predict.ts";
import type { SavedHook } from "./saved_view.ts";
import type { Prediction } from "./session.ts";

/** Where the page is in its life. */
export type PageState =
  | "starting"
  | "no-webgpu"
  | "idle"
  | "preparing"
  | "training"
  | "stopped"
  | "trained";

/** What `window.webtune` shows. */
export interface WebtuneHook {
  state: PageState;
  /** The backend in use, once set up. */
  backend?: AdapterReport;
  /** Whether webtune's own WebGPU kernels replace tfjs' stock ones. */
  fastKernels?: boolean;
  /** The last error shown on the page (cleared when the next action starts). */
  error?: string;
  /** Actions still running (loading data or weights, predicting, ...). */
  busy: number;
  /** The loaded data set: class names and images per class in each split. */
  data?: { description: string; classes: string[]; train: number[]; test: number[] };
  /** The loaded source checkpoint. */
  source?: { name: string; fc: string };
  /** Completed epochs of the current run. */
  history: EpochMetrics[];
  /** Loss of every batch trained in the current run. */
  batchLosses: number[];
  /** Training examples per second of the last finished training call. */
  examplesPerSec?: number;
  /** The last predictions shown. */
  predictions: Prediction[];
  /** The last confusion matrix shown. */
  report?: ClassReport;
  /** The data set being built in the page. */
  builder?: BuilderHook;
  /** Saved models, storage use, and whether a reload's restore is done. */
  saved?: SavedHook;
  /** Live camera prediction. */
  live?: LiveHook;
  /** `tf.memory().numTensors`: must not grow from one training to the next. */
  numTensors(): number;
  /**
   * Test only, present with `?test-device-loss`: destroys the WebGPU device in use, as a driver
   * reset would lose it (see main.ts).
   */
  destroyDevice?: () => void;
}

/** Publishes the hook as `window.webtune`. */
export function publishHook(hook: WebtuneHook): void {
  (globalThis as { webtune?: WebtuneHook }).webtune = hook;
}
