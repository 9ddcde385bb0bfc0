/**
 * PyTorch's weight initialisers, driven by a caller-supplied uniform RNG so that runs are
 * reproducible from a seed (the numbers differ from PyTorch's, the distributions do not).
 *
 * Every function fills a tensor in PyTorch layout (conv OIHW, linear [out, in]) and reads its
 * fan-in/fan-out the way `torch.nn.init._calculate_fan_in_and_fan_out` does.
 *
 * @module
 */
import type { EntrySpec } from "./resnet.ts";
import { type HostTensor, numel, type StateDict } from "./types.ts";

/** A uniform random number generator on [0, 1), like `Math.random`. */
export type Random = () => number;

/** fan_in and fan_out of a PyTorch weight: dims 1 and 0, times the receptive field size. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const receptive = numel(shape.slice(2));
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/** A float32 tensor of `shape` filled with `value` (`nn.init.constant_`). */
export function constant(shape: number[], value: number): HostTensor {
  return { dtype: "float32", shape, data: new Float32Array(numel(shape)).fill(value) };
}

/** U(-bound, bound) (`nn.init.uniform_(-bound, bound)`). */
export function uniform(shape: number[], bound: number, random: Random): HostTensor {
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = (2 * random() - 1) * bound;
  return { dtype: "float32", shape, data };
}

/**
 * Fills `out` with N(0, std²) samples by the Box-Muller transform: each pair of uniforms gives
 * two normals (cos and sin of the same angle). Written as one flat loop because a ResNet-18 init
 * draws 11 million of them.
 *
 * Every value is `Math.fround(r * Math.cos(2π·u))` (and `sin`), bit for bit, but `Math.cos` and
 * `Math.sin` took about 70% of the init's CPU time: a cold start spends it before its first step.
 * So the angle's cosine and sine come from short polynomials, and the exact functions run only
 * when the float32 result could depend on the difference (see {@linkcode roundsAlike}): a few
 * hundred of 11 million draws, measured.
 *
 * @example
 * ```ts
 * import { fillNormal } from "./init.ts";
 * const w = fillNormal(new Float32Array(4), 0.1, Math.random);
 * console.log(w.length); // 4
 * ```
 */
export function fillNormal(out: Float32Array, std: number, random: Random): Float32Array {
  const halfPi = Math.PI / 2, trigSlack = TRIG_SLACK;
  for (let i = 0; i < out.length; i += 2) {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    const r = std * Math.sqrt(-2 * Math.log(1 - random()));
    const turn = random();
    let cos = NaN, sin = NaN;
    // Only a uniform in [0, 1) picks its quadrant right below (and NaN fails both tests).
    if (turn >= 0 && turn < 1) {
      // 2π·turn = (quarter + f)·π/2 with |f| ≤ 1/2: 4·turn and its difference are exact.
      const quarter = Math.round(4 * turn);
      const a = (4 * turn - quarter) * halfPi;
      const s = sinTaylor(a), c = cosTaylor(a);
      const q = quarter & 3;
      cos = q === 0 ? c : q === 1 ? -s : q === 2 ? -c : s;
      sin = q === 0 ? s : q === 1 ? c : q === 2 ? -s : -c;
    }
    const slack = Math.abs(r) * trigSlack;
    const x = r * cos;
    out[i] = roundsAlike(x, slack) ? x : r * Math.cos(2 * Math.PI * turn);
    if (i + 1 < out.length) {
      const y = r * sin;
      out[i + 1] = roundsAlike(y, slack) ? y : r * Math.sin(2 * Math.PI * turn);
    }
  }
  return out;
}

/**
 * sin(a) for |a| ≤ π/4 by its Taylor polynomial to a¹⁵: the first omitted term is below 5e-17,
 * so with rounding it stays within a few 1e-16 of the true value. The coefficients are literals
 * (V8 folds them): as module or function constants they made the init ~1.4× slower (measured).
 */
function sinTaylor(a: number): number {
  const a2 = a * a;
  let p = -1 / 1307674368000; // -1/15!
  p = 1 / 6227020800 + a2 * p;
  p = -1 / 39916800 + a2 * p;
  p = 1 / 362880 + a2 * p;
  p = -1 / 5040 + a2 * p;
  p = 1 / 120 + a2 * p;
  p = -1 / 6 + a2 * p;
  return a + a * a2 * p;
}

