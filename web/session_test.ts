/**
 * A GPU device lost mid-training (simulated with `device.destroy()`): the session says so on one
 * line, keeps the last complete epoch's model downloadable, and trains again on a new device.
 */
import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import * as tf from "@tensorflow/tfjs-core";
import { defaultRunConfig, setupBackend } from "@webtune/core";
import { syntheticImageSet } from "@webtune/data";
import { readSafetensors } from "@webtune/models";
import { Session } from "./session.ts";

Deno.test("session: a lost device keeps the last epoch's model and Start trains again", async () => {
  const session = new Session();
  session.adapter = await setupBackend({ backend: "webgpu" });
  session.setData({
    kind: "synthetic",
    description: "synthetic",
    classes: ["circles", "stripes"],
    train: syntheticImageSet("train", { perClass: 2, imageSize: 40 }),
    test: syntheticImageSet("test", { perClass: 1, imageSize: 40 }),
  });
  const config = { ...defaultRunConfig("scratch"), imageSize: 32, batchSize: 4, epochs: 2 };
  const error = await assertRejects(() =>
    session.train(config, (e) => {
      if (e.type === "epoch-start" && e.epoch === 2) {
        (tf.backend() as unknown as { device: GPUDevice }).device.destroy();
      }
    })
  );
  assertMatch(
    (error as Error).message,
    /^the GPU device was lost during training \(destroyed: .*\); the model after epoch 1 is kept and can be downloaded; Start trains again on a new device$/,
  );
  assertEquals([session.run, session.hasModel], [undefined, true]);
  const { weights } = await session.modelFiles();
  assertEquals(readSafetensors(weights, "model").metadata.epoch, "1");

  const again = await session.train({ ...config, epochs: 1 }, () => {});
  assertEquals(again.epochs.length, 1);
  assertEquals(session.deviceLost, undefined);
  session.discardRun();
});
