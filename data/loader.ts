/**
 * Batches of transformed images, decoded once per run and prepared ahead of the training loop.
 *
 * @module
 */
import { DecodeError } from "./decode.ts";
import { joinPath } from "./fs.ts";
import type { RgbImage } from "./image.ts";
import { LayoutError } from "./image_folder.ts";
import type { ImageSet, SkippedFile } from "./image_set.ts";
import { resizeBilinear } from "./resample.ts";
import type { Rng } from "./rng.ts";
import {
  type Normalization,
  normalizeInto,
  resizedCropInto,
  testCrop,
  type TrainCropParams,
  trainCropParams,
  type TrainTransformOptions,
} from "./transforms.ts";

/** Which transform a loader applies: d2l's train augmentation or its test transform. */
export type TransformSpec =
  | ({ kind: "train" } & TrainTransformOptions)
  | {
    kind: "test";
    size: number; /** `Resize([resize, resize])` before the crop. */
    resize: number;
  };

/** One batch, as plain typed arrays (the core turns them into tensors). */
export interface Batch {
  /** Normalised pixels, NHWC. */
  x: Float32Array;
  /** `[n, size, size, 3]`: `n` is the batch size, or less for the last batch. */
  shape: [number, number, number, 3];
  /** Class index per image. */
  labels: Int32Array;
  /** Index of each image in the {@linkcode ImageSet}. */
  indices: Int32Array;
  /**
   * Optional: hands `x`'s memory back to the loader for a later batch, sparing a 38 MB
   * allocation per batch of 64 at 224 px. Call it only when nothing reads `x` any more: tfjs'
   * `tensor(x)` keeps a reference to `x` until the data is uploaded, so release after the step
   * that used the tensor has run (e.g. after reading its loss). Not calling it is always safe.
   */
  release(): void;
}

/** Options for {@linkcode createBatchLoader}. */
export interface BatchLoaderOptions {
  /** The train or test transform, and the output size. */
  transform: TransformSpec;
  /** `Normalize`'s mean/std: the source model's (its pretrained config). */
  normalize: Normalization;
  /** Images per batch. */
  batchSize: number;
  /** Drives shuffling and augmentation. Required for the train transform or `shuffle`. */
  rng?: Rng;
  /** Reshuffle every epoch. Default: true for the train transform, false for test. */
  shuffle?: boolean;
  /** Drop the last, smaller batch (PyTorch's `drop_last`). Default false. */
  dropLast?: boolean;
  /** Batches prepared ahead of the one being consumed. Default 1. */
  prefetch?: number;
  /** Memory for decoded images, in bytes. Default 1 GiB. */
  cacheBytes?: number;
  /**
   * Train transform only: if the decoded originals do not all fit in `cacheBytes`, images are
   * kept downscaled to this longest side (PIL bilinear). Default `2 * size`.
   */
  cacheMaxSide?: number;
  /** Called while {@linkcode BatchLoader.prepare} decodes. */
  onProgress?: (done: number, total: number) => void;
}

/** What {@linkcode BatchLoader.prepare} found. */
export interface PrepareReport {
  /** Images usable for batches. */
  images: number;
  /** Files left out: not an image extension, or undecodable. */
  skipped: SkippedFile[];
  /** Images held in memory (the others are decoded again when needed). */
  cachedImages: number;
  /** Bytes of those images. */
  cachedBytes: number;
  /** Images kept downscaled (train transform only; 0 when everything fits at full size). */
  downscaled: number;
  /** Longest side the cache keeps (`Infinity`: originals). */
  cacheMaxSide: number;
  /** Seconds spent decoding. */
  seconds: number;
}

interface Entry {
  index: number;
  width: number;
  height: number;
  /** Train: the original or its downscaled copy. Test: the final `size` x `size` crop. */
  cached?: RgbImage;
}

const DEFAULT_CACHE_BYTES = 1024 ** 3;
const YIELD_EVERY = 8;

function skip(path: string, e: Error): SkippedFile {
  const prefix = `${path}: `;
  return {
    path,
    reason: e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message,
  };
}

/**
 * Lets timers, I/O and GPU callbacks run between chunks of CPU work. A message through a fresh
 * MessageChannel is a macrotask without setTimeout's clamping (about 2 ms per call in Deno, 4 ms
 * in nested browser timers, against 0.06 ms); closing the port keeps it from holding Deno's event
 * loop open.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/**
 * Throws {@linkcode LayoutError} for a class none of whose files decoded: like an empty class
 * folder (which the listing refuses), it would train a classifier that never sees the class.
 */
