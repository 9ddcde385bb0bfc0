/**
 * Small helpers shared by webtune's webgpu kernels.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";

/** Program-defined uniforms, in the order of the program's `uniforms` string. */
export type Uniforms = { type: "int32" | "float32"; data: number[] }[];

/** The WGSL types our kernels' uniforms use. */
export type UniformType = "i32" | "f32" | "vec2<i32>";

/** A uniform block declared once: its WGSL fields and a typed maker of its data array. */
export interface UniformBlock<S extends Record<string, UniformType>> {
  /** The fields for a program's `uniforms` string, e.g. `"cin4 : i32, strides : vec2<i32>,"`. */
  wgsl: string;
  /** The data array in field order, for `runWebGPUProgram`. */
  data(values: { [K in keyof S]: S[K] extends "vec2<i32>" ? [number, number] : number }): Uniforms;
}

/**
 * Declares a kernel's uniforms once. tfjs-webgpu wants them twice (a WGSL struct string and a
 * positional array in the same order); both are derived from `spec`, whose key order is the
 * field order.
 *
 * @example
 * ```ts
 * const U = uniformBlock({ rows: "i32", strides: "vec2<i32>", scale: "f32" });
 * U.wgsl; // "rows : i32, strides : vec2<i32>, scale : f32,"
 * U.data({ rows: 4, strides: [2, 2], scale: 0.5 }); // [{type: "int32", data: [4]}, ...]
 * ```
 */
export function uniformBlock<S extends Record<string, UniformType>>(spec: S): UniformBlock<S> {
  const names = Object.keys(spec) as (keyof S & string)[];
  return {
    wgsl: names.map((n) => `${n} : ${spec[n]},`).join(" "),
    data: (values) =>
      names.map((n) => {
        const v = values[n] as number | number[];
        return {
          type: spec[n] === "f32" ? "float32" : "int32",
          data: typeof v === "number" ? [v] : [...v],
        };
      }),
  };
}

/** Invocations per workgroup of our kernels: one llvmpipe SIMD group on AVX2 (8 × f32). */
export const WG = 8;

/** Largest workgroup count WebGPU guarantees per dispatch dimension. */
const MAX_DISPATCH = 65535;

/**
 * Spreads `groups` workgroups over x and y (a dimension may hold at most 65535). Shaders find
 * their linear group with {@linkcode LINEAR_GROUP_WGSL} and skip ids ≥ `groups`.
 */
export function dispatch2D(groups: number): [number, number, number] {
  if (groups <= MAX_DISPATCH) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_DISPATCH);
  return [Math.ceil(groups / y), y, 1];
}

/** WGSL: the linear workgroup id for a {@linkcode dispatch2D} dispatch. */
export const LINEAR_GROUP_WGSL = "i32(workgroupId.y * numWorkgroups.x + workgroupId.x)";

/**
 * WGSL for the start of a flat kernel's `main`, binding `i` to the invocation's flat index in a
 * {@linkcode dispatch2D} dispatch of `[size, 1, 1]` workgroups. tfjs's prelude passes the index
 * of a flat layout to `main(i)`; the texture-operand prelude calls `main()`, so the shader
 * computes it.
 *
 * @example
 * ```ts
 * import { flatMain } from "./kernel_util.ts";
 * flatMain(false, 64); // "fn main(i : i32) {"
 * ```
 */
export function flatMain(textures: boolean, size: number): string {
  return textures
    ? `fn main() { let i = ${LINEAR_GROUP_WGSL} * ${size} + i32(localId.x);`
    : "fn main(i : i32) {";
}

/**
 * WGSL for "every one of these booleans", written `(a) & (b) & …` rather than `a && b && …`.
 *
 * Why: WGSL's `&&` and `||` short-circuit, so Tint compiles each one into a branch. A register
 * tile unrolls its per-position bounds checks into dozens of such branches inside the tap loop,
 * and SwiftShader (Chromium's software WebGPU adapter) cannot compile that: its compiler's memory
 * grows to >10 GiB over minutes until Chromium's GPU process dies (device lost). The same checks
 * with the non-short-circuit `&` compile in ~1 s and mean the same, since the operands have no
 * side effects. So webtune's WGSL never uses `&&` or `||` (`wgsl_test.ts` checks).
 *
 * @example
 * ```ts
 * import { allOf } from "./kernel_util.ts";
 * allOf("x >= 0", "x < n"); // "(x >= 0) & (x < n)"
 * ```
 */
