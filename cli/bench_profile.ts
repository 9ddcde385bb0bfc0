/**
 * Where a training step's time goes, by kernel family (`deno task bench --profile`).
 *
 * WebGPU on a software adapter has no timestamp queries, and tfjs submits a step's dispatches in
 * batches, so a kernel's own time cannot be read off a real step. Instead one step's top-level
 * kernel calls (name, input shapes, attributes) are recorded, and each distinct call is replayed
 * alone on fresh inputs of the same shapes: 1 + `runs` back-to-back calls and a readback of the
 * last output, minus 1 call and a readback, divided by `runs` (the readback's fixed cost, ~12 ms
 * on llvmpipe, cancels). Multiplied by how often the step made the call and
 * summed per family, this is the step's cost per family (it leaves out what runs between kernels:
 * tfjs's bookkeeping and the JavaScript of the step).
 *
 * @example
 * ```ts
 * const profile = await profileStep(() => trainStep(model, device, sgd));
 * console.log(formatProfile(profile));
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { CONV_BIAS_ACT_KERNEL } from "@webtune/models";
import { setOperandCopyReuse } from "@webtune/core/kernels";

/** One distinct kernel call of the step and what it costs there. */
export interface ProfiledCall {
  kernel: string;
  inputShapes: number[][];
  attrs: string;
  /** How often the step made this call. */
  count: number;
  /** Milliseconds of one call, replayed alone. */
  ms: number;
}

/** A step's kernel time grouped by family. */
export interface StepProfile {
  calls: ProfiledCall[];
  /** Family → milliseconds per step (count × ms summed), largest first. */
  families: [string, number][];
  totalMs: number;
}

interface RecordedCall {
  kernel: string;
  inputs: { name: string; shape: number[]; dtype: tf.DataType }[];
  attrs: tf.NamedAttrMap;
  key: string;
}

/** The family a kernel name belongs to, for the summary. */
export function kernelFamily(kernel: string, inputShapes: number[][]): string {
  // The eval forward's conv with BatchNorm folded in is a forward conv with an epilogue.
  if (kernel === "Conv2D" || kernel === CONV_BIAS_ACT_KERNEL) return "conv forward";
  if (kernel === "Conv2DBackpropInput") return "conv dX";
  if (kernel === "Conv2DBackpropFilter") return "conv dW";
  if (kernel.startsWith("WebtuneBatchNorm") || kernel === "FusedBatchNorm") return "batchnorm";
  if (kernel === "WebtuneSgdUpdate") return "sgd update";
  if (["Sum", "Mean", "Max", "Min", "ArgMax", "Prod"].includes(kernel)) {
    return inputShapes[0]?.length === 4 ? "reductions (4-D)" : "reductions (small)";
  }
  if (["MaxPool", "MaxPoolGrad", "AvgPool", "AvgPoolGrad"].includes(kernel)) return "pooling";
  const elements = inputShapes.reduce((m, s) => Math.max(m, s.reduce((a, b) => a * b, 1)), 0);
  return elements >= 65536 ? "elementwise (large)" : "elementwise (small)";
}

/** Records `step`'s top-level kernel calls (nested calls inside a kernel are part of it). */
async function recordCalls(step: () => Promise<unknown>): Promise<RecordedCall[]> {
  const engine = tf.engine() as unknown as {
    runKernel: (name: string, inputs: tf.NamedTensorMap, attrs?: tf.NamedAttrMap) => unknown;
  };
  const original = engine.runKernel;
  const calls: RecordedCall[] = [];
  let depth = 0;
  engine.runKernel = function (name, inputs, attrs = {}) {
    if (depth === 0) {
      const ins = Object.entries(inputs).filter(([, t]) => t != null).map(([n, t]) => ({
        name: n,
        shape: [...t.shape],
        dtype: t.dtype,
      }));
      const plainAttrs = JSON.stringify(attrs, (_k, v) => (v instanceof tf.Tensor ? "tensor" : v));
      calls.push({
        kernel: name,
        inputs: ins,
        attrs,
        key: `${name}|${JSON.stringify(ins)}|${plainAttrs}`,
      });
    }
    depth++;
    try {
      return original.call(this, name, inputs, attrs);
    } finally {
      depth--;
    }
  };
  try {
    await step();
  } finally {
    engine.runKernel = original;
  }
  return calls;
}

