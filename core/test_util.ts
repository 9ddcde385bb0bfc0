/**
 * Helpers for the core package's tests: a tiny classifier that satisfies {@linkcode TrainableModel}
 * so the loop, optimizer and events can be tested without ResNet-18's cost, and a run directory
 * in memory.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { HostBatch } from "./batches.ts";
import type { TrainableModel } from "./model.ts";
import type { RunDirFs } from "./run_dir.ts";

/** `logits = mean_{h,w}(x) · W + b`, with parameters named like a torchvision head. */
export class TinyModel implements TrainableModel {
  readonly numClasses: number;
  readonly body: tf.Variable;
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(numClasses: number, random: () => number) {
    this.numClasses = numClasses;
    const init = (shape: number[]) =>
      tf.tensor(
        Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() - 0.5),
        shape,
      );
    this.body = tf.variable(init([3, 3]), true);
    this.weight = tf.variable(init([3, numClasses]), true);
    this.bias = tf.variable(tf.zeros([numClasses]), true);
  }

  parameters(): [string, tf.Variable][] {
    return [["conv1.weight", this.body], ["fc.weight", this.weight], ["fc.bias", this.bias]];
  }

  forward(x: tf.Tensor4D): { logits: tf.Tensor2D } {
    return tf.tidy(() => {
      const pooled = tf.mean(x, [1, 2]) as tf.Tensor2D;
      const hidden = tf.relu(tf.matMul(pooled, this.body as tf.Tensor2D));
      return { logits: tf.add(tf.matMul(hidden, this.weight as tf.Tensor2D), this.bias) };
    });
  }

  dispose(): void {
    this.body.dispose();
    this.weight.dispose();
    this.bias.dispose();
  }
}

/** Two separable classes: class 0 is bright in channel 0, class 1 in channel 2. */
export function separableBatches(count: number, batchSize: number, size = 4): HostBatch[] {
  const batches: HostBatch[] = [];
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const x = new Float32Array(n * size * size * 3);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const label = (start + i) % 2;
      labels[i] = label;
      for (let p = 0; p < size * size; p++) x[(i * size * size + p) * 3 + label * 2] = 1;
    }
    batches.push({ x, shape: [n, size, size, 3], labels });
  }
  return batches;
}

/** An async iterable over fixed batches. */
export async function* iterate(batches: HostBatch[]): AsyncIterable<HostBatch> {
  for (const b of batches) yield b;
}

/** A seeded uniform [0, 1) generator (a 32-bit LCG): tests' deterministic weights and data. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** A run directory in memory: the adapter is all RunDir sees of a file system. */
export function memoryFs(): RunDirFs & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  const under = (dir: string) => [...files.keys()].filter((p) => p.startsWith(`${dir}/`));
  return {
    files,
    stat: (p) =>
      Promise.resolve(
        files.has(p)
          ? { isFile: true, isDirectory: false, size: files.get(p)!.length }
          : under(p).length > 0
          ? { isFile: false, isDirectory: true, size: 0 }
          : undefined,
      ),
    readDir: (dir) =>
      Promise.resolve(
        [...new Set(under(dir).map((p) => p.slice(dir.length + 1).split("/")[0]))].map((name) => ({
          name,
          isFile: files.has(`${dir}/${name}`),
          isDirectory: !files.has(`${dir}/${name}`),
          isSymlink: false,
        })),
      ),
    readFile: (p) =>
      files.has(p) ? Promise.resolve(files.get(p)!) : Promise.reject(new Error("not found")),
    writeFile: (p, data) => Promise.resolve(void files.set(p, data)),
    mkdir: () => Promise.resolve(),
    rename: (from, to) => {
      files.set(to, files.get(from)!);
      files.delete(from);
      return Promise.resolve();
    },
    remove: (p, options) => {
      files.delete(p);
      if (options?.recursive) { for (const q of under(p)) files.delete(q); }
      return Promise.resolve();
    },
  };
}
