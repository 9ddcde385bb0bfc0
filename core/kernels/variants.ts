/**
 * The kernel variants `--kernels auto` chooses between, per kernel family: one table.
 *
 * Each family lists stock tfjs first (the safe choice: ties go to it, and it is what the tuner
 * must never lose to), then webtune's register-blocked kernels with their measured tiles
 * (`texture`, the default under `--kernels fast`), then a low-unroll tile (`texture-small`): a
 * quarter to a half of the accumulators, so a fraction of the WGSL for the shader compiler. On
 * llvmpipe it runs slower (each storage load is a per-lane gather there, so FMAs per load set
 * the speed; see the kernels' tile docs), but it compiles several times faster, so `auto` runs
 * it while a shape is unmeasured ({@linkcode FIRST_USE_VARIANT}); adapters with a slow compiler
 * (SwiftShader) or real registers may also prefer it after measuring.
 *
 * @example
 * ```ts
 * import { KERNEL_FAMILIES } from "./variants.ts";
 * KERNEL_FAMILIES.Conv2D.variants.map((v) => v.name);
 * // ["stock", "texture", "texture-small", "buffer", "winograd"]
 * ```
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  type Conv2DAttrs,
  type Conv2DEpilogue,
  conv2DGemm,
  conv2DGemmSupports,
  conv2DTextureTile,
  conv2DTile,
  type ConvTile,
} from "./conv2d.ts";
import {
  conv2DBackpropInputWinograd,
  conv2DWinograd,
  conv2DWinogradFits,
  conv2DWinogradPreferred,
  derInputWinogradFits,
  derInputWinogradPreferred,
  winogradTile,
} from "./conv2d_winograd.ts";
import {
  conv2DWinograd4,
  conv2DWinograd4Offered,
  conv2DWinograd4Preferred,
} from "./conv2d_winograd4.ts";
import {
  type Conv2DBackpropFilterAttrs,
  conv2DBackpropFilterGemm,
  derFilterSupports,
  derFilterTextureTile,
  type DerFilterTile,
  derFilterTile,
} from "./conv2d_backprop_filter.ts";
import {
  conv2DBackpropFilterWinograd,
  derFilterWinogradFits,
  derFilterWinogradPreferred,
  derFilterWinogradTile,
} from "./conv2d_backprop_filter_winograd.ts";
import {
  type Conv2DBackpropInputAttrs,
  conv2DBackpropInputGemm,
  derInputSupports,
  type DerInputTile,
  derInputTile,
} from "./conv2d_backprop_input.ts";
import {
  conv2DBackpropInputFma,
  derInputFmaSupports,
  type DerInputFmaTile,
  derInputFmaTile,
} from "./conv2d_backprop_input_fma.ts";

/**
 * The version of the kernel set the stored choices were measured with. Bump it whenever a
 * kernel, a tile or this table changes, so that every adapter measures again.
 */
export const KERNEL_SET_VERSION = "conv-variants-7";

/**
 * The `Conv2D` family's optional input: the filter's Winograd F(4×4, 3×3) transform U [36, Cin,
 * Cout] (conv2d_winograd4.ts), where a call has it made once (core's folded `eval` conv, from
 * what models/conv_bn.ts prepared for the fold's life). Like the filter, it has no batch
 * dimension.
 */
export const TRANSFORMED_FILTER_INPUT = "transformedFilter";

/** Inputs without a batch dimension (see {@linkcode atBatch}). */
const UNBATCHED_INPUTS = ["filter", TRANSFORMED_FILTER_INPUT];

/** A kernel call as tfjs makes it. */
export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** One way to compute a family's kernel. */
export interface KernelVariant {
  /** Stored in the cache: `stock`, `fast` or `small`. */
  name: string;
  /** Whether it handles this call (stock handles every call). */
  supports(args: KernelArgs): boolean;
  /** Runs it; absent for `stock`, which the dispatch runs as the kernel tfjs registered. */
  run?(args: KernelArgs): tf.TensorInfo;
  /** Conv2D only: runs it with bias, residual and ReLU applied in its store, where it can. */
  runWithEpilogue?(args: KernelArgs, epilogue: Conv2DEpilogue): tf.TensorInfo;
  /** Its tile for this call, for people, e.g. `32x2` (absent for stock). */
  tile?(args: KernelArgs): string;
  /**
   * Time it at the call's own batch, not at {@linkcode timingBatch}: part of its cost does not
   * shrink with the batch (Winograd's filter transform), so a reduced batch would overstate it.
   */
  timeAtCallBatch?: boolean;
}

