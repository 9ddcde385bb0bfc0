/**
 * PyTorch's weight initialisers, driven by a caller-supplied uniform RNG so that runs are
 * reproducible from a seed (the numbers differ from PyTorch's, the distributions do not).
 *
 * Every function fills a tensor in PyTorch layout (conv OIHW, linear [out, in]) and reads its
 * fan-in/fan-out the way `torch.nn.init._calculate_fan_in_and_fan_out` does.
 *
 * @module
 */
import { type HostTensor, numel } from "./types.ts";

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
 */
export function fillNormal(out: Float32Array, std: number, random: Random): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    const r = std * Math.sqrt(-2 * Math.log(1 - random()));
    const theta = 2 * Math.PI * random();
    out[i] = r * Math.cos(theta);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(theta);
  }
  return out;
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
