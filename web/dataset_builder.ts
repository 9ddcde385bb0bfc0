/**
 * A data set built in the page, Teachable Machine's way: classes by name, each filled with
 * images (dropped, picked, or camera snapshots), split into train and test by a seeded fixed
 * fraction or kept as a separate test set, and written as a zip in the hotdog layout
 * (`train/<class>/*`, `test/<class>/*`) — the layout `deno task finetune --data` reads.
 *
 * No DOM here (only `Blob`), so Deno tests it.
 *
 * @module
 */
import { zipSync } from "fflate";
import { createRng, probeImage } from "@webtune/data";

/** One image of a class. */
export interface BuilderImage {
  /** Unique within the builder. */
  id: string;
  /** File name inside the class folder of the zip. */
  name: string;
  /** The encoded JPEG or PNG, as dropped, picked or captured. */
  blob: Blob;
}

/** A class and its images. */
export interface BuilderClass {
  name: string;
  /** Images that the split divides between train and test (all train with a separate test set). */
  images: BuilderImage[];
  /** The separate test set's images of this class (used only with `split.kind === "separate"`). */
  test: BuilderImage[];
}

/** How the test split is made. */
export type BuilderSplit =
  | { kind: "fraction"; fraction: number; seed: number }
  | { kind: "separate" };

/** What a builder saves and restores (IndexedDB keeps `Blob`s as they are). */
export interface BuilderState {
  classes: BuilderClass[];
  split: BuilderSplit;
}

/** The default split: 20% of each class held out, seed 0. */
export const DEFAULT_SPLIT: BuilderSplit = { kind: "fraction", fraction: 0.2, seed: 0 };

/** Which images go where, per class (class order = the builder's order). */
export interface SplitImages {
  classes: string[];
  train: BuilderImage[][];
  test: BuilderImage[][];
}

/**
 * Why `name` cannot be a class folder, or `undefined` if it can. Class names become folder
 * names in the zip, so path separators and `.`/`..` are refused.
 */