export function allOf(...terms: string[]): string {
  return terms.map((t) => `(${t})`).join(" & ");
}

/**
 * WGSL for "any of these booleans", `(a) | (b) | …`: the non-short-circuit `||` (see
 * {@linkcode allOf} for why).
 *
 * @example
 * ```ts
 * import { anyOf } from "./kernel_util.ts";
 * anyOf("ok0", "ok1"); // "(ok0) | (ok1)"
 * ```
 */
export function anyOf(...terms: string[]): string {
  return terms.map((t) => `(${t})`).join(" | ");
}

/** Calls another registered webgpu kernel directly (we are inside a kernel, not the engine). */
export function runKernel(
  name: string,
  inputs: Record<string, tf.TensorInfo>,
  attrs: Record<string, unknown>,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const kernel = tf.getKernel(name, "webgpu");
  if (!kernel) throw new Error(`webgpu kernel ${name} is not registered`);
  return kernel.kernelFunc({ inputs, attrs, backend } as never) as tf.TensorInfo;
}

/** Zero-pads the channel axis of an NHWC tensor (or the Cin axis of a filter) to `channels`. */
export function padAxis(
  t: tf.TensorInfo,
  axis: number,
  size: number,
  backend: WebGPUBackend,
): tf.TensorInfo {
  const paddings = t.shape.map((d, i) => [0, i === axis ? size - d : 0]);
  return runKernel("PadV2", { x: t }, { paddings, constantValue: 0 }, backend);
}

/**
 * Whether `t`'s GPU data really is float32. tfjs-webgpu's `Cast` from int32 or bool to float32
 * only relabels the tensor (same data id, same integer bits), and its own programs read the
 * stored dtype from the backend's tensor map; a webtune program reading such a "float32" as f32
 * would see integer bits (1 reads as 1.4e-45).
 *
 * @example
 * ```ts ignore
 * if (!storedAsFloat32(backend, x)) return null; // let tfjs's kernel convert it
 * ```
 */
export function storedAsFloat32(backend: WebGPUBackend, t: tf.TensorInfo): boolean {
  const map = (backend as unknown as { tensorMap: { get(id: unknown): { dtype: string } } })
    .tensorMap;
  return t.dtype === "float32" && map.get(t.dataId)?.dtype === "float32";
}

