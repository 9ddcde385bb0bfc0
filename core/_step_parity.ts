/**
 * Shared by the PyTorch step-parity tests (not exported from mod.ts): runs the fixtures' one
 * fine-tuning step (fc replaced by the fixture's head, CrossEntropyLoss(reduction="none")
 * summed, SGD lr 0.01 backbone / 0.1 head, weight decay 0.001, no momentum) and measures every
 * reference quantity the fixture holds.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { assertEquals } from "@std/assert";
import {
  type Arch,
  type HostTensor,
  loadStateDict,
  readSafetensors,
  ResNet,
  resnetSpec,
  type StateDict,
} from "@webtune/models";
import { setupBackend } from "./backend.ts";
import { buildParamGroups } from "./param_groups.ts";
import { Sgd } from "./sgd.ts";
import { type BnMode, computeGradients, disposeGradients } from "./train_step.ts";

/** `../shared/fixtures`, next to the repository (never copied in). */
export const FIXTURES = new URL("../../shared/fixtures/", import.meta.url);
/** Why the fixture tests are skipped, or undefined when the fixtures are present. */
export const noFixtures: string | undefined = await Deno.stat(FIXTURES).then(
  () => undefined,
  () => `skipping the PyTorch parity tests: ${FIXTURES.pathname} is absent`,
);
if (noFixtures) console.log(noFixtures);

/** The tensors of a fixture safetensors file (F16 widened to F32). */
export async function readFixture(relative: string): Promise<StateDict> {
  const url = new URL(relative, FIXTURES);
  return readSafetensors(await Deno.readFile(url), url.pathname).tensors;
}

/** Max |a − b| and that error relative to max |b|. */
export interface ErrorMeasure {
  abs: number;
  rel: number;
}

/** Max |a − b| and that error relative to max |b| (0 when a equals an all-zero b). */
export function compare(a: ArrayLike<number>, b: ArrayLike<number>): ErrorMeasure {
  assertEquals(a.length, b.length);
  let abs = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  // A reference that is all zeros (e.g. untouched running means) must be matched exactly.
  return { abs, rel: abs === 0 ? 0 : abs / scale };
}

/**
 * The ResNet-18 step's limit for one measured quantity (core/parity_test.ts): max abs error
 * relative to the largest reference value 1e-4, and 5e-3 for the stem's gradients and what one
 * step of them moves (conv1 and bn1, below the max pool: float32 ReLU/max-pool decisions that
 * every stem weight sums over).
 */
export function resnet18StepLimit(name: string): number {
  const stem = [
    "grad_conv1_weight",
    "grad_bn1_weight",
    "grad_bn1_bias",
    "conv1.weight",
    "bn1.weight",
    "bn1.bias",
  ];
  return stem.includes(name) ? 5e-3 : 1e-4;
}

/** What one step needs from a fixture. */
export interface ReferenceStep {
  arch: Arch;
  /** The backbone's state dict (its fc is replaced by the reference's `head_init_*`). */
  weights: StateDict;
  /** The reference: `head_init_*`, `step_*`, `grad_*`, `after_step.*`, `after_step_eval_logits`. */
  ref: StateDict;
  /** Input batch, NCHW as PyTorch took it. */
  input: HostTensor;
  labels: number[];
  bn: BnMode;
  /**
   * A second reference holding any of `ref`'s keys (and gradients `ref` lacks, e.g.
   * `grad_bn1_bias`), such as a float64 re-computation: the same quantities are measured against
   * it into {@linkcode StepErrors.errorsAlso}.
   */
  also?: StateDict;
}

/** The step's errors against the reference, by quantity, and how long the step took. */
export interface StepErrors {
  errors: Record<string, ErrorMeasure>;
  /** The errors against {@linkcode ReferenceStep.also}, by the same names (empty without it). */
  errorsAlso: Record<string, ErrorMeasure>;
  /** Forward + backward + SGD update, in ms. */
  stepMs: number;
  /** BatchNorm running stats and `num_batches_tracked` counters the step changed, by name. */
  changedBuffers: string[];
}

/**
 * Runs the reference step on webgpu and compares: per-example losses, every `grad_*` the
 * reference has (PyTorch layout), every `after_step.*` tensor (parameters and BN running stats;
 * `num_batches_tracked` must be equal, asserted here), and `after_step_eval_logits`.
 */
