/**
 * A small seeded random number generator.
 *
 * One {@linkcode Rng} drives shuffling, augmentation and (through `() => rng.float()`) model
 * initialisation, so a run is reproducible from its seed in Deno and in a browser alike.
 * `Math.random` cannot be seeded, and tfjs' own seeded ops live on the device; mulberry32 is a
 * 32-bit generator that is fast in plain JavaScript and good enough for data augmentation.
 *
 * @module
 */

/** A seeded pseudo-random generator (mulberry32). Not for cryptography. */
export class Rng {
  #state: number;

  /** Starts the sequence for `seed` (any integer; it is mixed so nearby seeds differ widely). */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
    // splitmix32 of the seed: mulberry32 started at 0, 1, 2... would begin too alike.
    let z = (Math.trunc(seed) + 0x9e3779b9) | 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    this.#state = (z ^ (z >>> 16)) | 0;
  }

  /** The generator's state; pass it to {@linkcode Rng.setState} to resume the sequence. */
  getState(): number {
    return this.#state;
  }

  /** Continues from a state returned by {@linkcode Rng.getState}. */
  setState(state: number): void {
    this.#state = state | 0;
  }

  /** Uniform in [0, 1), 32 bits of randomness. */
  float(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [a, b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.float();
  }

  /** A uniform integer in [lo, hi) (`hi` excluded, like `torch.randint`). */
  int(lo: number, hi: number): number {
    if (!(hi > lo)) throw new RangeError(`int(lo, hi) needs hi > lo, got ${lo}, ${hi}`);
    return lo + Math.floor(this.float() * (hi - lo));
  }

  /** Shuffles `array` in place (Fisher-Yates) and returns it. */
  shuffle<T>(array: T[]): T[];
  /** Shuffles a typed array in place and returns it. */
  shuffle<A extends Int32Array | Uint32Array | Float32Array>(array: A): A;
  shuffle<T>(array: { length: number; [i: number]: T }) {
    for (let i = array.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1));
      const t = array[i];
      array[i] = array[j];
      array[j] = t;
    }
    return array;
  }
}

/**
 * Creates a seeded {@linkcode Rng}.
 *
 * @example
 * ```ts
 * import { createRng } from "@webtune/data";
 * const rng = createRng(42);
 * const order = rng.shuffle([0, 1, 2, 3]);
 * const init = () => rng.float(); // what the core passes to model initialisation
 * console.log(order.length, init() < 1); // 4 true
 * ```
 */
export function createRng(seed: number): Rng {
  return new Rng(seed);
}