/** Releases intermediate tensors made inside a kernel. */
export function disposeAll(backend: WebGPUBackend, infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/**
 * The base of webtune's programs: vec4 inputs and output, [WG, 1, 1] workgroups, and a shaderKey
 * that names everything baked into the WGSL (shapes are uniforms). tfjs overwrites `shaderKey`
 * when it runs a program, so make one instance per call.
 *
 * @example
 * ```ts
 * class Copy extends WebtuneProgram {
 *   variableNames = ["x"];
 *   uniforms = "n4 : i32,";
 *   constructor(n: number) { super([n], { x: [0] }, [Math.ceil(n / 4 / WG), 1, 1], "Copy"); }
 *   getUserCode() {
 *     return `fn main(i : i32) { if (i < uniforms.n4) { result[i] = x[i]; } }`;
 *   }
 * }
 * ```
 */
export abstract class WebtuneProgram implements WebGPUProgram {
  abstract variableNames: string[];
  /** Floats per element of every input and of the output: 4 (vec4) or 1. */
  components = 4;
  workgroupSize: [number, number, number] = [WG, 1, 1];
  abstract uniforms: string;
  shaderKey: string;
  /**
   * The output tensor's dtype where runWithTextureOperands makes it (int32 and bool data are
   * written as their integer bits, as tfjs stores them).
   */
  outputDtype: tf.DataType = "float32";

  /**
   * @param key what the WGSL depends on besides shapes (tile sizes, modes); prefixed `webtune`.
   * @param dispatchLayout with only `x` the layout is flat and the prelude calls
   *   `main(globalIndex)`; else it calls `main()` and shaders index with globalId themselves.
   */
  constructor(
    public outputShape: number[],
    public dispatchLayout: { x: number[]; y?: number[]; z?: number[] },
    public dispatch: [number, number, number],
    key: string,
  ) {
    this.shaderKey = `webtune${key}`;
  }

  // Accessors, not fields: subclasses set `components` and `variableNames` after this
  // constructor runs. tfjs may assign them (it defaults outputComponent), hence the setters.
  #variableComponents?: number[];
  #outputComponent?: number;

  get variableComponents(): number[] {
    return this.#variableComponents ?? this.variableNames.map(() => this.components);
  }
  set variableComponents(value: number[]) {
    this.#variableComponents = value;
  }

  get outputComponent(): number {
    return this.#outputComponent ?? this.components;
  }
  set outputComponent(value: number) {
    this.#outputComponent = value;
  }

  abstract getUserCode(): string;
}

/** Invocations per workgroup of a {@linkcode ScalarProgram}. */
export const SCALAR_WG = 64;

/**
 * The base of the one-pipeline programs for small tensors (small_ops.ts, small_reduce.ts,
 * small_matmul.ts, strided_copy.ts): scalar inputs and output (components 1), one invocation per
 * output element, {@linkcode SCALAR_WG} per workgroup of a {@linkcode dispatch2D} dispatch.
 *
 * @example
 * ```ts
 * import { ScalarProgram } from "./kernel_util.ts";
 * class Copy extends ScalarProgram {
 *   variableNames = ["x"];
 *   uniforms = "size : i32,";
 *   constructor(shape: number[]) { super(shape, "Copy"); }
 *   getUserCode() {
 *     return `
 *     ${this.mainStart("size")}
 *       result[j] = ld_x(j);
 *     }`;
 *   }
 * }
 * ```
 */
export abstract class ScalarProgram extends WebtuneProgram {
  override components = 1;
  override workgroupSize: [number, number, number] = [SCALAR_WG, 1, 1];

  constructor(shape: number[], key: string) {
    const n = tf.util.sizeFromShape(shape);
    super(shape, { x: [0] }, dispatch2D(Math.ceil(n / SCALAR_WG)), key);
  }

  /**
   * WGSL opening `main` and binding `j` to the invocation's output element, given the name of
   * the uniform that holds the element count. Past the end an invocation redoes the last element
   * (same value, same place) rather than return.
   */
  protected mainStart(sizeUniform: string): string {
    return `${flatMain(true, SCALAR_WG)}
      let j = min(i, uniforms.${sizeUniform} - 1);`;
  }
}

/**
 * WGSL lines splitting the row-major index `index` of a rank-4 shape into its coordinates
 * `${coord}0`–`${coord}3`, given its dims 1–3 `${dim}1`–`${dim}3`, through the quotients
 * `${quotient}2` and `${quotient}1`; `${shift}k` added to coordinate k where `shift` is given.
 *
 * @example
 * ```ts
 * import { unravel4Wgsl } from "./kernel_util.ts";
 * unravel4Wgsl("j", "uniforms.d", "c", "q")[0]; // "let c3 = j % uniforms.d3;"
 * ```
 */
export function unravel4Wgsl(
  index: string,
  dim: string,
  coord: string,
  quotient: string,
  shift?: string,
): string[] {
  const plus = (k: number) => shift ? ` + ${shift}${k}` : "";
  return [
    `let ${coord}3 = ${index} % ${dim}3${plus(3)};`,
    `let ${quotient}2 = ${index} / ${dim}3;`,
    `let ${coord}2 = ${quotient}2 % ${dim}2${plus(2)};`,
    `let ${quotient}1 = ${quotient}2 / ${dim}2;`,
    `let ${coord}1 = ${quotient}1 % ${dim}1${plus(1)};`,
    `let ${coord}0 = ${quotient}1 / ${dim}1${plus(0)};`,
  ];
}
