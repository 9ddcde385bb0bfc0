/**
 * `deno task soak`: a 20-epoch tiny run (synthetic data, 32 px, 8 training images) doing what
 * `finetune`/`scratch` do each epoch — train, test, encode the checkpoint and optimizer state —
 * and printing `tf.memory().numTensors` and the process's RSS after every epoch. Both must stay
 * flat; a leak of one tensor per batch or a growing cache shows here long before a real run
 * runs out of memory. No flags: the same numbers every time (tests/soak_test.ts checks the tensor
 * count over a few epochs).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  defaultRunConfig,
  describeAdapter,
  encodeWeights,
  prepareRun,
  runTraining,
  setupBackend,
} from "@webtune/core";
import { writeSafetensors } from "@webtune/models";
import { openData } from "./sources.ts";

/** What one epoch of a soak leaves behind. */
export interface SoakSample {
  epoch: number;
  numTensors: number;
  numBytes: number;
  rss: number;
}

/**
 * Trains a tiny scratch run for `epochs` epochs (one batch of 4 per epoch), encoding the
 * checkpoint after each as the CLI does, and reports memory after each epoch.
 *
 * @example
 * ```ts ignore
 * await soak(3, (s) => console.log(s.epoch, s.numTensors));
 * ```
 */
export async function soak(
  epochs: number,
  onEpoch: (sample: SoakSample) => void,
  imagesPerEpoch = 4,
): Promise<void> {
  const config = {
    ...defaultRunConfig("scratch"),
    imageSize: 32,
    batchSize: 4,
    epochs,
    limitTrain: imagesPerEpoch,
    limitTest: 4,
  };
  const data = await openData("synthetic", config.seed, () => {});
  const run = await prepareRun(config, data);
  try {
    await runTraining(run, {
      afterEpoch: async (_metrics, history) => {
        // What the CLI's checkpoint encodes (written to disk there; only encoded here).
        const meta = { task: "scratch", epoch: history.length, classes: run.classes };
        await encodeWeights(run.model, meta);
        writeSafetensors(await run.optimizer.exportState());
        const { numTensors, numBytes } = tf.memory();
        onEpoch({ epoch: history.length, numTensors, numBytes, rss: Deno.memoryUsage().rss });
      },
    });
  } finally {
    run.dispose();
  }
}

if (import.meta.main) {
  const adapter = await setupBackend({ backend: "webgpu", env: Deno.env });
  console.log(`device: ${describeAdapter(adapter)}`);
  console.log("epoch  tensors  tensor MiB  RSS MiB");
  const mib = (n: number) => (n / 2 ** 20).toFixed(1).padStart(10);
  await soak(20, (s) =>
    console.log(
      `${String(s.epoch).padStart(5)}  ${String(s.numTensors).padStart(7)} ${mib(s.numBytes)} ${
        mib(s.rss).padStart(8)
      }`,
    ), 8);
}
