import { assertEquals, assertThrows } from "@std/assert";
import {
  defaultRunConfig,
  paramEntries,
  ParamError,
  parseParamValue,
  type RUN_PARAMS,
  validateRunConfig,
  valueProblem,
} from "./run_config.ts";

Deno.test("run config: the chapter's two runs differ only in lr and param groups", () => {
  const finetune = defaultRunConfig("finetune"), scratch = defaultRunConfig("scratch");
  // d2l §14.2: train_fine_tuning(finetune_net, 5e-5) and (scratch_net, 5e-4, param_group=False).
  assertEquals([finetune.lr, finetune.paramGroup], [5e-5, true]);
  assertEquals([scratch.lr, scratch.paramGroup], [5e-4, false]);
  assertEquals({ ...scratch, task: "finetune", lr: 5e-5, paramGroup: true }, finetune);
  // Optional parameters have no default and are absent.
  assertEquals("limitTrain" in finetune, false);
});

Deno.test("run config: every entry's default passes its own check", () => {
  for (const task of ["finetune", "scratch"] as const) {
    for (const p of paramEntries(task)) {
      if (p.default !== undefined) assertEquals(valueProblem(p.spec, p.default), undefined, p.name);
    }
    validateRunConfig(defaultRunConfig(task));
  }
  assertEquals(paramEntries("scratch").find((p) => p.name === "headLrMult")!.used, false);
  assertEquals(paramEntries("finetune").find((p) => p.name === "headLrMult")!.flag, "head-lr-mult");
});

Deno.test("run config: text values are parsed and checked by kind", () => {
  assertEquals(parseParamValue("lr", "1e-3"), 0.001);
  assertEquals(parseParamValue("paramGroup", "false"), false);
  assertEquals(parseParamValue("headInit", "imagenet-hotdog"), "imagenet-hotdog");
  const problem = (name: keyof typeof RUN_PARAMS, raw: string) => {
    try {
      parseParamValue(name, raw);
    } catch (e) {
      if (e instanceof ParamError) return e.problem;
      throw e;
    }
  };
  assertEquals(
    problem("seed", "1e300"),
    "expects an integer of at most 9007199254740991, got 1e300",
  );
  assertEquals(problem("epochs", "2.5"), "expects an integer, got 2.5");
  assertEquals(problem("imageSize", "16"), "must be at least 32, got 16");
  assertEquals(problem("lr", "NaN"), 'expects a number, got "NaN"');
  assertEquals(problem("nesterov", "1"), "expects true or false, got 1");
  assertEquals(problem("headInit", "zeros"), "expects xavier or imagenet-hotdog, got zeros");
});

Deno.test("run config: a config read back is checked whole", () => {
  assertThrows(() => validateRunConfig(null), ParamError, "config must be an object");
  assertThrows(
    () => validateRunConfig({ ...defaultRunConfig("scratch"), task: "other" }),
    ParamError,
    "task expects finetune or scratch",
  );
  assertThrows(
    () => validateRunConfig({ ...defaultRunConfig("scratch"), batchSize: undefined }),
    ParamError,
    "batchSize expects a number",
  );
  assertThrows(
    () => validateRunConfig({ ...defaultRunConfig("scratch"), limitTest: 0 }),
    ParamError,
    "limitTest must be at least 1",
  );
});
