/**
 * `--kernels auto`'s measured choices in a JSON file of the cache directory, so a second run's
 * first step already uses the winners: `<cache>/kernel-choices.json` (cache: `$WEBTUNE_CACHE`,
 * else `$XDG_CACHE_HOME/webtune`, else `~/.cache/webtune`). One file for every adapter: the
 * keys name the adapter and the kernel-set version.
 *
 * @module
 */
import { atomicWrite } from "@webtune/core";
import type { KernelChoiceStore } from "@webtune/core/kernels";
import { denoFs } from "@webtune/data/deno_fs";
import { cacheDir } from "./sources.ts";

/** The cache file's name in the cache directory. */
export const KERNEL_CHOICES_FILE = "kernel-choices.json";

/**
 * A store in the JSON file `path`. A missing file is an empty store; an unreadable or invalid one
 * makes `load` throw an error naming the file (core's tuner then warns and ignores it). `save`
 * writes a temporary file and renames it over the old one.
 *
 * @example
 * ```ts ignore
 * const store = fileKernelStore("/tmp/kernel-choices.json");
 * await store.save({ "a :: b": "fast" });
 * await store.load(); // { "a :: b": "fast" }
 * ```
 */
export function fileKernelStore(path: string): KernelChoiceStore {
  return {
    async load() {
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return {};
        throw new Error(`${path}: cannot read (${(e as Error).message})`);
      }
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
      }
    },
    save: (choices) => atomicWrite(denoFs, path, `${JSON.stringify(choices, null, 1)}\n`),
  };
}

/** The store in the cache directory, or undefined where there is none (no HOME). */
export function defaultKernelStore(): KernelChoiceStore | undefined {
  let dir: string;
  try {
    dir = cacheDir();
  } catch {
    return undefined;
  }
  return fileKernelStore(`${dir}/${KERNEL_CHOICES_FILE}`);
}