/** Times one recorded call alone on fresh inputs of its shapes (see {@linkcode profileStep}). */
async function replay(call: RecordedCall, count: number, runs: number): Promise<ProfiledCall> {
  const inputs: tf.NamedTensorMap = {};
  for (const input of call.inputs) {
    inputs[input.name] = input.dtype === "float32"
      ? tf.randomUniform(input.shape, 0.1, 1)
      : tf.zeros(input.shape, input.dtype);
  }
  // Runs the call `times` times back to back, then reads the last output: a readback
  // (`mapAsync`) waits for every dispatch before it. (A small probe op would not: tfjs runs
  // those on the CPU, and Deno's `onSubmittedWorkDone` resolved before llvmpipe had run the work.)
  const run = async (times: number) => {
    let last: tf.Tensor[] = [];
    for (let i = 0; i < times; i++) {
      for (const t of last) t.dispose();
      const out = tf.engine().runKernel(call.kernel, inputs, call.attrs) as
        | tf.Tensor
        | tf.Tensor[];
      last = Array.isArray(out) ? out : [out];
    }
    await last[0].data();
    for (const t of last) t.dispose();
  };
  // One call plus the readback, then 1 + `runs` calls plus the readback: the difference is
  // `runs` calls without the readback's fixed cost (about 12 ms on llvmpipe).
  await run(1);
  let one = Infinity, many = Infinity;
  for (let round = 0; round < 2; round++) {
    let t0 = performance.now();
    await run(1);
    one = Math.min(one, performance.now() - t0);
    t0 = performance.now();
    await run(1 + runs);
    many = Math.min(many, performance.now() - t0);
  }
  const best = Math.max(0, many - one) / runs;
  for (const t of Object.values(inputs)) t.dispose();
  return {
    kernel: call.kernel,
    inputShapes: call.inputs.map((i) => i.shape),
    attrs: JSON.stringify(call.attrs),
    count,
    ms: best,
  };
}

/**
 * Profiles one call of `step` (which must already have run once, so its pipelines are compiled).
 * `runs`: back-to-back calls per distinct kernel call.
 */
export async function profileStep(
  step: () => Promise<unknown>,
  runs = 3,
): Promise<StepProfile> {
  const recorded = await recordCalls(step);
  const byKey = new Map<string, { call: RecordedCall; count: number }>();
  for (const call of recorded) {
    const entry = byKey.get(call.key);
    if (entry) entry.count++;
    else byKey.set(call.key, { call, count: 1 });
  }
  const calls: ProfiledCall[] = [];
  // Every replay reads the same inputs: with reuse, all but the first would skip their texture
  // copies, which the step's calls of the memory-bound kernels mostly do not.
  setOperandCopyReuse(false);
  try {
    for (const { call, count } of byKey.values()) calls.push(await replay(call, count, runs));
  } finally {
    setOperandCopyReuse(true);
  }
  const families = new Map<string, number>();
  for (const c of calls) {
    const family = kernelFamily(c.kernel, c.inputShapes);
    families.set(family, (families.get(family) ?? 0) + c.count * c.ms);
  }
  const sorted = [...families].sort((a, b) => b[1] - a[1]);
  return { calls, families: sorted, totalMs: sorted.reduce((s, [, ms]) => s + ms, 0) };
}

/**
 * One line per distinct call, largest share of the step first: count × ms, the kernel, its input
 * shapes and the attrs that set its work (strides, pad, relu), e.g.
 * `   2 ×  180.2 ms =  360.4  WebtuneConv2DBiasAct 16x56x56x64 3x3x64x64 64 s1 p1 relu`.
 * Calls under `minShare` of the step's total are left out (one summary line says how many).
 */
export function formatCalls(profile: StepProfile, minShare = 0.005): string {
  const sorted = [...profile.calls].sort((a, b) => b.count * b.ms - a.count * a.ms);
  const shown = sorted.filter((c) => c.count * c.ms >= minShare * profile.totalMs);
  const lines = shown.map((c) =>
    `  ${String(c.count).padStart(3)} × ${c.ms.toFixed(1).padStart(7)} ms = ${
      (c.count * c.ms).toFixed(1).padStart(7)
    }  ${callLabel(c)}`
  );
  const rest = sorted.length - shown.length;
  if (rest > 0) {
    const ms = sorted.slice(shown.length).reduce((s, c) => s + c.count * c.ms, 0);
    lines.push(`  (${rest} more distinct calls, ${ms.toFixed(1)} ms in all)`);
  }
  return lines.join("\n");
}

/** For people: the kernel, its input shapes, and stride, pad and ReLU where it has them. */
export function callLabel(call: ProfiledCall): string {
  const shapes = call.inputShapes.map((s) => s.length ? s.join("x") : "scalar").join(" ");
  const attrs = JSON.parse(call.attrs) as Record<string, unknown>;
  const parts: string[] = [];
  const strides = attrs.strides;
  if (strides !== undefined) {
    const s = Array.isArray(strides) ? strides : [strides, strides];
    parts.push(`s${s[0] === s[1] ? s[0] : s.join("x")}`);
  }
  if (typeof attrs.pad === "number") parts.push(`p${attrs.pad}`);
  else if (typeof attrs.pad === "string") parts.push(attrs.pad);
  if (attrs.relu === true) parts.push("relu");
  return [call.kernel, shapes, ...parts].join(" ");
}

/** One line per family: milliseconds per step and share, then the total and call count. */
export function formatProfile(profile: StepProfile): string {
  const lines = profile.families.map(([family, ms]) =>
    `  ${family.padEnd(22)} ${ms.toFixed(0).padStart(7)} ms  ${
      (100 * ms / profile.totalMs).toFixed(0).padStart(3)
    }%`
  );
  const count = profile.calls.reduce((s, c) => s + c.count, 0);
  lines.push(
    `  ${"total".padEnd(22)} ${profile.totalMs.toFixed(0).padStart(7)} ms  (${count} calls)`,
  );
  return lines.join("\n");
}
