import { assertEquals, assertStringIncludes } from "@std/assert";
import { compareCommand, compareRuns, compareTable } from "./compare.ts";
import { parseFlags, usage } from "./shell.ts";

async function runsFor(...args: string[]) {
  const { values } = await parseFlags(compareCommand.flags, args);
  return compareRuns(values, "out");
}

Deno.test("compare: by default the chapter's two runs, fine-tuning and scratch at their rates", async () => {
  const runs = await runsFor();
  assertEquals(runs.map((r) => [r.task, r.name, r.dir]), [
    ["finetune", "finetune lr=0.00005", "out/finetune_lr-0.00005"],
    ["scratch", "scratch lr=0.0005", "out/scratch_lr-0.0005"],
  ]);
});

Deno.test("compare: list flags from the run-config table run the cartesian product per task", async () => {
  const runs = await runsFor(
    "--optimizer",
    "sgd,adamw",
    "--schedule",
    "constant,cosine",
    "--lr",
    "1e-4,5e-4",
    "--epochs",
    "2",
    "--tasks",
    "finetune",
  );
  assertEquals(runs.length, 8);
  assertEquals(runs[0].name, "finetune lr=0.0001 optimizer=sgd schedule=constant");
  assertEquals(runs[7].values, { lr: 5e-4, epochs: 2, optimizer: "adamw", schedule: "cosine" });
  const keys = new Set(
    runs.map((r) => `${r.values.lr} ${r.values.optimizer} ${r.values.schedule}`),
  );
  assertEquals(keys.size, 8);
});

Deno.test("compare: per-task parameters given are the fine-tuning runs'; scratch uses --scratch-lr", async () => {
  const runs = await runsFor(
    "--param-group",
    "true,false",
    "--head-lr-mult",
    "5",
    "--scratch-lr",
    "1e-3,2e-3",
    "--bn",
    "train,frozen",
  );
  const scratch = runs.filter((r) => r.task === "scratch");
  assertEquals(runs.length - scratch.length, 4);
  assertEquals(scratch.map((r) => r.values), [
    { lr: 1e-3, bn: "train" },
    { lr: 1e-3, bn: "frozen" },
    { lr: 2e-3, bn: "train" },
    { lr: 2e-3, bn: "frozen" },
  ]);
  assertEquals(runs[0].values["head-lr-mult"], 5);
});

Deno.test("compare: --help offers every run flag as a list", () => {
  const help = usage(compareCommand);
  assertStringIncludes(help, "--optimizer sgd|adamw[,...]");
  assertStringIncludes(help, "--freeze-epochs N[,...]");
  assertStringIncludes(help, "--tasks finetune|scratch[,...]");
});

Deno.test("compare: the table has final and best test accuracy (ties: the later epoch)", () => {
  const epoch = (n: number, acc: number) => ({
    epoch: n,
    loss: 1,
    train_acc: 0.5,
    test_acc: acc,
    examples_per_sec: 1,
    seconds: 1,
  });
  const table = compareTable([
    {
      name: "a",
      dir: "d",
      task: "finetune",
      epochs: [epoch(1, 0.5), epoch(2, 0.75), epoch(3, 0.75)],
    },
    { name: "scratch b", dir: "e", task: "scratch", epochs: [epoch(1, 0.625), epoch(2, 0.5)] },
  ]).split("\n");
  assertEquals(table.length, 4);
  assertEquals(table[2].split("|").map((c) => c.trim()).slice(1, 5), [
    "a",
    "0.750",
    "0.750 (3)",
    "0.50 0.75 0.75",
  ]);
  assertEquals(table[3].split("|").map((c) => c.trim()).slice(1, 4), [
    "scratch b",
    "0.500",
    "0.625 (1)",
  ]);
});
