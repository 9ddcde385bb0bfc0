import { assertAlmostEquals, assertEquals } from "@std/assert";
import { formatDuration, RunEta } from "./eta.ts";

Deno.test("RunEta: counts every epoch left, training and evaluation, from measured rates", () => {
  let t = 0;
  const eta = new RunEta(() => t);
  eta.onEvent({ type: "run-start", epochs: 3, startEpoch: 1, trainExamples: 8, testExamples: 4 });
  eta.onEvent({ type: "epoch-start", epoch: 1, epochs: 3, batches: 2 });
  assertEquals(eta.secondsLeft(), undefined);
  t += 4000; // 4 images in 4 s: 1 s per training image
  eta.onEvent({ type: "batch-end", epoch: 1, batch: 1, batches: 2, loss: 1, acc: 0, examples: 4 });
  // 4 + 8 + 8 training images left; 3 evaluations of 4 images guessed at 1/3 s each.
  assertAlmostEquals(eta.secondsLeft()!, 20 + 3 * 4 / 3, 1e-9);
  t += 4000;
  eta.onEvent({ type: "batch-end", epoch: 1, batch: 2, batches: 2, loss: 1, acc: 0, examples: 4 });
  t += 2000; // evaluating 4 test images took 2 s
  const metrics = {
    epoch: 1,
    loss: 1,
    train_acc: 0,
    test_acc: 0,
    examples_per_sec: 1,
    seconds: 10,
  };
  eta.onEvent({ type: "epoch-end", metrics });
  assertAlmostEquals(eta.secondsLeft()!, 16 + 2 * 2, 1e-9);
  eta.onEvent({ type: "epoch-start", epoch: 2, epochs: 3, batches: 2 });
  t += 8000; // slower now: 2 s per image over 4 images; the mean is 16 s / 12 images
  eta.onEvent({ type: "batch-end", epoch: 2, batch: 1, batches: 2, loss: 1, acc: 0, examples: 4 });
  assertAlmostEquals(eta.secondsLeft()!, 12 * (16 / 12) + 2 * 2, 1e-9);
  for (const epoch of [2, 3]) {
    if (epoch === 3) eta.onEvent({ type: "epoch-start", epoch, epochs: 3, batches: 2 });
    eta.onEvent({ type: "epoch-end", metrics: { ...metrics, epoch } });
  }
  assertEquals(eta.secondsLeft(), 0);
});

Deno.test("formatDuration: seconds, minutes, hours", () => {
  assertEquals(formatDuration(45.4), "45 s");
  assertEquals(formatDuration(720), "12 min");
  assertEquals(formatDuration(3900), "1 h 05 min");
});