function checkEveryClassHasImages(
  set: ImageSet,
  kept: readonly Entry[],
  skipped: readonly SkippedFile[],
): void {
  const perClass = new Int32Array(set.classes.length);
  for (const entry of kept) perClass[set.labels[entry.index]]++;
  const label = perClass.indexOf(0);
  if (label < 0) return;
  const labelOf = new Map(set.paths.map((path, i) => [path, set.labels[i]]));
  const failed = skipped.filter((s) => labelOf.get(s.path) === label);
  const example = failed.length > 0 ? `, e.g. ${failed[0].path}: ${failed[0].reason}` : "";
  throw new LayoutError(
    `${joinPath(set.name, set.classes[label])}: class folder has no usable images ` +
      `(all ${failed.length} image file${failed.length === 1 ? "" : "s"} skipped${example})`,
  );
}

/**
 * Makes batches from an {@linkcode ImageSet}.
 *
 * `prepare()` (called by the first `epoch()` if not before) reads every image's header and
 * decodes every image once. Undecodable files are left out and reported, so the sample list is
 * fixed before the first batch; a class left with no images is an error
 * ({@linkcode LayoutError}), as an empty class folder is. Decoded images are kept in a memory cache bounded by
 * `cacheBytes`: for the test transform the final crop is kept (the transform is deterministic);
 * for the train transform `RandomResizedCrop` needs the whole image, so the original is kept if
 * all originals fit, otherwise a copy downscaled to `cacheMaxSide` (crops are then drawn on the
 * original's size and taken from the copy: the same random choices, slightly softer pixels than
 * torchvision's). Images that do not fit are decoded again when used.
 *
 * Each epoch reshuffles with `rng` (if shuffling), then builds batches in order, `prefetch`
 * ahead of the consumer, yielding to the event loop every few images so training can run in
 * between. A batch's random numbers are all drawn when its preparation starts, so the sequence
 * depends only on the seed, not on timing.
 *
 * @example
 * ```ts ignore
 * import { createBatchLoader, createRng } from "@webtune/data";
 * const rng = createRng(0);
 * const loader = createBatchLoader(trainSet, {
 *   transform: { kind: "train", size: 224 },
 *   normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
 *   batchSize: 128,
 *   rng,
 * });
 * for await (const { x, shape, labels } of loader.epoch()) {
 *   // tf.tensor4d(x, shape), tf.tensor1d(labels, "int32") ...
 * }
 * ```
 */
export function createBatchLoader(set: ImageSet, options: BatchLoaderOptions): BatchLoader {
  return new BatchLoader(set, options);
}

/** See {@linkcode createBatchLoader}. */
export class BatchLoader {
  /** The images batched. */
  readonly set: ImageSet;
  /** The options it was made with. */
  readonly options: BatchLoaderOptions;
  #entries: Entry[] = [];
  #report?: PrepareReport;
  /** Released batch buffers, reused by later batches of the same size. */
  #pool: Float32Array[] = [];
  #preparing?: Promise<PrepareReport>;