/** What rebuilds a call for timing: the input shapes and the attrs. */
export interface CallSpec {
  inputs: Record<string, number[]>;
  attrs: tf.NamedAttrMap;
}

/** A tuned kernel family. */
export interface KernelFamily {
  /** The tfjs kernel name. */
  name: TunedKernel;
  variants: readonly KernelVariant[];
  /** The variant that runs under `--kernels fast`. */
  defaultVariant: string;
  /**
   * The variant that runs under `auto` while a shape is unmeasured: one whose shader compiles
   * fast (see {@linkcode FIRST_USE_VARIANT}).
   */
  firstUseVariant: string;
  /** The attrs that can change the winner (they go into the shape key). */
  keyAttrs: readonly string[];
  /** [N, H, W, Cin] of the conv's input, the filter's [kh, kw, Cin, Cout] and its strides. */
  conv(spec: CallSpec): { x: number[]; filter: number[]; strides: number[] };
}

/** The kernels chosen by measurement. */
export type TunedKernel = "Conv2D" | "Conv2DBackpropInput" | "Conv2DBackpropFilter";

const STOCK: KernelVariant = { name: "stock", supports: () => true };
/**
 * Half the accumulators of the texture variant's smallest tile (8 × 2). The first-use tiles are
 * generic (nothing about the call in their WGSL): a first step compiles one pipeline per conv
 * family, not one per stem / position order / padding mode.
 */
const SMALL_CONV: ConvTile = { tm: 4, tc: 2, generic: true };
/**
 * dX's first-use tile is the FMA kernel's (conv2d_backprop_input_fma.ts) with the strides in
 * uniforms: one pipeline for a step's strided and unstrided dX. Against the dot-product kernel's
 * 8 × 8 tile it had been (cli/bench_compile.ts, CPU time, one process, a loaded machine): code
 * generation 615 → 257 ms, a 64 px batch-16 step's dX calls 885 → 649 ms. Its sums are those of
 * the `texture-fma` variant (the same order at every tile), which `fast` runs.
 */
const SMALL_DER_INPUT: DerInputFmaTile = { tm: 4, tc: 1 };
/**
 * dW's first-use tile: 8 rows × 1 vec4 column, split as the 8 × 2 tile it replaced, so the same
 * numbers (cli/bench_compile.ts, CPU time, one process, a loaded machine: code generation 254 →
 * 178 ms, a 64 px batch-16 step's dW calls 455 → 453 ms).
 */
const SMALL_DER_FILTER: DerFilterTile = { tk: 8, tc: 1, generic: true, splitTc: 2 };

function backendOf(args: KernelArgs): WebGPUBackend {
  return args.backend as WebGPUBackend;
}

function conv2DVariant(
  name: string,
  tileOf: (cout: number) => ConvTile,
  textures: boolean,
): KernelVariant {
  const parts = (args: KernelArgs) => {
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    return { x, filter, attrs: args.attrs as unknown as Conv2DAttrs, cout: filter.shape[3] };
  };
  return {
    name,
    supports: (args) => {
      const { x, filter, attrs, cout } = parts(args);
      return conv2DGemmSupports(x, filter, attrs) && cout / 4 >= tileOf(cout).tc;
    },
    run: (args) => {
      const { x, filter, attrs, cout } = parts(args);
      return conv2DGemm(x, filter, attrs, backendOf(args), tileOf(cout), textures);
    },
    runWithEpilogue: (args, epilogue) => {
      const { x, filter, attrs, cout } = parts(args);
      return conv2DGemm(x, filter, attrs, backendOf(args), tileOf(cout), textures, epilogue);
    },
    tile: (args) => {
      const t = tileOf(parts(args).cout);
      return `${t.tm}x${t.tc}`;
    },
  };
}