export async function runReferenceStep(step: ReferenceStep): Promise<StepErrors> {
  await setupBackend();
  const { ref } = step;
  const get = (k: string): HostTensor => {
    const t = ref.get(k);
    if (!t) throw new Error(`the reference has no ${k}`);
    return t;
  };
  const weights: StateDict = new Map(step.weights);
  weights.set("fc.weight", get("head_init_weight"));
  weights.set("fc.bias", get("head_init_bias"));
  const numClasses = get("head_init_bias").shape[0];
  const model = new ResNet(step.arch, numClasses);
  loadStateDict(model, weights);
  const torchShapes = new Map(resnetSpec(step.arch, numClasses).map((e) => [e.name, e.shape]));

  const [n, c, h, w] = step.input.shape;
  const x = tf.tidy(() =>
    tf.transpose(tf.tensor4d(step.input.data as Float32Array, [n, c, h, w]), [0, 2, 3, 1])
  ) as tf.Tensor4D;
  const labels = tf.tensor1d(step.labels, "int32");
  const sgd = new Sgd(
    buildParamGroups(model.parameters(), { lr: 0.01, headLrMult: 10 }),
    { weightDecay: 0.001 },
  );

  const buffersNow = async () => {
    const values = new Map<string, string>();
    for (const [name, v] of model.buffers()) {
      values.set(name, new Uint8Array((await v.data() as Float32Array).buffer).join());
    }
    for (const [name, count] of model.numBatchesTracked) values.set(name, String(count));
    return values;
  };
  const buffersBefore = await buffersNow();

  const errors: Record<string, ErrorMeasure> = {};
  const errorsAlso: Record<string, ErrorMeasure> = {};
  /** Measures webtune's `actual` against each reference that has `key`, as `name`. */
  const measure = (key: string, name: string, actual: ArrayLike<number>) => {
    const want = ref.get(key), wantAlso = step.also?.get(key);
    if (want) errors[name] = compare(actual, want.data as Float32Array);
    if (wantAlso) errorsAlso[name] = compare(actual, wantAlso.data as Float32Array);
  };
  const start = performance.now();
  const g = computeGradients(model, { x, labels }, sgd.trainable(), step.bn);
  sgd.step(g.grads);
  await g.lossPerExample.data(); // waits for the step to finish, for the timing
  const stepMs = performance.now() - start;

  get("step_loss_per_example");
  measure("step_loss_per_example", "loss", await g.lossPerExample.data());
  const gradKeys = new Set([...ref.keys(), ...step.also?.keys() ?? []]);
  for (const key of gradKeys) {
    if (!key.startsWith("grad_")) continue;
    // grad_conv1_weight -> conv1.weight, grad_bn1_weight -> bn1.weight, grad_fc_weight -> fc.weight
    const name = key.slice(5).replace(/_(weight|bias)$/, ".$1");
    const grad = g.grads.get(name);
    if (!grad) throw new Error(`${key}: the model has no gradient for ${name}`);
    const torch = tf.tidy(() =>
      grad.rank === 4
        ? tf.transpose(grad, [3, 2, 0, 1])
        : grad.rank === 2
        ? tf.transpose(grad)
        : grad.clone()
    );
    assertEquals(torch.shape, torchShapes.get(name), key);
    measure(key, key, await torch.data());
    torch.dispose();
  }
  disposeGradients(g);

  for (const [key, want] of ref) {
    if (!key.startsWith("after_step.")) continue;
    const name = key.slice("after_step.".length);
    if (want.dtype === "int64") {
      assertEquals(BigInt(model.numBatchesTracked.get(name) ?? -1), want.data[0], name);
      continue;
    }
    const variable = model.variables.get(name);
    if (!variable) throw new Error(`${key}: the model has no ${name}`);
    const torch = tf.tidy(() =>
      variable.rank === 4
        ? tf.transpose(variable, [3, 2, 0, 1])
        : variable.rank === 2
        ? tf.transpose(variable)
        : variable.clone()
    );
    measure(key, name, await torch.data());
    torch.dispose();
  }
  for (const key of step.also?.keys() ?? []) {
    if (key.startsWith("after_step.") && !ref.has(key)) {
      throw new Error(`${key}: only the second reference has it (measure it from ref's keys)`);
    }
  }
  const buffersAfter = await buffersNow();
  const changedBuffers = [...buffersBefore.keys()].filter((k) =>
    buffersBefore.get(k) !== buffersAfter.get(k)
  );
  const logits = tf.tidy(() => model.forward(x, "eval").logits);
  get("after_step_eval_logits");
  measure("after_step_eval_logits", "after_step_eval_logits", await logits.data());
  tf.dispose([x, labels, logits]);
  sgd.dispose();
  model.dispose();
  return { errors, errorsAlso, stepMs, changedBuffers };
}
