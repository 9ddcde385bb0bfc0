import * as tf from "@tensorflow/tfjs-core";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { buildParamGroups } from "./param_groups.ts";
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
});
