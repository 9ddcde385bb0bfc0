import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import type { AdapterReport } from "./backend.ts";
import { KERNEL_SET_VERSION } from "./kernels/mod.ts";
import { RunDir } from "./run_dir.ts";
import { memoryFs } from "./test_util.ts";
import { parseRunKernels, pinRunKernels, readRunKernels, type RunKernels } from "./run_kernels.ts";

const ADAPTER: AdapterReport = {
  backend: "webgpu",
  description: "llvmpipe",
  vendor: "",
  architecture: "",
  isFallbackAdapter: true,
};

const RECORD: RunKernels = {
  version: 1,
  kernels: "auto",
  kernel_set: KERNEL_SET_VERSION,
  adapter: "webgpu: llvmpipe [software fallback adapter]",
  choices: { "Conv2D x=1x8x8x4": "texture", "Conv2DBackpropInput dy=1x8x8x4": "stock" },
  first_step: { epoch: 1, choices: { "Conv2D x=1x8x8x4": "texture-small" } },
};

Deno.test("kernels.json: a record reads back; a broken one is a one-line error naming the file", () => {
  assertEquals(parseRunKernels(JSON.stringify(RECORD), "r/kernels.json"), RECORD);
  const broken: [unknown, string][] = [
    ["[]", "expected a JSON object"],
    [{ ...RECORD, version: 2 }, "version must be 1, got 2"],
    [{ ...RECORD, kernels: "fastest" }, "kernels must be one of auto, fast, stock"],
    [{ ...RECORD, kernel_set: "" }, "kernel_set must be a non-empty string"],
    [{ ...RECORD, choices: { a: 3 } }, 'choices["a"] must be a variant name'],
    [{ ...RECORD, first_step: undefined }, "first_step is missing"],
    [{ ...RECORD, first_step: { epoch: 0, choices: {} } }, "first_step.epoch must be"],
    [{ ...RECORD, first_step: { epoch: 1, choices: [] } }, "first_step.choices must be"],
  ];
  for (const [value, why] of broken) {
    const json = typeof value === "string" ? value : JSON.stringify(value);
    const e = assertThrows(() => parseRunKernels(json, "r/kernels.json"));
    const message = (e as Error).message;
    assert(
      message.startsWith(`r/kernels.json: not a webtune kernel record (${why}`),
      `${json}: ${message}`,
    );
  }
  const e = assertThrows(() => parseRunKernels('{"version": 1, "kern', "r/kernels.json"));
  assert((e as Error).message.startsWith("r/kernels.json: not valid JSON"));
  assert(!(e as Error).message.includes("\n"));
  // Mode only (fast or stock, or auto before its first tuning pass): no first step needed.
  const modeOnly = { ...RECORD, kernels: "fast", choices: {}, first_step: undefined };
  assertEquals(parseRunKernels(JSON.stringify(modeOnly), "k").kernels, "fast");
});

Deno.test("kernels.json is read when present and written by rename, keeping auto's choices under fast", async () => {
  const fs = memoryFs();
  const dir = new RunDir(fs, "run");
  assertEquals(await readRunKernels(dir), undefined);
  const warnings: string[] = [];
  // The kernel mode is fast in this process (nothing pins): the recorded choices are kept for
  // a later auto resume, the mode is this process's.
  const record = pinRunKernels(dir, {
    kernels: "fast",
    adapter: ADAPTER,
    epoch: 3,
    recorded: RECORD,
    warn: (l) => warnings.push(l),
  });
  await record.save();
  assertEquals(await readRunKernels(dir), { ...RECORD, kernels: "fast" });
  assertEquals([...fs.files.keys()], ["run/kernels.json"], "no temporary file left");
  assertEquals(warnings, []);

  fs.files.set("run/kernels.json", new TextEncoder().encode('{"version":1}'));
  await assertRejects(() => readRunKernels(dir), Error, "run/kernels.json: not a webtune kernel");
});

Deno.test("a record of another kernel set or adapter is reported in one line", async () => {
  const dir = new RunDir(memoryFs(), "run");
  const warnings: string[] = [];
  const options = { kernels: "fast" as const, epoch: 2, warn: (l: string) => warnings.push(l) };
  const old = pinRunKernels(dir, {
    ...options,
    adapter: ADAPTER,
    recorded: { ...RECORD, kernel_set: "conv-variants-0" },
  });
  await old.save();
  assertEquals((await readRunKernels(dir))!.choices, {}, "another kernel set's names are dropped");
  pinRunKernels(dir, {
    ...options,
    adapter: { ...ADAPTER, description: "a GPU" },
    recorded: RECORD,
  });
  assertEquals(warnings.length, 2);
  assert(warnings[0].includes("recorded with kernel set conv-variants-0"), warnings[0]);
  assert(warnings[1].includes("choices made on webgpu: llvmpipe"), warnings[1]);
});
