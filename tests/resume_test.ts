/**
 * Ctrl-C during training and `--resume`: an interrupted run, resumed, ends with exactly the
 * weights and metrics of an uninterrupted run with the same seed.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
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
 * Pinned kernels: `--kernels auto` (the default) chooses each conv shape's variant by timing, per
 * process, and variants may round differently (dX's FMA form sums in another order than its
 * dot-product form), so bit-identical runs need `fast` (or `stock`), as PyTorch's need
 * `cudnn.benchmark` off.
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

  const resumed = await cli(command, ["--resume", cut, ...PINNED, "--json"]);
  assertEquals(resumed.code, 0, resumed.stderr);

  const a = JSON.parse(await Deno.readTextFile(`${whole}/metrics.json`)).epochs;
  const b = JSON.parse(await Deno.readTextFile(`${cut}/metrics.json`)).epochs;
  const pick = (e: { epoch: number; loss: number; train_acc: number; test_acc: number }[]) =>
    e.map(({ epoch, loss, train_acc, test_acc }) => ({ epoch, loss, train_acc, test_acc }));
  assertEquals(pick(b), pick(a));
  const weightsA = readSafetensors(await Deno.readFile(`${whole}/model.safetensors`), "a").tensors;
  const weightsB = readSafetensors(await Deno.readFile(`${cut}/model.safetensors`), "b").tensors;
  assertEquals([...weightsB.keys()], [...weightsA.keys()]);
  for (const [name, t] of weightsA) assertEquals(weightsB.get(name)!.data, t.data, name);
  await Deno.remove(whole, { recursive: true });
  await Deno.remove(cut, { recursive: true });
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
