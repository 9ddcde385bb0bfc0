import { assertEquals } from "@std/assert";
import { bestEpoch, savedEpoch } from "./best_epoch.ts";

const run = (accs: number[]) => accs.map((test_acc, i) => ({ epoch: i + 1, test_acc }));

Deno.test("save best: highest test accuracy wins, ties go to the later epoch", () => {
  assertEquals(bestEpoch(run([0.7, 0.9, 0.8]))?.epoch, 2);
  assertEquals(bestEpoch(run([0.7, 0.9, 0.9, 0.8]))?.epoch, 3);
  assertEquals(bestEpoch(run([0.9, 0.8, 0.9]))?.epoch, 3);
  assertEquals(bestEpoch(run([0.5]))?.epoch, 1);
  assertEquals(bestEpoch(run([NaN, 0.6, NaN]))?.epoch, 2);
  assertEquals(bestEpoch([]), undefined);
  // A resumed run's history starts later; the epoch numbers are the history's own.
  assertEquals(bestEpoch([{ epoch: 4, test_acc: 0.6 }, { epoch: 5, test_acc: 0.5 }])?.epoch, 4);
});

Deno.test("save best|last: which epoch's weights the model file holds after each epoch", () => {
  const history = run([0.6, 0.8, 0.7, 0.8, 0.75]);
  const best = history.map((_, i) => savedEpoch(history.slice(0, i + 1), "best")?.epoch);
  const last = history.map((_, i) => savedEpoch(history.slice(0, i + 1), "last")?.epoch);
  assertEquals(best, [1, 2, 2, 4, 4]);
  assertEquals(last, [1, 2, 3, 4, 5]);
  // The epoch just finished is the one to write exactly when it is the saved one.
  const writes = history.filter((m, i) => savedEpoch(history.slice(0, i + 1), "best") === m);
  assertEquals(writes.map((m) => m.epoch), [1, 2, 4]);
});
