import * as tf from "@tensorflow/tfjs-core";
import { assertEquals, assertThrows } from "@std/assert";
import { setupBackend } from "./backend.ts";
import type { TrainEvent } from "./events.ts";
import {
  buildParamGroups,
  freezeSwitchAt,
  frozenParameters,
  trainableDuring,
} from "./param_groups.ts";
import { Sgd } from "./sgd.ts";

await setupBackend();

function model() {
  return {
    conv: tf.variable(tf.tensor1d([1, -2]), true),
    bn: tf.variable(tf.tensor1d([0.5]), true),
    fcWeight: tf.variable(tf.tensor1d([3]), true),
    fcBias: tf.variable(tf.tensor1d([-1]), true),
  };
}

function named(m: ReturnType<typeof model>): [string, tf.Variable][] {
  return [
    ["conv1.weight", m.conv],
    ["bn1.weight", m.bn],
    ["fc.weight", m.fcWeight],
    ["fc.bias", m.fcBias],
  ];
}

Deno.test("freeze-epochs: head only for the first N epochs, then every layer at its group's lr", async () => {
  const m = model();
  const sgd = new Sgd(buildParamGroups(named(m), { lr: 0.1, headLrMult: 10 }));
  const grads = new Map<string, tf.Tensor>(named(m).map(([n]) => [n, tf.tensor1d([1])]));
  grads.set("conv1.weight", tf.tensor1d([1, 1]));
  const trainedNames: string[][] = [];
  const events: TrainEvent[] = [];
  for (let epoch = 1; epoch <= 3; epoch++) {
    sgd.frozen = frozenParameters(sgd.groups, epoch, { freezeEpochs: 2 });
    const trainable = freezeSwitchAt(epoch, 1, 2);
    if (trainable) {
      events.push({ type: "freeze", epoch, trainable, parameters: sgd.trainable().length });
    }
    trainedNames.push(sgd.trainable().map(([n]) => n));
    sgd.step(grads);
  }
  assertEquals(trainedNames, [
    ["fc.weight", "fc.bias"],
    ["fc.weight", "fc.bias"],
    ["conv1.weight", "bn1.weight", "fc.weight", "fc.bias"],
  ]);
  assertEquals(events, [
    { type: "freeze", epoch: 1, trainable: "head", parameters: 2 },
    { type: "freeze", epoch: 3, trainable: "all", parameters: 4 },
  ]);
  // The backbone moved once (epoch 3) at lr 0.1, the head three times at lr 1.
  assertEquals(Array.from(await m.conv.data()), [1 - 0.1, -2 - 0.1].map(Math.fround));
  assertEquals(Array.from(await m.bn.data()), [Math.fround(0.5 - 0.1)]);
  assertEquals(Array.from(await m.fcWeight.data()), [3 - 3]);
  assertEquals(Array.from(await m.fcBias.data()), [-1 - 3]);
  tf.dispose([...grads.values(), ...Object.values(m)]);
});

Deno.test("freeze-epochs: the scratch model's single group freezes too; 0 never freezes", () => {
  const m = model();
  const groups = buildParamGroups(named(m), { lr: 0.1, paramGroup: false });
  assertEquals(groups.length, 1);
  assertEquals([...frozenParameters(groups, 1, { freezeEpochs: 1 })], [
    "conv1.weight",
    "bn1.weight",
  ]);
  assertEquals(frozenParameters(groups, 2, { freezeEpochs: 1 }).size, 0);
  assertEquals(frozenParameters(groups, 1, { freezeEpochs: 0 }).size, 0);
  assertEquals([1, 2, 3].map((e) => trainableDuring(e, 0)), ["all", "all", "all"]);
  assertThrows(
    () => frozenParameters(groups, 1, { freezeEpochs: 1, classifier: "head" }),
    Error,
    "head.*",
  );
  assertThrows(() => trainableDuring(1, 1.5), Error, "--freeze-epochs");
  tf.dispose(Object.values(m));
});

Deno.test("freeze-epochs: a resumed run announces the state it resumes into, and the switch", () => {
  // Fresh run, N = 2: head at epoch 1, all at 3, nothing else.
  assertEquals([1, 2, 3, 4].map((e) => freezeSwitchAt(e, 1, 2)), [
    "head",
    undefined,
    "all",
    undefined,
  ]);
  // Resumed after epoch 1 (still frozen), after epoch 2 (the switch is next), after epoch 3.
  assertEquals(freezeSwitchAt(2, 2, 2), "head");
  assertEquals(freezeSwitchAt(3, 3, 2), "all");
  assertEquals(freezeSwitchAt(4, 4, 2), undefined);
  assertEquals([1, 2].map((e) => freezeSwitchAt(e, 1, 0)), [undefined, undefined]);
});
