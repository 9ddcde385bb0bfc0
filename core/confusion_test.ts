import { assertEquals } from "@std/assert";
import { classReport } from "./confusion.ts";

Deno.test("classReport: confusion matrix rows are true classes; precision/recall per class", () => {
  const r = classReport([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], 2);
  assertEquals(r.matrix, [[1, 1], [1, 2]]);
  assertEquals(r.accuracy, 3 / 5);
  assertEquals(r.perClass, [
    { precision: 1 / 2, recall: 1 / 2, support: 2 },
    { precision: 2 / 3, recall: 2 / 3, support: 3 },
  ]);
  assertEquals(classReport([0], [0], 3).perClass[2], { precision: 0, recall: 0, support: 0 });
});