  /** Checks the options; decoding waits for {@linkcode BatchLoader.prepare}. */
  constructor(set: ImageSet, options: BatchLoaderOptions) {
    const { batchSize, transform } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    }
    if (!Number.isInteger(transform.size) || transform.size < 1) {
      throw new RangeError(`transform size must be a positive integer, got ${transform.size}`);
    }
    const shuffle = options.shuffle ?? transform.kind === "train";
    if ((shuffle || transform.kind === "train") && !options.rng) {
      throw new Error("a loader that shuffles or augments needs an rng");
    }
    this.set = set;
    this.options = options;
  }

  /** Usable images (after {@linkcode BatchLoader.prepare}). */
  get size(): number {
    return this.#entries.length;
  }

  /** Batches per epoch (after {@linkcode BatchLoader.prepare}). */
  get batchesPerEpoch(): number {
    const n = this.#entries.length, b = this.options.batchSize;
    return this.options.dropLast ? Math.floor(n / b) : Math.ceil(n / b);
  }

  /** Probes and decodes every image once (only the first call does work). */
  prepare(): Promise<PrepareReport> {
    this.#preparing ??= this.#prepare();
    return this.#preparing;
  }

  async #prepare(): Promise<PrepareReport> {
    const started = performance.now();
    const { set, options } = this;
    const spec = options.transform;
    const skipped: SkippedFile[] = [...set.ignored];
    const budget = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    const n = set.labels.length;
    const entries: Entry[] = [];
    let fullBytes = 0;
    for (let index = 0; index < n; index++) {
      try {
        const { width, height } = await set.probe(index);
        entries.push({ index, width, height });
        fullBytes += width * height * 3;
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        skipped.push(skip(set.paths[index], e));
      }
    }
    const maxSide = spec.kind === "test" || fullBytes <= budget
      ? Infinity
      : options.cacheMaxSide ?? 2 * spec.size;
    let cachedBytes = 0, cachedImages = 0, downscaled = 0;
    const kept: Entry[] = [];
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k];
      let base: RgbImage;
      try {
        base = await set.load(entry.index);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        skipped.push(skip(set.paths[entry.index], e));
        continue;
      }
      if (base.width !== entry.width || base.height !== entry.height) {
        // e.g. EXIF orientation applied: the header's size is the stored one.
        entry.width = base.width;
        entry.height = base.height;
      }
      if (spec.kind === "test") {
        base = testCrop(base, spec.size, spec.resize);
      } else if (Math.max(base.width, base.height) > maxSide) {
        const s = maxSide / Math.max(base.width, base.height);
        base = resizeBilinear(
          base,
          Math.max(1, Math.round(base.width * s)),
          Math.max(1, Math.round(base.height * s)),
        );
        downscaled++;
      }
      if (cachedBytes + base.data.length <= budget) {
        entry.cached = base;
        cachedBytes += base.data.length;
        cachedImages++;
      }
      kept.push(entry);
      options.onProgress?.(k + 1, entries.length);
      if (k % YIELD_EVERY === YIELD_EVERY - 1) await yieldToEventLoop();
    }
    if (kept.length === 0) throw new LayoutError(`${set.name}: no decodable images`);
    checkEveryClassHasImages(set, kept, skipped);
    this.#entries = kept;
    this.#report = {
      images: kept.length,
      skipped,
      cachedImages,
      cachedBytes,
      downscaled,
      cacheMaxSide: maxSide,
      seconds: (performance.now() - started) / 1000,
    };
    return this.#report;
  }

  /** Yields one epoch of batches; reshuffles first if shuffling. */
  async *epoch(): AsyncGenerator<Batch> {
    await this.prepare();
    const { batchSize, rng } = this.options;
    const order = Int32Array.from(this.#entries.keys());
    if (this.options.shuffle ?? this.options.transform.kind === "train") rng!.shuffle(order);
    const count = this.batchesPerEpoch;
    const ahead = Math.max(0, this.options.prefetch ?? 1);
    const pending: Promise<Batch>[] = [];
    let started = 0;
    const startNext = () => {
      if (started >= count) return;
      const from = started * batchSize;
      const ids = order.subarray(from, Math.min(from + batchSize, order.length));
      started++;
      const batch = this.#makeBatch(ids);
      batch.catch(() => {}); // surfaced when awaited; avoids an unhandled rejection meanwhile
      pending.push(batch);
    };
    try {
      while (pending.length > 0 || started < count) {
        while (started < count && pending.length <= ahead) startNext();
        yield await pending.shift()!;
      }
    } finally {
      // A consumer that stops early leaves no work running against a stale order.
      await Promise.allSettled(pending);
    }
  }

  #makeBatch(ids: Int32Array): Promise<Batch> {
    const spec = this.options.transform;
    const size = spec.size;
    const entries = Array.from(ids, (i) => this.#entries[i]);
    // Draw every random number now, in batch order, so timing cannot reorder the draws.
    const plans: TrainCropParams[] | undefined = spec.kind === "train"
      ? entries.map((e) => trainCropParams(e.width, e.height, spec, this.options.rng!))
      : undefined;
    return (async () => {
      await yieldToEventLoop();
      const n = entries.length;
      const pixels = size * size * 3;
      const x = this.#take(n * pixels);
      const labels = new Int32Array(n);
      const indices = new Int32Array(n);
      for (let j = 0; j < n; j++) {
        const entry = entries[j];
        labels[j] = this.set.labels[entry.index];
        indices[j] = entry.index;
        let base = entry.cached;
        if (!base) {
          base = await this.set.load(entry.index);
          if (spec.kind === "test") base = testCrop(base, size, spec.resize);
        }
        if (plans) {
          resizedCropInto(
            base,
            plans[j].box,
            size,
            entry,
            x,
            j * pixels,
            this.options.normalize,
            plans[j].flip,
          );
        } else {
          normalizeInto(base, x, j * pixels, this.options.normalize);
        }
        if (j % YIELD_EVERY === YIELD_EVERY - 1) await yieldToEventLoop();
      }
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        if (this.#pool.length < (this.options.prefetch ?? 1) + 2) this.#pool.push(x);
      };
      return { x, shape: [n, size, size, 3], labels, indices, release };
    })();
  }

  #take(length: number): Float32Array {
    const i = this.#pool.findIndex((b) => b.length === length);
    // Every element is overwritten, so a recycled buffer needs no clearing.
    return i >= 0 ? this.#pool.splice(i, 1)[0] : new Float32Array(length);
  }
}

/**
 * One line about what {@linkcode BatchLoader.prepare} skipped, or `undefined` if nothing:
 * `skipped 3 files: a.txt (not an image file extension), b.jpg (...), ...`.
 */
export function describeSkipped(skipped: readonly SkippedFile[], show = 3): string | undefined {
  if (skipped.length === 0) return undefined;
  const names = skipped.slice(0, show).map((s) => `${s.path} (${s.reason})`).join(", ");
  const more = skipped.length > show ? `, and ${skipped.length - show} more` : "";
  return `skipped ${skipped.length} file${skipped.length === 1 ? "" : "s"}: ${names}${more}`;
}
