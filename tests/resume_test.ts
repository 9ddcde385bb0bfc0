/**
 * Ctrl-C during training and `--resume`: an interrupted run, resumed, ends with exactly the
 * weights and metrics of an uninterrupted run with the same seed.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { setupBackend } from "@webtune/core";
import { createResNet18, readSafetensors, stateDictOf, writeSafetensors } from "@webtune/models";
import { cli, cliInterrupted, jsonLines, SHARED, sharedPresent } from "./cli_util.ts";

const FLAGS = [
  "--data",
  "synthetic",
  "--image-size",
  "32",
  "--batch-size",
  "4",
  "--epochs",
  "3",
  "--limit-train",
  "8",
  "--limit-test",
  "4",
  "--seed",
  "7",
  "--json",
];

/**
 * Fixed kernels for comparing two separate runs: `--kernels auto` (the default) chooses each conv
 * shape's variant by timing, and variants may round differently (dX's FMA form sums in another
 * order than its dot-product form), so two new runs agree bit for bit only with `fast` (or
 * `stock`), as PyTorch's need `cudnn.benchmark` off. The processes of one `auto` run agree
 * (its kernels.json): see the last test.
 */
const PINNED = ["--kernels", "fast"];

/**
 * Runs `command` with `flags` once whole and once interrupted after epoch `afterEpoch` (default
 * 1) then resumed, and checks that both end with the same metrics and weights.
 */
async function resumeEqualsUninterrupted(command: string, flags: string[], afterEpoch = 1) {
  const whole = await Deno.makeTempDir({ prefix: "webtune-whole-" });
  const cut = await Deno.makeTempDir({ prefix: "webtune-cut-" });
  flags = [...flags, ...PINNED];
  const uninterrupted = await cli(command, [...flags, "--out", whole]);
  assertEquals(uninterrupted.code, 0, uninterrupted.stderr);

  const interrupted = await cliInterrupted(
    command,
    [...flags, "--out", cut],
    (stdout) => jsonLines(stdout).some((e) => e.type === "checkpoint" && e.epoch === afterEpoch),
  );
  assertEquals(interrupted.code, 130, interrupted.stderr);
  assertStringIncludes(interrupted.stderr, `--resume ${cut}`);
  assertStringIncludes(interrupted.stdout, '"type":"stopped"');
  const state = JSON.parse(await Deno.readTextFile(`${cut}/state.json`));
  // Stopped after `afterEpoch`, within the next epoch or at its end.
  assertEquals(state.completed_epochs >= afterEpoch, true);
  assertEquals(state.completed_epochs <= afterEpoch + 1, true);

  // No --kernels: the run's kernels.json says fast.
  const resumed = await cli(command, ["--resume", cut, "--json"]);
  assertEquals(resumed.code, 0, resumed.stderr);

  await assertSameRun(whole, cut);
  await Deno.remove(whole, { recursive: true });
  await Deno.remove(cut, { recursive: true });
}

/** Both finished run directories hold the same metrics and, bit for bit, the same weights. */
async function assertSameRun(a: string, b: string) {
  const epochs = async (dir: string) =>
    (JSON.parse(await Deno.readTextFile(`${dir}/metrics.json`)).epochs as {
      epoch: number;
      loss: number;
      train_acc: number;
      test_acc: number;
    }[]).map(({ epoch, loss, train_acc, test_acc }) => ({ epoch, loss, train_acc, test_acc }));
  assertEquals(await epochs(b), await epochs(a));
  const weightsA = readSafetensors(await Deno.readFile(`${a}/model.safetensors`), "a").tensors;
  const weightsB = readSafetensors(await Deno.readFile(`${b}/model.safetensors`), "b").tensors;
  assertEquals([...weightsB.keys()], [...weightsA.keys()]);
  for (const [name, t] of weightsA) assertEquals(weightsB.get(name)!.data, t.data, name);
}

Deno.test("Ctrl-C checkpoints and exits 130; --resume equals an uninterrupted run", async () => {
  await resumeEqualsUninterrupted("scratch", FLAGS);
});

/**
 * A 1000-class source model file (ImageNet's shape, seeded random weights); the caller removes
 * it.
 */
async function randomImageNetSource(): Promise<string> {
  await setupBackend({ backend: "cpu" });
  const source = await Deno.makeTempFile({ prefix: "webtune-source-", suffix: ".safetensors" });
  let seed = 1;
  const model = createResNet18({
    numClasses: 1000,
    random: () => (seed = (seed * 16807) % 2147483647) / 2147483647,
  });
  await Deno.writeFile(source, writeSafetensors(await stateDictOf(model)));
  model.dispose();
  return source;
}

/** FLAGS on hotdog-mini (finetune needs real class folders) from `source`. */
function finetuneFlags(source: string): string[] {
  return [
    ...FLAGS.filter((f) => f !== "synthetic" && f !== "--data"),
    "--data",
    `${SHARED}datasets/hotdog-mini`,
    "--weights",
    source,
  ];
}

Deno.test({
  name: "finetune --head-init imagenet-hotdog (with momentum) resumes from its own checkpoint",
  ignore: !sharedPresent,
  async fn() {
    // A 1000-class source: the head init reads its row 934. Resume used to hand the run's
    // 2-class checkpoint to the head init as a source and crash.
    const source = await randomImageNetSource();
    await resumeEqualsUninterrupted("finetune", [
      ...finetuneFlags(source),
      "--head-init",
      "imagenet-hotdog",
      "--momentum",
      "0.9",
      "--epochs", // the last value wins: 2 epochs keep it short, interrupted after the first
      "2",
    ]);
    await Deno.remove(source);
  },
});

