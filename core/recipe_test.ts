import * as tf from "@tensorflow/tfjs-core";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { setupBackend } from "./backend.ts";
import { buildParamGroups } from "./param_groups.ts";
import { type FreezeEvent, type RecipeSettings, TrainingRecipe } from "./recipe.ts";
import { Sgd } from "./sgd.ts";

await setupBackend();

function params(): [string, tf.Variable][] {
  return [
    ["conv1.weight", tf.variable(tf.tensor1d([1, 2]), true)],
    ["fc.weight", tf.variable(tf.tensor1d([3]), true)],
  ];
}

const ONECYCLE: RecipeSettings = {
  lr: 1e-3,
  epochs: 3,
  batchesPerEpoch: 4,
  schedule: "onecycle",
  warmupEpochs: 0,
  freezeEpochs: 1,
};

/** Drives `recipe` from `startEpoch` to the end, recording what the loop would see. */
function drive(recipe: TrainingRecipe, startEpoch: number) {
  const events: FreezeEvent[] = [], lrs: number[] = [], momenta: number[] = [];
  const trainable: string[][] = [];
  for (let epoch = startEpoch; epoch <= recipe.settings.epochs; epoch++) {
    const event = recipe.startEpoch(epoch, startEpoch);
    if (event) events.push(event);
    trainable.push(recipe.optimizer.trainable().map(([n]) => n));
    for (let i = 0; i < recipe.settings.batchesPerEpoch; i++) {
      lrs.push(recipe.beforeBatch(epoch, i));
      momenta.push((recipe.optimizer as Sgd).momentum);
    }
  }
  return { events, lrs, momenta, trainable };
}

Deno.test("recipe: freeze for the first epoch, fastai's fine_tune: a cycle per phase, momentum cycled", () => {
  const p = params();
  const sgd = new Sgd(buildParamGroups(p, { lr: 1e-3 }));
  const { events, lrs, momenta, trainable } = drive(new TrainingRecipe(sgd, ONECYCLE), 1);
  assertEquals(events, [
    { type: "freeze", epoch: 1, trainable: "head", parameters: 1 },
    { type: "freeze", epoch: 2, trainable: "all", parameters: 2 },
  ]);
  assertEquals(trainable, [["fc.weight"], ["conv1.weight", "fc.weight"], [
    "conv1.weight",
    "fc.weight",
  ]]);
  assertEquals(lrs.length, 12);
  // The frozen epoch's cycle (4 batches, pct_start 0.99): from lr/25 to fastai's lr/1e5 at its
  // last batch.
  assertAlmostEquals(lrs[0], 1e-3 / 25, 1e-15);
  assertAlmostEquals(lrs[3], 1e-3 / 1e5, 1e-18);
  // The unfrozen epochs' cycle (8 batches) at half the lr: from lr/2/5 to lr/2/1e5.
  assertAlmostEquals(lrs[4], 1e-3 / 2 / 5, 1e-15);
  assertAlmostEquals(lrs[11], 1e-3 / 2 / 1e5, 1e-18);
  assertEquals(Math.max(...lrs.slice(0, 4)) <= 1e-3, true);
  assertEquals(Math.max(...lrs.slice(4)) <= 1e-3 / 2, true);
  for (const s of [0, 3, 4, 11]) assertAlmostEquals(momenta[s], 0.95, 1e-12, `momentum ${s}`);
  assertEquals(Math.min(...momenta) >= 0.85, true);
  // The optimizer's factor is the one for the last batch.
  assertAlmostEquals(sgd.lrFactor, lrs[11] / 1e-3, 1e-15);
  tf.dispose(p.map(([, v]) => v));
});