/**
 * The Winograd forward conv. Given the filter's F(4×4, 3×3) transform
 * ({@linkcode TRANSFORMED_FILTER_INPUT}: an `eval` forward's folded conv, made once per fold) it
 * runs F(4×4, 3×3) where that may run (conv2d_winograd4.ts, `conv2DWinograd4Preferred`: 3×3
 * stride 1, maps of at least 4×4, ≥ 16 tiles; any channel count: no gradient flows through an
 * `eval` forward, so the training path's numerics gate does not apply). Otherwise F(2×2, 3×3)
 * (conv2d_winograd.ts), offered only where it passed the numerics gate and wins on llvmpipe (3×3
 * stride 1, Cout ≥ 128, ≥ 256 tiles; see `conv2DWinogradPreferred`). `auto` times it at the
 * call's own batch: its filter transform costs the same at any batch, so at
 * {@linkcode timingBatch} it lost (0.3–0.94×; batch 2 at 64 px, batch 1 at 224 px) where at
 * batch 16 it is 1.36–2.3× faster.
 */
function conv2DWinogradVariant(name: string): KernelVariant {
  const parts = (args: KernelArgs) => {
    const { x, filter, transformedFilter } = args.inputs as {
      x: tf.TensorInfo;
      filter: tf.TensorInfo;
      transformedFilter?: tf.TensorInfo;
    };
    return { x, filter, u: transformedFilter, attrs: args.attrs as unknown as Conv2DAttrs };
  };
  const fourByFour = (args: KernelArgs) => {
    const { x, filter, u, attrs } = parts(args);
    return conv2DWinograd4Preferred(x, filter, u, attrs, backendOf(args));
  };
  const conv = (args: KernelArgs, epilogue?: Conv2DEpilogue) => {
    const { x, filter, u, attrs } = parts(args);
    const tile = winogradTile(filter.shape[3]);
    return fourByFour(args)
      ? conv2DWinograd4(x, u!, attrs, backendOf(args), tile, true, epilogue)
      : conv2DWinograd(x, filter, attrs, backendOf(args), tile, true, epilogue);
  };
  return {
    name,
    supports: (args) => {
      const { x, filter, attrs } = parts(args);
      return fourByFour(args) ||
        (conv2DWinogradPreferred(x, filter, attrs) &&
          conv2DWinogradFits(x, filter, attrs, backendOf(args)));
    },
    run: (args) => conv(args),
    runWithEpilogue: conv,
    // Labels only (`describeVariant` has no backend): by shapes, without the texture limit.
    tile: (args) => {
      const { x, filter, u, attrs } = parts(args);
      const t = winogradTile(filter.shape[3]);
      return `${conv2DWinograd4Offered(x, filter, u, attrs) ? "F4 " : ""}${t.tm}x${t.tc}`;
    },
    timeAtCallBatch: true,
  };
}

/**
 * dX by Winograd F(2×2, 3×3) (conv2d_winograd.ts), offered only where it passed the numerics
 * gate and wins on llvmpipe (see `derInputWinogradPreferred`); timed at the call's own batch, as
 * the forward.
 */
function derInputWinogradVariant(name: string): KernelVariant {
  const parts = (args: KernelArgs) => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    return { dy, filter, attrs: args.attrs as unknown as Conv2DBackpropInputAttrs };
  };
  return {
    name,
    supports: (args) => {
      const { dy, filter, attrs } = parts(args);
      return derInputWinogradPreferred(dy, filter, attrs) &&
        derInputWinogradFits(dy, filter, attrs, backendOf(args));
    },
    run: (args) => {
      const { dy, filter, attrs } = parts(args);
      return conv2DBackpropInputWinograd(dy, filter, attrs, backendOf(args));
    },
    tile: (args) => {
      const t = winogradTile(parts(args).filter.shape[2]);
      return `${t.tm}x${t.tc}`;
    },
    timeAtCallBatch: true,
  };
}

