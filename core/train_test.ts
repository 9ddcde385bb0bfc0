import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals, assertGreater, assertLess, assertRejects } from "@std/assert";
import { setupBackend } from "./backend.ts";
import type { TrainEvent } from "./events.ts";
import { buildParamGroups } from "./param_groups.ts";
import { Sgd } from "./sgd.ts";
import { iterate, lcg, separableBatches, TinyModel } from "./test_util.ts";
import { DivergedError, train } from "./train.ts";
import { DeviceError } from "./device_errors.ts";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

await setupBackend();

Deno.test("train: d2l loop learns a separable task, emits events in order, leaks no tensors", async () => {
  const model = new TinyModel(2, lcg(1));
  const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 0.5 }), { weightDecay: 1e-3 });
  const trainSet = separableBatches(16, 4);
  const testSet = separableBatches(8, 4);
  const events: TrainEvent[] = [];
  const tensorsAfterEpoch: number[] = [];
  const result = await train({
    model,
    optimizer: sgd,
    epochs: 4,
    trainBatches: () => iterate(trainSet),
    testBatches: () => iterate(testSet),
    batchesPerEpoch: trainSet.length,
    trainExamples: 16,
    testExamples: 8,
    onEvent: (e) => events.push(e),
    afterEpoch: () => {
      tensorsAfterEpoch.push(tf.memory().numTensors);
      return Promise.resolve();
    },
  });
  assertEquals(result.stopped, false);
  assertEquals(result.epochs.map((e) => e.epoch), [1, 2, 3, 4]);
  assertLess(result.epochs[3].loss, result.epochs[0].loss);
  assertEquals(result.epochs[3].test_acc, 1);
  assertGreater(result.examplesPerSec, 0);
  assertEquals(new Set(tensorsAfterEpoch).size, 1, `tensors per epoch: ${tensorsAfterEpoch}`);
  const kinds = events.map((e) => e.type);
  assertEquals(kinds[0], "run-start");
  assertEquals(kinds.at(-1), "run-end");
  assertEquals(kinds.filter((k) => k === "batch-end").length, 16);
  assertEquals(kinds.slice(1, 7), [
    "epoch-start",
    "batch-end",
    "batch-end",
    "batch-end",
    "batch-end",
    "epoch-end",
  ]);
  model.dispose();
});

Deno.test("train: abort finishes the current batch and stops without recording the epoch", async () => {
  const model = new TinyModel(2, lcg(2));
  const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 0.1 }));
  const trainSet = separableBatches(16, 4);
  const controller = new AbortController();
  const events: TrainEvent[] = [];
  const result = await train({
    model,
    optimizer: sgd,
    epochs: 3,
    trainBatches: () => iterate(trainSet),
    testBatches: () => iterate(trainSet),
    batchesPerEpoch: 4,
    trainExamples: 16,
    testExamples: 16,
    signal: controller.signal,
    onEvent: (e) => {
      events.push(e);
      if (e.type === "batch-end" && e.epoch === 2 && e.batch === 2) controller.abort();
    },
  });
  assert(result.stopped);
  assertEquals(result.epochs.length, 1);
  assertEquals(events.at(-1), { type: "stopped", epoch: 2, batch: 2 });
  model.dispose();
});

Deno.test("train: a non-finite loss stops the run with the epoch, batch and learning rate", async () => {
  const model = new TinyModel(2, lcg(3));
  const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 1e308 }));
  const trainSet = separableBatches(16, 4);
  const epochsDone: number[] = [];
  const error = (await assertRejects(
    () =>
      train({
        model,
        optimizer: sgd,
        epochs: 3,
        trainBatches: () => iterate(trainSet),
        testBatches: () => iterate(trainSet),
        batchesPerEpoch: 4,
        trainExamples: 16,
        testExamples: 16,
        afterEpoch: (m) => {
          epochsDone.push(m.epoch);
          return Promise.resolve();
        },
      }),
    DivergedError,
    "training diverged",
  )) as DivergedError;
  assertEquals(error.epoch, 1);
  assertGreater(error.batch, 1); // the first batch's loss is finite; its step is what blows up
  assertEquals(error.lr, 1e308);
  assertEquals(epochsDone, []);
  model.dispose();
});

Deno.test("train: a WebGPU error the device reported stops the run instead of training on", async () => {
  if (tf.getBackend() !== "webgpu") throw new Error("this test needs WebGPU (mesa-vulkan-drivers)");
  const device = (tf.backend() as WebGPUBackend).device;
  const model = new TinyModel(2, lcg(4));
  const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 0.1 }));
  const trainSet = separableBatches(16, 4);
  let stepsStarted = 0;
  async function* batchesWithAGpuError() {
    for (const batch of trainSet) {
      if (stepsStarted++ === 1) {
        // As an invalid pipeline would: an error no scope catches, reported asynchronously.
        const reported = new Promise((resolve) =>
          device.addEventListener("uncapturederror", resolve, { once: true })
        );
        device.createBuffer({ size: 16, usage: 0 });
        await reported;
      }
      yield batch;
    }
  }
  await assertRejects(
    () =>
      train({
        model,
        optimizer: sgd,
        epochs: 2,
        trainBatches: batchesWithAGpuError,
        testBatches: () => iterate(trainSet),
        batchesPerEpoch: 4,
        trainExamples: 16,
        testExamples: 16,
      }),
    DeviceError,
    "the GPU rejected work",
  );
  assertEquals(stepsStarted, 2, "stopped after the step during which the error came");
  model.dispose();
});