Deno.test("recipe: without head-only epochs, one-cycle spans all 12 batches as before", () => {
  const p = params();
  const sgd = new Sgd(buildParamGroups(p, { lr: 1e-3 }));
  const { events, lrs, momenta } = drive(
    new TrainingRecipe(sgd, { ...ONECYCLE, freezeEpochs: 0 }),
    1,
  );
  assertEquals(events, []);
  assertAlmostEquals(lrs[0], 1e-3 / 25, 1e-15); // OneCycleLR's initial_lr
  assertAlmostEquals(lrs[11], 1e-3 / 25 / 1e4, 1e-15); // and its min_lr at the last batch
  // Peak at batch 0.3·12 − 1 = 2.6: batch 3, just past it, is the highest; then they fall.
  for (let s = 1; s < 12; s++) assertEquals(lrs[s] > lrs[s - 1], s <= 3, `batch ${s}`);
  assertAlmostEquals(momenta[11], 0.95, 1e-12);
  tf.dispose(p.map(([, v]) => v));
});

Deno.test("recipe: a fine_tune run resumed in the middle of its unfrozen cycle sees the same rates", () => {
  // 4 epochs: epoch 1 head-only (cycle 1), epochs 2–4 all layers (cycle 2); resume at epoch 3.
  const p = params();
  const settings = { ...ONECYCLE, epochs: 4 };
  const straight = drive(
    new TrainingRecipe(new Sgd(buildParamGroups(p, { lr: 1e-3 })), settings),
    1,
  );
  const resumed = drive(
    new TrainingRecipe(new Sgd(buildParamGroups(p, { lr: 1e-3 })), settings),
    3,
  );
  assertEquals(resumed.lrs, straight.lrs.slice(8));
  assertEquals(resumed.momenta, straight.momenta.slice(8));
  assertEquals(resumed.events, []);
  assertEquals(resumed.trainable, [["conv1.weight", "fc.weight"], ["conv1.weight", "fc.weight"]]);
  tf.dispose(p.map(([, v]) => v));
});

Deno.test("recipe: a run resumed after epoch 1 sees the same rates and the switch", () => {
  const p = params();
  const straight = drive(
    new TrainingRecipe(new Sgd(buildParamGroups(p, { lr: 1e-3 })), ONECYCLE),
    1,
  );
  const resumed = drive(
    new TrainingRecipe(new Sgd(buildParamGroups(p, { lr: 1e-3 })), ONECYCLE),
    2,
  );
  assertEquals(resumed.lrs, straight.lrs.slice(4));
  assertEquals(resumed.momenta, straight.momenta.slice(4));
  assertEquals(resumed.events, [{ type: "freeze", epoch: 2, trainable: "all", parameters: 2 }]);
  tf.dispose(p.map(([, v]) => v));
});

Deno.test("recipe: warm-up, continuing past the plan, and bad settings", () => {
  const p = params();
  const sgd = new Sgd(buildParamGroups(p, { lr: 0.1 }));
  const base = { ...ONECYCLE, lr: 0.1, freezeEpochs: 0 };
  const constant = new TrainingRecipe(sgd, { ...base, schedule: "constant", warmupEpochs: 0.5 });
  // Half an epoch of 4 batches: 2 warm-up batches at lr/2 and lr, then lr; still lr past the plan.
  assertEquals([0, 1, 2, 3].map((i) => constant.beforeBatch(1, i)), [0.05, 0.1, 0.1, 0.1]);
  assertEquals(constant.beforeBatch(4, 0), 0.1);
  assertEquals(constant.startEpoch(1, 1), undefined);
  const cosine = new TrainingRecipe(sgd, { ...base, schedule: "cosine" });
  assertAlmostEquals(cosine.beforeBatch(2, 2), 0.05, 1e-15); // step 6 of 12: half the lr
  assertThrows(() => cosine.beforeBatch(4, 0), Error, "more --epochs");
  assertThrows(
    () => new TrainingRecipe(sgd, { ...base, freezeEpochs: 3 }),
    Error,
    "--freeze-backbone",
  );
  assertThrows(() => new TrainingRecipe(sgd, { ...base, warmupEpochs: 1 }), Error, "onecycle");
  assertThrows(
    () => new TrainingRecipe(sgd, { ...base, schedule: "cosine", warmupEpochs: 3 }),
    Error,
    "shorter",
  );
  tf.dispose(p.map(([, v]) => v));
});
