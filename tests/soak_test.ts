/**
 * The soak in small: a real run (ResNet-18, data pipeline, optimizer, checkpoint encoding) holds
 * the same number of tensors after every epoch. `deno task soak` prints the same over 20 epochs,
 * with the process's RSS.
 */
import { assertEquals } from "@std/assert";
import { setupBackend } from "@webtune/core";
import { soak } from "../cli/soak.ts";

Deno.test("soak: the tensor count stays flat over epochs of a tiny run", async () => {
  await setupBackend({ backend: "webgpu" });
  const counts: number[] = [];
  await soak(3, (s) => counts.push(s.numTensors));
  assertEquals(counts.length, 3);
  assertEquals(new Set(counts).size, 1, `tensors after each epoch: ${counts.join(", ")}`);
});
