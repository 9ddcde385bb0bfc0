/**
 * Ctrl-C during training and `--resume`: an interrupted run, resumed, ends with exactly the
 * weights and metrics of an uninterrupted run with the same seed.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { setupBackend } from "@webtune/core";
import { createResNet18, readSafetensors, stateDictOf, writeSafetensors } from "@webtune/models";
import { cli, ROOT, SHARED, sharedPresent } from "./cli_util.ts";

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

/** Starts a command, sends SIGINT once epoch 1's checkpoint is written, returns its output. */
async function interruptAfterFirstCheckpoint(command: string, flags: string[], out: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `cli/${command}.ts`, ...flags, "--out", out],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let stdout = "", signalled = false;
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    stdout += chunk;
    if (!signalled && stdout.includes('"type":"checkpoint"')) {
      child.kill("SIGINT");
      signalled = true;
    }
  }
  const { code } = await child.status;
  return { code, stdout, stderr: await stderr };
}

/**
 * Runs `command` with `flags` once whole and once interrupted after epoch 1 then resumed, and
 * checks that both end with the same metrics and weights.
 */
async function resumeEqualsUninterrupted(command: string, flags: string[]) {
  const whole = await Deno.makeTempDir({ prefix: "webtune-whole-" });
  const cut = await Deno.makeTempDir({ prefix: "webtune-cut-" });
  const uninterrupted = await cli(command, [...flags, "--out", whole]);
  assertEquals(uninterrupted.code, 0, uninterrupted.stderr);

  const interrupted = await interruptAfterFirstCheckpoint(command, flags, cut);
  assertEquals(interrupted.code, 130, interrupted.stderr);
  assertStringIncludes(interrupted.stderr, `--resume ${cut}`);
  assertStringIncludes(interrupted.stdout, '"type":"stopped"');
  const state = JSON.parse(await Deno.readTextFile(`${cut}/state.json`));
  assertEquals(state.completed_epochs < 3, true);

  const resumed = await cli(command, ["--resume", cut, "--json"]);
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

Deno.test({
  name: "finetune --head-init imagenet-hotdog (with momentum) resumes from its own checkpoint",
  ignore: !sharedPresent,
  async fn() {
    // A 1000-class source (ImageNet's shape, random weights): the head init reads its row 934.
    // Resume used to hand the run's 2-class checkpoint to the head init as a source and crash.
    await setupBackend({ backend: "cpu" });
    const source = await Deno.makeTempFile({ prefix: "webtune-source-", suffix: ".safetensors" });
    let seed = 1;
    const model = createResNet18({
      numClasses: 1000,
      random: () => (seed = (seed * 16807) % 2147483647) / 2147483647,
    });
    await Deno.writeFile(source, writeSafetensors(await stateDictOf(model)));
    model.dispose();
    await resumeEqualsUninterrupted("finetune", [
      ...FLAGS.filter((f) => f !== "synthetic" && f !== "--data"),
      "--data",
      `${SHARED}datasets/hotdog-mini`,
      "--weights",
      source,
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