function derInputVariant(
  name: string,
  tileOf: (cin: number) => DerInputTile,
  textures: boolean,
): KernelVariant {
  const parts = (args: KernelArgs) => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs;
    return { dy, filter, attrs, cin: filter.shape[2] };
  };
  return {
    name,
    supports: (args) => {
      const { dy, filter, attrs, cin } = parts(args);
      return derInputSupports(dy, filter, attrs) && cin % tileOf(cin).tci === 0;
    },
    run: (args) => {
      const { dy, filter, attrs, cin } = parts(args);
      return conv2DBackpropInputGemm(dy, filter, attrs, backendOf(args), tileOf(cin), textures);
    },
    tile: (args) => {
      const t = tileOf(parts(args).cin);
      return `${t.tm}x${t.tci}`;
    },
  };
}

function derInputFmaVariant(
  name: string,
  tile: DerInputFmaTile,
  textures: boolean,
  anyStride = false,
): KernelVariant {
  const parts = (args: KernelArgs) => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs;
    return { dy, filter, attrs };
  };
  return {
    name,
    supports: (args) => {
      const { dy, filter, attrs } = parts(args);
      return derInputFmaSupports(dy, filter, attrs) && filter.shape[2] / 4 >= tile.tc;
    },
    run: (args) => {
      const { dy, filter, attrs } = parts(args);
      return conv2DBackpropInputFma(
        dy,
        filter,
        attrs,
        backendOf(args),
        tile,
        textures,
        anyStride,
      );
    },
    tile: () => `${tile.tm}x${tile.tc}`,
  };
}

function derFilterVariant(
  name: string,
  tileOf: (filterShape: readonly number[]) => DerFilterTile,
  textures: boolean,
): KernelVariant {
  const parts = (args: KernelArgs) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
    return { x, dy, attrs, tile: tileOf(attrs.filterShape) };
  };
  return {
    name,
    supports: (args) => {
      const { x, dy, attrs, tile } = parts(args);
      const [kh, kw, cin, cout] = attrs.filterShape;
      return derFilterSupports(x, dy, attrs) && cout / 4 >= tile.tc &&
        kh * kw * Math.ceil(cin / 4) * 4 >= tile.tk;
    },
    run: (args) => {
      const { x, dy, attrs, tile } = parts(args);
      return conv2DBackpropFilterGemm(x, dy, attrs, backendOf(args), tile, textures);
    },
    tile: (args) => {
      const t = parts(args).tile;
      return `${t.tk}x${t.tc}`;
    },
  };
}

/**
 * dW by Winograd F(3×3, 2×2) (conv2d_backprop_filter_winograd.ts), offered only where it may
 * win on llvmpipe (3×3 stride 1, Cin and Cout ≥ 128, ≥ 64 tiles; see
 * `derFilterWinogradPreferred`); timed at the call's own batch, as the forward: its output
 * transform costs the same at any batch.
 */
function derFilterWinogradVariant(name: string): KernelVariant {
  const parts = (args: KernelArgs) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    return { x, dy, attrs: args.attrs as unknown as Conv2DBackpropFilterAttrs };
  };
  return {
    name,
    supports: (args) => {
      const { x, dy, attrs } = parts(args);
      return derFilterWinogradPreferred(x, dy, attrs) &&
        derFilterWinogradFits(x, dy, attrs, backendOf(args));
    },
    run: (args) => {
      const { x, dy, attrs } = parts(args);
      return conv2DBackpropFilterWinograd(x, dy, attrs, backendOf(args));
    },
    tile: (args) => {
      const [, , cin, cout] = parts(args).attrs.filterShape;
      const t = derFilterWinogradTile(cin, cout);
      return `${t.tk}x${t.tc}`;
    },
    timeAtCallBatch: true,
  };
}

