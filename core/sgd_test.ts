import * as tf from "@tensorflow/tfjs-core";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { buildParamGroups } from "./param_groups.ts";
import { applySchedulePoint } from "./optimizer.ts";
import { Sgd } from "./sgd.ts";
import { setupBackend } from "./backend.ts";

await setupBackend();

function vars() {
  return {
    backbone: tf.variable(tf.tensor1d([1, -2]), true),
    head: tf.variable(tf.tensor1d([0.5]), true),
  };
}

Deno.test("param groups: backbone at lr, head at lr × mult; scratch all at lr; frozen head only", () => {
  const { backbone, head } = vars();
  const params: [string, tf.Variable][] = [["conv1.weight", backbone], ["fc.weight", head]];
  const tuned = buildParamGroups(params, { lr: 0.01 });
  assertEquals(tuned.map((g) => [g.name, g.lr, g.params.map(([n]) => n)]), [
    ["backbone", 0.01, ["conv1.weight"]],
    ["head", 0.1, ["fc.weight"]],
  ]);
  const scratch = buildParamGroups(params, { lr: 0.01, paramGroup: false });
  assertEquals(scratch.map((g) => [g.lr, g.params.length]), [[0.01, 2]]);
  const frozen = buildParamGroups(params, { lr: 0.01, freezeBackbone: true, headLrMult: 5 });
  assertEquals(frozen.map((g) => [g.name, g.lr, g.params.map(([n]) => n)]), [
    ["head", 0.05, ["fc.weight"]],
  ]);
  assertThrows(() => buildParamGroups([["a", backbone]], { lr: 1 }), Error, "fc.*");
  tf.dispose([backbone, head]);
});

Deno.test("sgd: torch.optim.SGD update with weight decay, per-group lr", async () => {
  const { backbone, head } = vars();
  const sgd = new Sgd(
    buildParamGroups([["conv1.weight", backbone], ["fc.weight", head]], { lr: 0.1 }),
    { weightDecay: 0.01 },
  );
  const grads = new Map<string, tf.Tensor>([
    ["conv1.weight", tf.tensor1d([0.5, 1])],
    ["fc.weight", tf.tensor1d([2])],
  ]);
  sgd.step(grads);
  const b = await backbone.data(), h = await head.data();
  // p - lr * (g + wd * p)
  assertAlmostEquals(b[0], 1 - 0.1 * (0.5 + 0.01 * 1), 1e-6);
  assertAlmostEquals(b[1], -2 - 0.1 * (1 + 0.01 * -2), 1e-6);
  assertAlmostEquals(h[0], 0.5 - 1.0 * (2 + 0.01 * 0.5), 1e-6);
  tf.dispose([backbone, head, ...grads.values()]);
});

Deno.test("sgd: momentum and nesterov follow PyTorch (buffer starts at the first gradient)", async () => {
  for (const nesterov of [false, true]) {
    const p = tf.variable(tf.scalar(1), true);
    const sgd = new Sgd([{ name: "all", lr: 0.1, params: [["fc.weight", p]] }], {
      momentum: 0.9,
      nesterov,
    });
    let expected = 1, buf = 0;
    for (let step = 0; step < 3; step++) {
      const g = tf.scalar(2 * (await p.data())[0]); // d/dp of p²
      const gv = 2 * expected;
      buf = step === 0 ? gv : 0.9 * buf + gv;
      expected -= 0.1 * (nesterov ? gv + 0.9 * buf : buf);
      sgd.step(new Map([["fc.weight", g]]));
      g.dispose();
      assertAlmostEquals((await p.data())[0], expected, 1e-6);
    }
    sgd.dispose();
    p.dispose();
  }
  assertThrows(() => new Sgd([], { nesterov: true }), Error, "nesterov");
  const shared = tf.variable(tf.scalar(1), true);
  const twice = [
    { name: "backbone", lr: 0.1, params: [["w", shared]] as [string, tf.Variable][] },
    { name: "head", lr: 1, params: [["w", shared]] as [string, tf.Variable][] },
  ];
  assertThrows(() => new Sgd(twice), Error, "more than one param group");
  shared.dispose();
});

Deno.test("sgd: a one-cycle point scales every group's lr and turns momentum on, as OneCycleLR does", async () => {
  const { backbone, head } = vars();
  const sgd = new Sgd(
    buildParamGroups([["conv1.weight", backbone], ["fc.weight", head]], { lr: 0.1 }),
    { weightDecay: 0.01 }, // built with momentum 0, like the chapter's SGD
  );
  // torch.optim.SGD with the momentum OneCycleLR writes into the group before each step:
  // d = g + wd·p; buf = d (first step) or m·buf + d; p ← p − lr·buf.
  const points = [{ lrFactor: 0.04, momentum: 0.95 }, { lrFactor: 0.5, momentum: 0.9 }];
  const g = [0.5, 2];
  const expected = [1, 0.5];
  const buf = [0, 0];
  for (let step = 0; step < 2; step++) {
    applySchedulePoint(sgd, points[step]);
    for (const k of [0, 1]) {
      const d = g[k] + 0.01 * expected[k];
      buf[k] = step === 0 ? d : points[step].momentum * buf[k] + d;
      expected[k] -= (k === 0 ? 0.1 : 1.0) * points[step].lrFactor * buf[k];
    }
    const grads = new Map<string, tf.Tensor>([
      ["conv1.weight", tf.tensor1d([g[0], 0])],
      ["fc.weight", tf.tensor1d([g[1]])],
    ]);
    sgd.step(grads);
    tf.dispose([...grads.values()]);
  }
  assertAlmostEquals((await backbone.data())[0], expected[0], 1e-6);
  assertAlmostEquals((await head.data())[0], expected[1], 1e-6);
  assertEquals(sgd.momentumBuffers.size, 2);
  sgd.dispose();
  tf.dispose([backbone, head]);
});

Deno.test("sgd: momentum state round-trips; a wrong name or shape is refused", async () => {
  const { backbone, head } = vars();
  const groups = buildParamGroups([["conv1.weight", backbone], ["fc.weight", head]], { lr: 0.1 });
  const sgd = new Sgd(groups, { momentum: 0.9 });
  const grads = new Map<string, tf.Tensor>([
    ["conv1.weight", tf.tensor1d([1, 2])],
    ["fc.weight", tf.tensor1d([3])],
  ]);
  sgd.step(grads);
  const state = await sgd.exportState();
  const other = new Sgd(groups, { momentum: 0.9 });
  other.importState(state);
  assertEquals(await other.exportState(), state);
  const wrongShape = new Map([["fc.weight", { ...state.get("conv1.weight")! }]]);
  assertThrows(() => other.importState(wrongShape, "opt.safetensors"), Error, "shape");
  assertThrows(() => other.importState(new Map([["x", state.get("fc.weight")!]])), Error, "x");
  sgd.dispose();
  other.dispose();
  tf.dispose([backbone, head, ...grads.values()]);
});
