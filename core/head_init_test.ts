import * as tf from "@tensorflow/tfjs-core";
import { assertEquals, assertThrows } from "@std/assert";
import type { StateDict } from "@webtune/models";
import { setupBackend } from "./backend.ts";
import { initHeadFromSourceClass } from "./head_init.ts";

await setupBackend();

Deno.test("imagenet-hotdog head: the target row is the source row, others the mean of the rest", async () => {
  // A 3-class source head over 2 features: rows [1,2], [3,4], [5,6]; biases 0.1, 0.2, 0.3.
  const source: StateDict = new Map([
    ["fc.weight", { dtype: "float32", shape: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
    ["fc.bias", { dtype: "float32", shape: [3], data: new Float32Array([0.1, 0.2, 0.3]) }],
  ]);
  const model = {
    numClasses: 2,
    variables: new Map([
      ["fc.weight", tf.variable(tf.zeros([2, 2]))], // tfjs layout [in, out]
      ["fc.bias", tf.variable(tf.zeros([2]))],
    ]),
  };
  initHeadFromSourceClass(model, source, 1, 0);
  const w = await model.variables.get("fc.weight")!.data();
  const b = await model.variables.get("fc.bias")!.data();
  // Column 0 (target "hotdog") = source row 1; column 1 = mean of rows 0 and 2.
  assertEquals(Array.from(w), [3, 3, 4, 4]);
  assertEquals(Array.from(b).map((v) => +v.toFixed(6)), [0.2, 0.2]);
  assertThrows(
    () => initHeadFromSourceClass(model, source, 934, 0),
    Error,
    "outside the source fc's 3",
  );
  tf.dispose([...model.variables.values()]);
});
