/**
 * The training setup the step benches share (bench.ts, bench_host.ts, bench_infer_step.ts): a
 * seeded ResNet, its SGD (cli/bench_pytorch.py mirrors the hyper-parameters) and one random
 * batch on the device, plus the timed `eval` forward of that batch.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { buildParamGroups, disposeBatch, Sgd, toDevice } from "@webtune/core";
import { createRng } from "@webtune/data";
import { type Arch, createResNet, type ResNet } from "@webtune/models";

/**
 * A model, optimizer and one random batch on the device (seed 0, labels alternating 0, 1).
 *
 * @example
 * ```ts ignore
 * const { model, sgd, device, dispose } = setupStep("resnet18", 64, 16);
 * await trainStep(model, device, sgd);
 * dispose();
 * ```
 */
export function setupStep(arch: Arch, size: number, batch: number) {
  const rng = createRng(0);
  const model = createResNet(arch, { numClasses: 2, random: () => rng.float() });
  const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 1e-5 }), { weightDecay: 1e-3 });
  const device = toDevice({
    x: Float32Array.from({ length: batch * size * size * 3 }, () => rng.float() * 2 - 1),
    shape: [batch, size, size, 3] as [number, number, number, number],
    labels: Int32Array.from({ length: batch }, (_, i) => i % 2),
  });
  const dispose = () => {
    disposeBatch(device);
    sgd.dispose();
    model.dispose();
  };
  return { model, sgd, device, dispose };
}

/** One `eval` forward of `x`, waited for (its logits read back), then released. */
export async function evalForward(model: ResNet, x: tf.Tensor4D): Promise<void> {
  const logits = tf.tidy(() => model.forward(x, "eval").logits);
  await logits.data();
  logits.dispose();
}