/** cos(a) for |a| ≤ π/4 by its Taylor polynomial to a¹⁶ (first omitted term below 3e-18). */
function cosTaylor(a: number): number {
  const a2 = a * a;
  let p = 1 / 20922789888000; // 1/16!
  p = -1 / 87178291200 + a2 * p;
  p = 1 / 479001600 + a2 * p;
  p = -1 / 3628800 + a2 * p;
  p = 1 / 40320 + a2 * p;
  p = -1 / 720 + a2 * p;
  p = 1 / 24 + a2 * p;
  p = -1 / 2 + a2 * p;
  return 1 + a2 * p;
}

/**
 * A bound on |polynomial − Math.cos(2π·turn)| (and sin), with a wide margin: the polynomials err
 * by a few 1e-16, `Math.cos` by under one ulp (fdlibm, in V8 and SpiderMonkey alike), and
 * `2 * Math.PI * turn` is within 4.5e-16 of the angle the polynomials evaluate. Times |r|, it
 * also covers the two products' own roundings.
 */
const TRIG_SLACK = 1e-13;

/**
 * True when every number within `slack` of `x` rounds to the same float32 as `x`, the sign of a
 * zero included: then so does the exact `r * Math.cos(θ)` (float32 rounding is monotonic). False
 * for NaN and infinities, and for a zero `x`: a zero radius times the exact cos or sin takes
 * their sign, which the polynomials may not share at a quadrant's edge.
 */
function roundsAlike(x: number, slack: number): boolean {
  const below = Math.fround(x - slack), above = Math.fround(x + slack);
  // `===` fails for NaN; zeros of opposite signs differ in their reciprocals (±Infinity).
  return x !== 0 && below === above && (below !== 0 || 1 / below === 1 / above);
}

/**
 * `nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")`: N(0, 2 / fan_out), which is
 * what torchvision's `ResNet.__init__` applies to every convolution.
 */
export function kaimingNormalFanOut(shape: number[], random: Random): HostTensor {
  const std = Math.SQRT2 / Math.sqrt(fans(shape).fanOut);
  return { dtype: "float32", shape, data: fillNormal(new Float32Array(numel(shape)), std, random) };
}

/**
 * `nn.Linear`'s default weight init, `kaiming_uniform_(w, a=sqrt(5))`: the gain sqrt(2/(1+5))
 * times sqrt(3/fan_in) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
 */
export function linearDefaultWeight(shape: number[], random: Random): HostTensor {
  return uniform(shape, 1 / Math.sqrt(fans(shape).fanIn), random);
}

/** `nn.Linear`'s default bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in. */
export function linearDefaultBias(outFeatures: number, fanIn: number, random: Random): HostTensor {
  return uniform([outFeatures], 1 / Math.sqrt(fanIn), random);
}

/** `nn.init.xavier_uniform_(w)`: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform(shape: number[], random: Random): HostTensor {
  const { fanIn, fanOut } = fans(shape);
  return uniform(shape, Math.sqrt(6 / (fanIn + fanOut)), random);
}

/**
 * The draws of `initialStateDict` (create.ts) for a given entry list, in its order: convolutions
 * kaiming-normal, `fc` with `nn.Linear`'s defaults (`features` wide), BatchNorm weight and running
 * variance 1, biases and running means 0, counters 0. Kept free of tfjs (unlike `resnetSpec`'s
 * module) so that a Worker can draw with this module alone (core/init_worker.ts).
 *
 * @example
 * ```ts
 * import { drawStateDict } from "./init.ts";
 * const sd = drawStateDict([{ name: "fc.bias", shape: [2], kind: "parameter" }], 512, Math.random);
 * console.log(sd.get("fc.bias")?.shape); // [2]
 * ```
 */
export function drawStateDict(
  spec: readonly EntrySpec[],
  features: number,
  random: Random,
): StateDict {
  const sd: StateDict = new Map();
  for (const { name, shape, kind } of spec) {
    if (kind === "counter") {
      sd.set(name, { dtype: "int64", shape: [], data: new BigInt64Array(1) });
    } else if (name === "fc.weight") {
      sd.set(name, linearDefaultWeight(shape, random));
    } else if (name === "fc.bias") {
      sd.set(name, linearDefaultBias(shape[0], features, random));
    } else if (shape.length === 4) {
      sd.set(name, kaimingNormalFanOut(shape, random));
    } else {
      const one = name.endsWith(".weight") || name.endsWith(".running_var");
      sd.set(name, constant(shape, one ? 1 : 0));
    }
  }
  return sd;
}
