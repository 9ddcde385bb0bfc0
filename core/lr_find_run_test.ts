import * as tf from "@tensorflow/tfjs-core";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { AdamW } from "./adamw.ts";
import { setupBackend } from "./backend.ts";
import { lrFindOnModel } from "./lr_find_run.ts";
import { buildParamGroups } from "./param_groups.ts";
import { Sgd } from "./sgd.ts";
import { iterate, lcg, separableBatches, TinyModel } from "./test_util.ts";

await setupBackend();

Deno.test("lr-find on a model: one batch per lr across epochs, the sweep's lr is the backbone's", async () => {
  const model = new TinyModel(2, lcg(3));
  const groups = buildParamGroups(model.parameters(), { lr: 1e-3, headLrMult: 10 });
  const sgd = new Sgd(groups);
  const batches = separableBatches(12, 4); // 3 batches per epoch
  const epochs: number[] = [];
  const factors: number[] = [];
  const before = tf.memory().numTensors;
  const result = await lrFindOnModel({
    model,
    optimizer: sgd,
    baseLr: 1e-3,
    numIt: 10,
    stopDiv: false,
    trainBatches: (epoch) => {
      epochs.push(epoch);
      return iterate(batches);
    },
    onStep: () => factors.push(sgd.lrFactor),
  });
  assertEquals(result.lrs.length, 10);
  assertEquals(epochs, [1, 2, 3, 4]);
  result.lrs.forEach((lr, i) => assertAlmostEquals(factors[i], lr / 1e-3, 1e-9));
  // Every batch's loss is a mean per example of a 2-class problem: finite and positive.
  for (const loss of result.raw_losses) assert(loss > 0 && Number.isFinite(loss), `${loss}`);
  assertEquals(tf.memory().numTensors, before);
  sgd.dispose();
  model.dispose();
});

Deno.test("lr-find on a model: AdamW's loss diverges at large rates and the sweep stops there", async () => {
  const model = new TinyModel(2, lcg(5));
  const adamw = new AdamW(buildParamGroups(model.parameters(), { lr: 1e-4 }));
  const batches = separableBatches(16, 4);
  const result = await lrFindOnModel({
    model,
    optimizer: adamw,
    baseLr: 1e-4,
    startLr: 1e-5,
    endLr: 1e4,
    numIt: 60,
    trainBatches: () => iterate(batches),
  });
  assertEquals(result.stop, "diverged");
  assert(result.lrs.length < 60, `${result.lrs.length} batches`);
  const { steep } = result.suggestions!;
  assert(steep.lr >= 1e-5 && steep.lr <= result.lrs.at(-1)!, `steep ${steep.lr}`);
  adamw.dispose();
  model.dispose();
});