Deno.test({
  name: "fastai's fine_tune (adamw, onecycle, --freeze-epochs 1) resumed inside its second cycle",
  ignore: !sharedPresent,
  async fn() {
    // Epoch 1 trains the head under its own cycle, epochs 2–3 all layers under a second one (4
    // batches); interrupted after epoch 2, the run resumes at the second cycle's third batch.
    const source = await randomImageNetSource();
    await resumeEqualsUninterrupted("finetune", [
      ...finetuneFlags(source),
      "--optimizer",
      "adamw",
      "--schedule",
      "onecycle",
      "--freeze-epochs",
      "1",
      "--lr",
      "1e-3",
      "--epochs", // the last value wins
      "3",
    ], 2);
    await Deno.remove(source);
  },
});

Deno.test("auto: every process of a run computes with the kernels it recorded, whatever the cache says", async () => {
  // 16 images at batch 4: 4 steps per epoch. The first process chooses (its first step runs the
  // first-use variants, the tuning pass after it the winners) and is stopped after step 2 (or
  // 3), before any epoch ends: its resumes replay that first step, then run the winners.
  const flags = [...FLAGS, "--limit-train", "16"]; // the last value wins
  const [run, copy, cache] = await Promise.all(
    ["run", "copy", "cache"].map((p) => Deno.makeTempDir({ prefix: `webtune-auto-${p}-` })),
  );
  const step2Loss = (stdout: string) =>
    jsonLines(stdout).find((e) => e.type === "batch-end" && e.epoch === 1 && e.batch === 2)
      ?.loss;
  const first = await cliInterrupted(
    "scratch",
    [...flags, "--out", run],
    (stdout) => step2Loss(stdout) !== undefined,
    { WEBTUNE_CACHE: cache },
  );
  assertEquals(first.code, 130, first.stderr);
  assertEquals(JSON.parse(await Deno.readTextFile(`${run}/state.json`)).completed_epochs, 0);
  const recorded = JSON.parse(await Deno.readTextFile(`${run}/kernels.json`));
  assertEquals(recorded.kernels, "auto");
  assertEquals(recorded.first_step.epoch, 1);
  assert(Object.keys(recorded.choices).length > 0, "no choices recorded");
  for (const name of await Array.fromAsync(Deno.readDir(run), (e) => e.name)) {
    await Deno.copyFile(`${run}/${name}`, `${copy}/${name}`);
  }

  // One resume on a cache that says stock for every shape of the run (chosen afresh, it would
  // run stock tfjs), the other twice on an empty cache (it would run the first-use variants, and
  // time them again). The cache's keys are `<adapter scope> :: <shape key>` (autotune.ts).
  const cacheFile = `${cache}/kernel-choices.json`;
  const measured = Object.keys(JSON.parse(await Deno.readTextFile(cacheFile)));
  assert(measured.length > 0, "the first process measured nothing");
  const scope = measured[0].split(" :: ")[0];
  await Deno.writeTextFile(
    cacheFile,
    JSON.stringify(
      Object.fromEntries(Object.keys(recorded.choices).map((k) => [`${scope} :: ${k}`, "stock"])),
    ),
  );
  const resumed = await cli("scratch", ["--resume", run, "--json"], { WEBTUNE_CACHE: cache });
  assertEquals(resumed.code, 0, resumed.stderr);
  const emptyCache = { WEBTUNE_CACHE: `${cache}/empty` };
  const cut = await cliInterrupted(
    "scratch",
    ["--resume", copy, "--json"],
    (stdout) => jsonLines(stdout).some((e) => e.type === "checkpoint" && e.epoch === 1),
    emptyCache,
  );
  assertEquals(cut.code, 130, cut.stderr);
  const last = await cli("scratch", ["--resume", copy, "--json"], emptyCache);
  assertEquals(last.code, 0, last.stderr);

  // The replayed first step computed what the first process's did (the loss after step 2 depends
  // on step 1's gradients), and both copies end bit for bit alike, on the recorded choices.
  assertEquals(step2Loss(resumed.stdout), step2Loss(first.stdout));
  assertEquals(step2Loss(cut.stdout), step2Loss(first.stdout));
  await assertSameRun(run, copy);
  for (const dir of [run, copy]) {
    const now = JSON.parse(await Deno.readTextFile(`${dir}/kernels.json`));
    assertEquals(now.first_step, recorded.first_step);
    for (const [key, variant] of Object.entries(recorded.choices)) {
      assertEquals(now.choices[key], variant, key);
    }
  }
  for (const dir of [run, copy, cache]) await Deno.remove(dir, { recursive: true });
});

Deno.test("a corrupt kernels.json stops --resume with one line naming it", async () => {
  const out = await Deno.makeTempDir({ prefix: "webtune-kernels-" });
  const stopped = await cliInterrupted(
    "scratch",
    [...FLAGS, ...PINNED, "--out", out],
    (stdout) => jsonLines(stdout).some((e) => e.type === "checkpoint" && e.epoch === 1),
  );
  assertEquals(stopped.code, 130, stopped.stderr);
  await Deno.writeTextFile(`${out}/kernels.json`, '{"version": 1, "kernels": "fastest"');
  const resumed = await cli("scratch", ["--resume", out]);
  assertEquals(resumed.code, 1);
  assertStringIncludes(resumed.stderr, `${out}/kernels.json: not valid JSON`);
  assertEquals(resumed.stderr.trim().split("\n").length, 1, resumed.stderr);
  await Deno.remove(out, { recursive: true });
});
