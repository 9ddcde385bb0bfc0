/**
 * End-to-end: the CLI commands on real photos and the Food-101 source model, as a user runs them.
 */
import { assert, assertEquals, assertGreater, assertLess, assertStringIncludes } from "@std/assert";
import { loadStateDict, readSafetensors, stateDictOf, writeSafetensors } from "@webtune/models";
import { createResNet18 } from "@webtune/models";
import { setupBackend } from "@webtune/core";
import { cli, SHARED, sharedPresent } from "./cli_util.ts";

const HOTDOG = `${SHARED}datasets/hotdog-mini`;
const FOOD101 = `${SHARED}fixtures/food101-resnet18/food101-64-resnet18.pth`;

Deno.test({
  name: "finetune from the Food-101 model on hotdog-mini at 64 px, then predict, eval, re-import",
  ignore: !sharedPresent,
  async fn(t) {
    const out = await Deno.makeTempDir({ prefix: "webtune-e2e-" });
    const run = await cli("finetune", [
      "--data",
      HOTDOG,
      "--weights",
      FOOD101,
      "--image-size",
      "64",
      "--batch-size",
      "16",
      "--epochs",
      "3",
      "--lr",
      "2e-4",
      "--limit-train",
      "64",
      "--limit-test",
      "50",
      "--out",
      out,
      "--seed",
      "0",
    ]);
    assertEquals(run.code, 0, run.stderr);
    assertStringIncludes(run.stdout, "fc: Linear(in_features=512, out_features=100, bias=True)");
    assertStringIncludes(run.stdout, "examples/sec on webgpu:");

    await t.step(
      "metrics.json has the documented shape; loss falls; test acc above chance",
      async () => {
        const metrics = JSON.parse(await Deno.readTextFile(`${out}/metrics.json`));
        assertEquals(metrics.task, "finetune");
        assertEquals(metrics.config.imageSize, 64);
        assertEquals(typeof metrics.adapter.description, "string");
        assertEquals(metrics.epochs.length, 3);
        for (const e of metrics.epochs) {
          assertEquals(Object.keys(e).sort(), [
            "epoch",
            "examples_per_sec",
            "loss",
            "lrs",
            "seconds",
            "test_acc",
            "train_acc",
          ]);
        }
        console.log(
          "finetune epochs:",
          metrics.epochs.map((e: { loss: number; test_acc: number }) =>
            `loss ${e.loss.toFixed(3)} test acc ${e.test_acc.toFixed(2)}`
          ),
        );
        assertLess(metrics.epochs[2].loss, metrics.epochs[0].loss);
        assertGreater(metrics.epochs[2].test_acc, 0.5);
        const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
        assertEquals(config.class_names, ["hotdog", "not-hotdog"]);
        assertEquals([config.image_size, config.test_resize], [64, 73]);
        assertStringIncludes(await Deno.readTextFile(`${out}/curves.svg`), "<svg");
      },
    );

    await t.step("predict --json gives a class and probabilities that sum to 1", async () => {
      const images = [
        `${HOTDOG}/test/hotdog/13355622.jpg`,
        `${HOTDOG}/test/not-hotdog/1775043.jpg`,
      ];
      const r = await cli("predict", ["--model", out, "--json", ...images]);
      assertEquals(r.code, 0, r.stderr);
      const predictions = JSON.parse(r.stdout);
      assertEquals(predictions.length, images.length);
      for (const p of predictions) {
        assert(["hotdog", "not-hotdog"].includes(p.class));
        const sum = Object.values(p.probabilities as Record<string, number>).reduce((a, b) =>
          a + b
        );
        assertLess(Math.abs(sum - 1), 1e-5);
      }
    });

    await t.step(
      "eval --json reports accuracy, per-class precision/recall, confusion matrix",
      async () => {
        const r = await cli("eval", ["--model", out, "--data", HOTDOG, "--json"]);
        assertEquals(r.code, 0, r.stderr);
        const report = JSON.parse(r.stdout);
        assertEquals(report.examples, 50);
        assertEquals(report.confusion_matrix.flat().reduce((a: number, b: number) => a + b), 50);
        assertEquals(Object.keys(report.per_class), ["hotdog", "not-hotdog"]);
      },
    );

    await t.step("model.safetensors re-imports into a fresh model identically", async () => {
      await setupBackend();
      const bytes = await Deno.readFile(`${out}/model.safetensors`);
      const { tensors, metadata } = readSafetensors(bytes, "model.safetensors");
      const model = createResNet18({ numClasses: 2, random: () => 0.5 });
      loadStateDict(model, tensors);
      const again = writeSafetensors(await stateDictOf(model), metadata);
      model.dispose();
      assertEquals(again, bytes);
    });
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test("scratch on the synthetic set: a smoke run writes every documented file", async () => {
  const out = await Deno.makeTempDir({ prefix: "webtune-scratch-" });
  const r = await cli("scratch", [
    "--data",
    "synthetic",
    "--image-size",
    "32",
    "--batch-size",
    "4",
    "--epochs",
    "1",
    "--limit-train",
    "8",
    "--limit-test",
    "4",
    "--out",
    out,
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const types = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l).type);
  assertEquals(types[0], "run-start");
  assertEquals(types.at(-1), "run-end");
  for (
    const f of [
      "metrics.json",
      "curves.svg",
      "model.safetensors",
      "config.json",
      "checkpoint.safetensors",
      "state.json",
    ]
  ) {
    assert((await Deno.stat(`${out}/${f}`)).isFile, f);
  }
  await Deno.remove(out, { recursive: true });
});

Deno.test({
  name: "compare: fine-tuning (an lr sweep) and scratch with the same flags, one chart",
  ignore: !sharedPresent,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "webtune-compare-" });
    const r = await cli("compare", [
      "--data",
      "synthetic",
      "--weights",
      FOOD101,
      "--image-size",
      "32",
      "--batch-size",
      "4",
      "--epochs",
      "1",
      "--limit-train",
      "8",
      "--limit-test",
      "4",
      "--lr",
      "1e-3,1e-2",
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const runs = JSON.parse(await Deno.readTextFile(`${out}/compare.json`));
    assertEquals(runs.map((x: { name: string }) => x.name), [
      "finetune lr=0.001",
      "finetune lr=0.01",
      "scratch lr=0.0005",
    ]);
    const svg = await Deno.readTextFile(`${out}/compare.svg`);
    assertEquals(svg.match(/<polyline/g)?.length, 3);
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name: "the README's defaults (224 px, batch 128) run on a software adapter as micro-batches",
  ignore: !sharedPresent,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "webtune-defaults-" });
    // Only the data and the (offline) source model differ from the README's main command; 42
    // training images make one batch of the chapter's 128, as micro-batches where it must.
    const run = await cli("finetune", [
      "--data",
      HOTDOG,
      "--weights",
      FOOD101,
      "--epochs",
      "1",
      "--limit-train",
      "42",
      "--limit-test",
      "2",
      "--out",
      out,
    ]);
    assertEquals(run.code, 0, run.stderr);
    const metrics = JSON.parse(await Deno.readTextFile(`${out}/metrics.json`));
    assertEquals([metrics.config.imageSize, metrics.config.batchSize], [224, 128]);
    assertEquals(metrics.epochs.length, 1);
    assert(Number.isFinite(metrics.epochs[0].loss));
    const limit = metrics.adapter.limits?.maxStorageBufferBindingSize ?? Infinity;
    // 112·112·64 floats per image in the stem's output: more than 41 images overflow 128 MiB.
    if (limit < 128 * 112 * 112 * 64 * 4) assertStringIncludes(run.stdout, "batch 128 as ");
  },
});