export function classNameProblem(name: string, existing: readonly string[]): string | undefined {
  if (name.trim() === "") return "a class needs a name";
  if (name !== name.trim()) return `"${name}": no spaces at the start or end of a class name`;
  // Control characters cannot be in a file name on most systems either.
  // deno-lint-ignore no-control-regex
  if (/[\\/:*?"<>|\u0000-\u001f]/.test(name)) {
    return `"${name}": a class name cannot contain / \\ : * ? " < > |`;
  }
  if (name === "." || name === ".." || name.startsWith(".")) {
    return `"${name}": a class name cannot start with a dot`;
  }
  if (existing.includes(name)) return `there is already a class "${name}"`;
  return undefined;
}

let nextId = 0;

/**
 * The data set being built. Mutated by the page's builder view, saved as a
 * {@linkcode BuilderState}.
 *
 * @example
 * ```ts ignore
 * const builder = new DatasetBuilder();
 * builder.addClass("hotdog");
 * await builder.addImages("hotdog", [file]);
 * const zip = builder.toZip(); // train/hotdog/..., test/hotdog/...
 * ```
 */
export class DatasetBuilder {
  classes: BuilderClass[] = [];
  split: BuilderSplit = { ...DEFAULT_SPLIT };

  /** A builder restored from a saved state. */
  static from(state: BuilderState): DatasetBuilder {
    const builder = new DatasetBuilder();
    builder.classes = state.classes;
    builder.split = state.split;
    return builder;
  }

  /** What to save. */
  state(): BuilderState {
    return { classes: this.classes, split: this.split };
  }

  /** Adds an empty class; throws with a one-line reason if the name cannot be a folder. */
  addClass(name: string): void {
    const problem = classNameProblem(name, this.classes.map((c) => c.name));
    if (problem) throw new Error(problem);
    this.classes.push({ name, images: [], test: [] });
  }

  /** Removes a class and its images. */
  removeClass(name: string): void {
    this.classes = this.classes.filter((c) => c.name !== name);
  }

  /**
   * Adds the JPEG and PNG files among `files` to a class (`"test"`: to its separate test set).
   * Other files are left out, since the data pipeline could not decode them.
   *
   * @returns how many files were not images.
   */
  async addImages(
    className: string,
    files: readonly { name: string; blob: Blob }[],
    set: "images" | "test" = "images",
  ): Promise<number> {
    const cls = this.#class(className);
    let skipped = 0;
    for (const { name, blob } of files) {
      // Only the header: enough to know the decoder will take it.
      const head = new Uint8Array(await blob.slice(0, 256 * 1024).arrayBuffer());
      const header = probeImage(head);
      if (!header) {
        skipped++;
        continue;
      }
      const taken = new Set([...cls.images, ...cls.test].map((i) => i.name));
      cls[set].push({
        id: `img${Date.now().toString(36)}-${nextId++}`,
        name: uniqueName(safeFileName(name, header.format), taken),
        blob,
      });
    }
    return skipped;
  }

  /** Removes one image (from either set) by id. */
  removeImage(id: string): void {
    for (const cls of this.classes) {
      cls.images = cls.images.filter((i) => i.id !== id);
      cls.test = cls.test.filter((i) => i.id !== id);
    }
  }

  /**
   * The train and test images of each class. With a fraction, each class's images are shuffled
   * by the seed and `round(n × fraction)` of them (at least 1, leaving at least 1 to train on)
   * are held out, so the same images and seed always give the same split.
   */
  splitImages(): SplitImages {
    const split = this.split;
    const train: BuilderImage[][] = [], test: BuilderImage[][] = [];
    for (const cls of this.classes) {
      if (split.kind === "separate") {
        train.push([...cls.images]);
        test.push([...cls.test]);
        continue;
      }
      // Sorted by name first (unique in a class) so the split does not depend on the order the
      // images were added in.
      const shuffled = [...cls.images].sort((a, b) => (a.name < b.name ? -1 : 1));
      // One stream per class, so adding images to one class leaves the others' split alone.
      createRng(split.seed + hashName(cls.name)).shuffle(shuffled);
      const n = shuffled.length;
      const held = n < 2 ? 0 : Math.min(n - 1, Math.max(1, Math.round(n * split.fraction)));
      test.push(shuffled.slice(0, held));
      train.push(shuffled.slice(held));
    }
    return { classes: this.classes.map((c) => c.name), train, test };
  }

  /** Why the set cannot be trained on or exported yet, or `undefined` when it can. */
  problem(): string | undefined {
    if (this.classes.length < 2) return "add at least two classes";
    const { train, test } = this.splitImages();
    for (const [i, cls] of this.classes.entries()) {
      if (train[i].length === 0) return `class "${cls.name}" has no training images`;
      if (test[i].length === 0) {
        return this.split.kind === "separate"
          ? `class "${cls.name}" has no test images`
          : `class "${cls.name}" needs at least 2 images (one is held out for testing)`;
      }
    }
    return undefined;
  }

  /**
   * The data set as a zip in the hotdog layout inside one top folder `name`. Stored, not
   * deflated: JPEG and PNG are compressed already.
   */
  async toZip(name = "dataset"): Promise<Uint8Array> {
    const problem = this.problem();
    if (problem) throw new Error(`cannot export the data set: ${problem}`);
    const { classes, train, test } = this.splitImages();
    const entries: Record<string, Uint8Array> = {};
    for (const [split, lists] of [["train", train], ["test", test]] as const) {
      for (const [i, images] of lists.entries()) {
        for (const image of images) {
          entries[`${name}/${split}/${classes[i]}/${image.name}`] = new Uint8Array(
            await image.blob.arrayBuffer(),
          );
        }
      }
    }
    return zipSync(entries, { level: 0 });
  }

  #class(name: string): BuilderClass {
    const cls = this.classes.find((c) => c.name === name);
    if (!cls) throw new Error(`no class "${name}"`);
    return cls;
  }
}

/** A file name the zip and every OS accept, with the extension the decoder expects. */
function safeFileName(name: string, format: "jpeg" | "png"): string {
  const base = name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 60) ||
    "image";
  return `${base}.${format === "jpeg" ? "jpg" : "png"}`;
}

function uniqueName(name: string, taken: Set<string>): string {
  if (!taken.has(name)) return name;
  const dot = name.lastIndexOf(".");
  for (let k = 2;; k++) {
    const candidate = `${name.slice(0, dot)}-${k}${name.slice(dot)}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/** A small stable number from a class name (FNV-1a), to give each class its own shuffle. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h >>> 0) % 1_000_003;
}
