/**
 * The page's storage in the browser (IndexedDB), so a reload loses nothing: the data set being
 * built, the source weights, and every trained model with its config and metrics. Everything
 * stays on this device, like the rest of the page.
 *
 * Hand-written over the raw IndexedDB API: three object stores and five calls do not justify a
 * dependency.
 *
 * @module
 */
import type { EpochMetrics, KernelChoiceStore } from "@webtune/core";
import type { BuilderState } from "./dataset_builder.ts";

/** A trained model as saved: the two files the CLI writes, plus what the list shows. */
export interface SavedModel {
  /** Unique key. */
  id: string;
  /** One line for the list, e.g. `hotdog, not-hotdog · 3 epochs · test acc 87.5%`. */
  title: string;
  /** When it was last saved (ms since the epoch). */
  savedAt: number;
  /** `config.json`, as the CLI writes it. */
  configJson: string;
  /** `model.safetensors`, as the CLI writes it. */
  weights: Uint8Array;
  /** Metrics of each completed epoch. */
  history: EpochMetrics[];
  classes: string[];
  /** Where the training data came from. */
  data: string;
}

/** Source weights as saved. */
export interface SavedSource {
  name: string;
  bytes: Uint8Array;
}

/** The browser refused to store more: its quota for this page is used up. */
export class QuotaError extends Error {
  override name = "QuotaError";
}

const DB_NAME = "webtune";
const VERSION = 1;
/** `models` holds {@linkcode SavedModel}s by id; `state` holds single values by name. */
const STORES = ["models", "state"] as const;
type StoreName = typeof STORES[number];

let opened: Promise<IDBDatabase> | undefined;

function db(): Promise<IDBDatabase> {
  opened ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, VERSION);
    request.onupgradeneeded = () => {
      for (const name of STORES) {
        if (!request.result.objectStoreNames.contains(name)) {
          request.result.createObjectStore(name, name === "models" ? { keyPath: "id" } : {});
        }
      }
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(storageError(request.error, "open the page's storage"));
  });
  return opened;
}

/** Turns IndexedDB's errors into one line; a full quota becomes a {@linkcode QuotaError}. */
function storageError(error: DOMException | null, what: string): Error {
  if (error?.name === "QuotaExceededError") {
    return new QuotaError(
      `The browser's storage for this page is full, so it could not ${what}: delete saved ` +
        "models (or download them first) to make room.",
    );
  }
  return new Error(`could not ${what} in the browser's storage: ${error?.message ?? "unknown"}`);
}

/** Runs one request in its own transaction; resolves when the transaction has committed. */
async function run<T>(
  store: StoreName,
  mode: IDBTransactionMode,
  what: string,
  op: (s: IDBObjectStore) => IDBRequest<T>,
): Promise<T> {
  const tx = (await db()).transaction(store, mode);
  const request = op(tx.objectStore(store));
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(request.result);
    // A quota error can surface on the request or only when the transaction aborts.
    tx.onabort = () => reject(storageError(tx.error ?? request.error, what));
    tx.onerror = () => reject(storageError(request.error ?? tx.error, what));
  });
}

/** Saves (or replaces) a trained model. */
export function saveModel(model: SavedModel): Promise<unknown> {
  return run("models", "readwrite", "save the model", (s) => s.put(model));
}

/** Every saved model, newest first. */
export async function listModels(): Promise<SavedModel[]> {
  const all = await run<SavedModel[]>("models", "readonly", "list the models", (s) => s.getAll());
  return all.sort((a, b) => b.savedAt - a.savedAt);
}

/** One saved model, or `undefined`. */
export function getModel(id: string): Promise<SavedModel | undefined> {
  return run("models", "readonly", "read the model", (s) => s.get(id));
}

/** Deletes a saved model. */
export function deleteModel(id: string): Promise<unknown> {
  return run("models", "readwrite", "delete the model", (s) => s.delete(id));
}

/** Named single values the page keeps. */
interface StateValues {
  /** The data set being built in the page. */
  dataset: BuilderState;
  /** The data zip last opened (a built set is opened as a zip too). */
  data: File;
  /** The source weights last chosen. */
  source: SavedSource;
  /** `--kernels auto`'s measured choices, per adapter (see core/kernels/autotune.ts). */
  kernelChoices: Record<string, string>;
}

/** Saves one named value (the data set being built, the source weights). */
export function putState<K extends keyof StateValues>(
  key: K,
  value: StateValues[K],
): Promise<unknown> {
  return run("state", "readwrite", `keep the ${key}`, (s) => s.put(value, key));
}

/** Reads one named value. */
export function getState<K extends keyof StateValues>(
  key: K,
): Promise<StateValues[K] | undefined> {
  return run("state", "readonly", `read the ${key}`, (s) => s.get(key));
}

/** Removes one named value. */
export function deleteState(key: keyof StateValues): Promise<unknown> {
  return run("state", "readwrite", `forget the ${key}`, (s) => s.delete(key));
}

/**
 * The page's store of measured kernel choices (a value of the `state` store), so that a reload's
 * first training step already runs the winners. What is read back is core's to validate.
 *
 * @example
 * ```ts ignore
 * await setupBackend({ backend: "webgpu", kernelStore: kernelChoiceStore() });
 * ```
 */
export function kernelChoiceStore(): KernelChoiceStore {
  return {
    load: async () => (await getState("kernelChoices")) ?? {},
    save: async (choices) => void await putState("kernelChoices", choices),
  };
}

/**
 * Storage used and allowed for this page, as one line (e.g. `12.3 MB of 2.1 GB used`), or
 * `undefined` where the browser does not say.
 */
export async function storageLine(): Promise<string | undefined> {
  const estimate = await navigator.storage?.estimate?.();
  if (!estimate || estimate.usage === undefined || estimate.quota === undefined) return undefined;
  return `${megabytes(estimate.usage)} of ${megabytes(estimate.quota)} used in this browser`;
}

function megabytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}