/**
 * What `auto` runs for a shape it has not measured yet, i.e. in a run's first step before the
 * tuner has timed the candidates (and for shapes its budget left over): the low-unroll tile.
 * On llvmpipe a pipeline is compiled to machine code at its first dispatch: with a cold shader
 * cache the big tiles (e.g. `texture` 32 × 4 vec4 accumulators, fully unrolled) took 1.2–8 s
 * each, the small ones 0.2–0.8 s, and a step's convs ran about 1.4× slower on small tiles
 * (ResNet-18's calls at 64 px replayed one by one on the loaded 2-core machine). A first step
 * runs each shape once or a few times, so there compile time is what counts; the tuner then
 * times every candidate and later steps (and runs) use the winners.
 */
export const FIRST_USE_VARIANT = "texture-small";

/** The attrs every conv family shares that change the work. */
const CONV_KEY_ATTRS = ["strides", "pad", "dataFormat", "dilations", "dimRoundingMode"] as const;

/** Every tuned family with its variants: the one table. */
export const KERNEL_FAMILIES: { readonly [K in TunedKernel]: KernelFamily } = {
  Conv2D: {
    name: "Conv2D",
    variants: [
      STOCK,
      conv2DVariant("texture", conv2DTextureTile, true),
      conv2DVariant("texture-small", () => SMALL_CONV, true),
      conv2DVariant("buffer", conv2DTile, false),
      conv2DWinogradVariant("winograd"),
    ],
    // Where winograd does not take the call, `fast` runs the first webtune variant, texture.
    defaultVariant: "winograd",
    firstUseVariant: FIRST_USE_VARIANT,
    keyAttrs: CONV_KEY_ATTRS,
    conv: ({ inputs, attrs }) => ({
      x: inputs.x,
      filter: inputs.filter,
      strides: pair(attrs.strides),
    }),
  },
  Conv2DBackpropInput: {
    name: "Conv2DBackpropInput",
    variants: [
      STOCK,
      // FMA form (conv2d_backprop_input_fma.ts): 1.3–1.45× the dot-product kernel on a 64 px
      // step's dX on llvmpipe (strided and small convs gain most), about even at 224 px.
      derInputFmaVariant("texture-fma", derInputFmaTile(), true),
      derInputVariant("texture", (cin) => derInputTile(cin, true), true),
      // Strides in uniforms: one pipeline for a step's strided and unstrided dX (first use).
      derInputFmaVariant("texture-small", SMALL_DER_INPUT, true, true),
      derInputVariant("buffer", (cin) => derInputTile(cin), false),
      derInputWinogradVariant("winograd"),
    ],
    // Where winograd does not take the call, `fast` runs the first webtune variant, texture-fma.
    defaultVariant: "winograd",
    firstUseVariant: FIRST_USE_VARIANT,
    keyAttrs: [...CONV_KEY_ATTRS, "inputShape"],
    conv: ({ inputs, attrs }) => ({
      x: attrs.inputShape as number[],
      filter: inputs.filter,
      strides: pair(attrs.strides),
    }),
  },
  Conv2DBackpropFilter: {
    name: "Conv2DBackpropFilter",
    variants: [
      STOCK,
      derFilterVariant("texture", derFilterTextureTile, true),
      derFilterVariant("texture-small", () => SMALL_DER_FILTER, true),
      derFilterVariant("buffer", derFilterTile, false),
      derFilterWinogradVariant("winograd"),
    ],
    // Where winograd does not take the call, `fast` runs the first webtune variant, texture.
    defaultVariant: "winograd",
    firstUseVariant: FIRST_USE_VARIANT,
    keyAttrs: [...CONV_KEY_ATTRS, "filterShape"],
    conv: ({ inputs, attrs }) => ({
      x: inputs.x,
      filter: attrs.filterShape as number[],
      strides: pair(attrs.strides),
    }),
  },
};

function pair(v: unknown): number[] {
  return typeof v === "number" ? [v, v] : (v as number[]);
}

