import * as tf from "@tensorflow/tfjs-core";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { readSafetensors, writeSafetensors } from "@webtune/models";
import { AdamW } from "./adamw.ts";
import { createOptimizer } from "./create_optimizer.ts";
import { setupBackend } from "./backend.ts";
import { buildParamGroups } from "./param_groups.ts";
import { Sgd } from "./sgd.ts";

await setupBackend();

/** One parameter element's hyper-parameters at one step. */
interface StepHypers {
  lr: number;
  beta1: number;
}

/**
 * `torch.optim.AdamW`'s documented algorithm (amsgrad=False, maximize=False), in float64, one
 * scalar element at a time, written from the docs' pseudo-code rather than from adamw.ts:
 *   θ ← θ − γλθ;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
 *   m̂ = m / (1−β1^t);  v̂ = v / (1−β2^t);  θ ← θ − γ m̂ / (√v̂ + ε)
 * The `torch.optim.AdamW` source computes the same with the bias corrections moved around
 * (step_size = γ/(1−β1^t), denom = √v/√(1−β2^t) + ε), which is the identical value.
 */
function adamwReference(
  theta0: number,
  grads: number[],
  hypers: StepHypers[],
  { beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = {},
): number[] {
  let theta = theta0, m = 0, v = 0;
  const out: number[] = [];
  grads.forEach((g, i) => {
    const t = i + 1;
    const { lr, beta1 } = hypers[i];
    theta -= lr * weightDecay * theta;
    m = beta1 * m + (1 - beta1) * g;
    v = beta2 * v + (1 - beta2) * g * g;
    const mHat = m / (1 - beta1 ** t);
    const vHat = v / (1 - beta2 ** t);
    theta -= lr * mHat / (Math.sqrt(vHat) + eps);
    out.push(theta);
  });
  return out;
}

const BACKBONE0 = [1, -2, 0.25];
const HEAD0 = [0.5, -0.75];
/** Fixed gradients per step (mixed signs and scales, a zero, a sign flip), so both sides see the same. */
const BACKBONE_GRADS = [[0.5, 1, 0], [-0.3, 2, 1e-3], [0.1, -4, 0.5], [0.7, 0.2, -0.5], [
  -1,
  1,
  2,
]];
const HEAD_GRADS = [[2, -1e-4], [1.5, 3], [-2, 0.25], [0.01, -1], [3, 0]];

function setup(options: ConstructorParameters<typeof AdamW>[1] = {}) {
  const backbone = tf.variable(tf.tensor1d(BACKBONE0), true);
  const head = tf.variable(tf.tensor1d(HEAD0), true);
  const groups = buildParamGroups([["conv1.weight", backbone], ["fc.weight", head]], {
    lr: 0.01,
    headLrMult: 10,
  });
  return { backbone, head, opt: new AdamW(groups, options) };
}

function gradsAt(step: number): Map<string, tf.Tensor> {
  return new Map([
    ["conv1.weight", tf.tensor1d(BACKBONE_GRADS[step])],
    ["fc.weight", tf.tensor1d(HEAD_GRADS[step])],
  ]);
}

function stepWith(opt: AdamW, step: number): void {
  const grads = gradsAt(step);
  opt.step(grads);
  tf.dispose([...grads.values()]);
}

/** Expected values of every element after each step, from the reference. */
function expected(
  initial: number[],
  grads: number[][],
  hypers: StepHypers[],
  options?: Parameters<typeof adamwReference>[3],
): number[][] {
  const perElement = initial.map((p, j) =>
    adamwReference(p, grads.map((g) => g[j]), hypers, options)
  );
  return grads.map((_, step) => perElement.map((trajectory) => trajectory[step]));
}

function assertClose(actual: ArrayLike<number>, want: number[], what: string): void {
  assertEquals(actual.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    assertAlmostEquals(actual[i], want[i], 1e-6, `${what}[${i}]: ${actual[i]} vs ${want[i]}`);
  }
}

Deno.test("adamw: five steps match torch.optim.AdamW's documented update to 1e-6, per-group lr", async () => {
  const { backbone, head, opt } = setup({ weightDecay: 0.01 });
  const constant = (lr: number) => BACKBONE_GRADS.map(() => ({ lr, beta1: 0.9 }));
  const wantBackbone = expected(BACKBONE0, BACKBONE_GRADS, constant(0.01));
  const wantHead = expected(HEAD0, HEAD_GRADS, constant(0.1));
  for (let step = 0; step < 5; step++) {
    stepWith(opt, step);
    assertClose(await backbone.data(), wantBackbone[step], `backbone after step ${step + 1}`);
    assertClose(await head.data(), wantHead[step], `head after step ${step + 1}`);
  }
  // Adam moves every element with a non-zero gradient by about lr on the first step: a wrong
  // bias correction would show here, far above the tolerance.
  assertAlmostEquals(wantHead[0][0], HEAD0[0] * (1 - 0.1 * 0.01) - 0.1, 1e-6);
  opt.dispose();
  tf.dispose([backbone, head]);
});

Deno.test("adamw: the schedule's lr factor and beta1 apply at the step they are set", async () => {
  const { backbone, head, opt } = setup({ weightDecay: 0.05, betas: [0.8, 0.99], eps: 1e-6 });
  const factors = [0.04, 0.5, 1, 0.7, 0.1];
  const beta1s = [0.95, 0.9, 0.85, 0.9, 0.95];
  const hypers = (lr: number) => factors.map((f, i) => ({ lr: lr * f, beta1: beta1s[i] }));
  const options = { beta2: 0.99, eps: 1e-6, weightDecay: 0.05 };
  const wantBackbone = expected(BACKBONE0, BACKBONE_GRADS, hypers(0.01), options);
  const wantHead = expected(HEAD0, HEAD_GRADS, hypers(0.1), options);
  for (let step = 0; step < 5; step++) {
    opt.lrFactor = factors[step];
    opt.setMomentum(beta1s[step]);
    stepWith(opt, step);
  }
  assertClose(await backbone.data(), wantBackbone[4], "backbone");
  assertClose(await head.data(), wantHead[4], "head");
  opt.dispose();
  tf.dispose([backbone, head]);
});

Deno.test("adamw: a frozen parameter is not decayed and starts its own step count when unfrozen", async () => {
  const { backbone, head, opt } = setup();
  opt.frozen = new Set(["conv1.weight"]);
  assertEquals(opt.trainable().map(([n]) => n), ["fc.weight"]);
  for (let step = 0; step < 2; step++) stepWith(opt, step);
  assertEquals(Array.from(await backbone.data()), BACKBONE0);
  opt.frozen = new Set();
  for (let step = 2; step < 5; step++) stepWith(opt, step);
  const constant = (lr: number, n: number) => Array.from({ length: n }, () => ({ lr, beta1: 0.9 }));
  // The backbone's first update is its step 1 (bias correction 1 − β1¹), on the third gradient.
  const wantBackbone = expected(BACKBONE0, BACKBONE_GRADS.slice(2), constant(0.01, 3));
  const wantHead = expected(HEAD0, HEAD_GRADS, constant(0.1, 5));
  assertClose(await backbone.data(), wantBackbone[2], "backbone");
  assertClose(await head.data(), wantHead[4], "head");
  opt.dispose();
  tf.dispose([backbone, head]);
});

Deno.test("adamw: exported state resumes exactly; foreign state is refused", async () => {
  const straight = setup();
  for (let step = 0; step < 5; step++) stepWith(straight.opt, step);

  const first = setup();
  for (let step = 0; step < 3; step++) stepWith(first.opt, step);
  const state = await first.opt.exportState();
  assertEquals(state.get("fc.weight.step"), {
    dtype: "int64",
    shape: [],
    data: BigInt64Array.of(3n),
  });
  const resumed = setup();
  resumed.backbone.assign(first.backbone);
  resumed.head.assign(first.head);
  // Through the checkpoint file format, as a resumed run reads it.
  const file = readSafetensors(writeSafetensors(state), "optimizer.safetensors").tensors;
  resumed.opt.importState(file, "optimizer.safetensors");
  for (let step = 3; step < 5; step++) stepWith(resumed.opt, step);
  assertEquals(await resumed.backbone.data(), await straight.backbone.data());
  assertEquals(await resumed.head.data(), await straight.head.data());

  const sgd = new Sgd(straight.opt.groups, { momentum: 0.9 });
  const grads = gradsAt(0);
  sgd.step(grads);
  const sgdState = await sgd.exportState();
  assertThrows(() => resumed.opt.importState(sgdState, "o.safetensors"), Error, "o.safetensors");
  assertThrows(() => sgd.importState(state, "o.safetensors"), Error, "not a parameter");
  const partial = new Map([...state].filter(([k]) => !k.endsWith(".exp_avg_sq")));
  assertThrows(() => resumed.opt.importState(partial), Error, "lacks exp_avg_sq");

  for (const r of [straight, first, resumed]) {
    r.opt.dispose();
    tf.dispose([r.backbone, r.head]);
  }
  sgd.dispose();
  tf.dispose([...grads.values()]);
});

Deno.test("createOptimizer: sgd or adamw from run settings; SGD-only settings refused for AdamW", () => {
  const p = tf.variable(tf.tensor1d([1]), true);
  const groups = [{ name: "head", lr: 0.1, params: [["fc.weight", p]] as [string, tf.Variable][] }];
  const base = { weightDecay: 1e-3, momentum: 0, nesterov: false };
  const sgd = createOptimizer(groups, { ...base, optimizer: "sgd", momentum: 0.9 });
  assertEquals([sgd.kind, (sgd as Sgd).options.momentum, (sgd as Sgd).options.weightDecay], [
    "sgd",
    0.9,
    1e-3,
  ]);
  const adamw = createOptimizer(groups, { ...base, optimizer: "adamw" }) as AdamW;
  assertEquals([adamw.kind, adamw.options.weightDecay, adamw.options.betas, adamw.options.eps], [
    "adamw",
    1e-3,
    [0.9, 0.999],
    1e-8,
  ]);
  assertThrows(
    () => createOptimizer(groups, { ...base, optimizer: "adamw", momentum: 0.9 }),
    Error,
    "--momentum",
  );
  assertThrows(() => new AdamW(groups, { betas: [1, 0.999] }), Error, "beta1");
  assertThrows(() => new AdamW(groups, { betas: [0.9, -0.1] }), Error, "beta2");
  p.dispose();
});