/** The shapes and key attrs of a call (what the tuner must know to rebuild it). */
export function callSpec(family: KernelFamily, args: KernelArgs): CallSpec {
  const inputs: Record<string, number[]> = {};
  for (const [name, info] of Object.entries(args.inputs)) inputs[name] = [...info!.shape];
  const attrs: tf.NamedAttrMap = {};
  for (const name of family.keyAttrs) {
    const value = args.attrs?.[name];
    if (value !== undefined) attrs[name] = value;
  }
  return { inputs, attrs };
}

/**
 * The shape key: family, input shapes, attrs; e.g.
 * `Conv2D x=16x16x16x64 filter=3x3x64x64 {"strides":[1,1],"pad":[[0,0],[1,1],[1,1],[0,0]],…}`.
 */
export function shapeKey(family: KernelFamily, spec: CallSpec): string {
  const shapes = Object.entries(spec.inputs).map(([name, s]) => `${name}=${s.join("x")}`);
  return `${family.name} ${shapes.join(" ")} ${JSON.stringify(spec.attrs)}`;
}

/**
 * For people: `Conv2D 16x16x16x64→128 k3s2`; `… U given` for a call with the filter's Winograd
 * transform ({@linkcode TRANSFORMED_FILTER_INPUT}: an `eval` forward's folded conv).
 */
export function shapeLabel(family: KernelFamily, spec: CallSpec): string {
  const { x, filter, strides } = family.conv(spec);
  const s = strides[0] === strides[1] ? `${strides[0]}` : strides.join("x");
  const label = `${family.name} ${x.join("x")}→${filter[3]} k${filter[0]}s${s}`;
  return TRANSFORMED_FILTER_INPUT in spec.inputs ? `${label} U given` : label;
}

/** Output positions of one image and multiply-adds ×2 per image, the same for all three
 * families of a conv (y = x ⊛ W, dX = dy ⊛ Wᵀ, dW = xᵀ ⊛ dy). */
function perImage(family: KernelFamily, spec: CallSpec): { positions: number; flops: number } {
  const { x, filter, strides } = family.conv(spec);
  const positions = Math.ceil(x[1] / strides[0]) * Math.ceil(x[2] / strides[1]);
  return { positions, flops: 2 * positions * filter[0] * filter[1] * filter[2] * filter[3] };
}

/**
 * Work per timed run while tuning. The candidates are timed at a reduced batch when the real
 * one exceeds this: stock's naive dW runs near 0.5 GFLOP/s on llvmpipe, so ResNet-18's layer1
 * dW at 224 px batch 16 (3.7 GFLOP) would take seconds per run. 50 MFLOP keeps it near 0.1 s;
 * at 64 px that is batch 2 for layer1.
 */
const TUNE_FLOPS = 50e6;
/**
 * Output positions a timed run keeps at least (within the real batch): a reduced batch must not
 * leave a big tile mostly idle where the real batch fills it (layer4 at 64 px has 4 positions
 * per image, so batch 2 would fill a 32-position tile to a quarter and favour small tiles).
 */
const TUNE_MIN_POSITIONS = 128;

/**
 * The batch at which to time a call (at most its own). The winner at that batch is taken for
 * the full one: with enough positions to fill the tiles, the kernels' time per image barely
 * depends on the batch.
 */
export function timingBatch(family: KernelFamily, spec: CallSpec): number {
  const n = family.conv(spec).x[0];
  const { positions, flops } = perImage(family, spec);
  const wanted = Math.max(
    Math.floor(TUNE_FLOPS / flops),
    Math.ceil(TUNE_MIN_POSITIONS / positions),
  );
  return Math.max(1, Math.min(n, wanted));
}

/**
 * The call at batch `n`: every input but the filter (and its transform) and `inputShape` get `n`
 * as dim 0.
 */
export function atBatch(spec: CallSpec, n: number): CallSpec {
  const inputs: Record<string, number[]> = {};
  for (const [name, shape] of Object.entries(spec.inputs)) {
    inputs[name] = UNBATCHED_INPUTS.includes(name) ? shape : [n, ...shape.slice(1)];
  }
  const attrs = { ...spec.attrs };
  if (Array.isArray(attrs.inputShape)) attrs.inputShape = [n, ...attrs.inputShape.slice(1)];
  return { inputs, attrs };
}
