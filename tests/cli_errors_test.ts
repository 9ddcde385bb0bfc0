/**
 * The documented errors: one line naming what is wrong, a non-zero exit, nothing written.
 */
import { assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { cli, SHARED, sharedPresent } from "./cli_util.ts";

function oneLine(text: string): string {
  const lines = text.trim().split("\n").filter((l) => !l.includes("XDG_RUNTIME_DIR"));
  assertEquals(lines.length, 1, `expected one line, got:\n${text}`);
  return lines[0];
}

Deno.test("an unknown flag and a flag without its value are usage errors (exit 2)", async () => {
  const unknown = await cli("finetune", ["--learning-rate", "1"]);
  assertEquals(unknown.code, 2);
  assertMatch(oneLine(unknown.stderr), /^webtune finetune: .*--learning-rate.*\(see --help\)$/);
  const missing = await cli("scratch", ["--epochs"]);
  assertEquals(missing.code, 2);
  assertStringIncludes(oneLine(missing.stderr), "--epochs");
  const bad = await cli("scratch", ["--epochs", "three"]);
  assertEquals(bad.code, 2);
  assertEquals(oneLine(bad.stderr), 'webtune scratch: --epochs expects a number, got "three"');
});

Deno.test("every command answers --help with its flags and exits 0", async () => {
  for (const command of ["finetune", "scratch", "compare", "predict", "eval", "bench", "inspect"]) {
    const r = await cli(command, ["--help"]);
    assertEquals(r.code, 0, `${command}: ${r.stderr}`);
    assertStringIncludes(r.stdout, `usage: deno task ${command}`);
  }
});

Deno.test("a data directory without train/ names the directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "webtune-notrain-" });
  await Deno.mkdir(`${dir}/test/a`, { recursive: true });
  const r = await cli("scratch", [
    "--data",
    dir,
    "--image-size",
    "32",
    "--batch-size",
    "2",
    "--out",
    `${dir}/out`,
  ]);
  assertEquals(r.code, 1);
  const line = oneLine(r.stderr.split("\n").filter((l) => l.startsWith("webtune")).join("\n"));
  assertStringIncludes(line, dir);
  assertStringIncludes(line, "train");
  assertEquals(await Deno.stat(`${dir}/out`).then(() => true, () => false), false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "a model whose classifier has another class count than config.json says: key and shapes",
  ignore: !sharedPresent,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "webtune-badmodel-" });
    // The Food-101 checkpoint (100-way fc) stands in for a model.safetensors of another run.
    const { readWeights, writeSafetensors } = await import("@webtune/models");
    const pth = `${SHARED}fixtures/food101-resnet18/food101-64-resnet18.pth`;
    await Deno.writeFile(
      `${dir}/model.safetensors`,
      writeSafetensors(readWeights(await Deno.readFile(pth), pth)),
    );
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({
        architecture: "resnet18",
        num_classes: 2,
        class_names: ["hotdog", "not-hotdog"],
        image_size: 64,
        test_resize: 73,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
      }),
    );
    const r = await cli("predict", [
      "--model",
      dir,
      `${SHARED}datasets/hotdog-mini/test/hotdog/13355622.jpg`,
    ]);
    assertEquals(r.code, 1);
    const line = oneLine(r.stderr);
    assertStringIncludes(line, "model.safetensors");
    assertStringIncludes(line, "fc.weight");
    assertStringIncludes(line, "[100,512]");
    assertStringIncludes(line, "[2,512]");
    await Deno.remove(dir, { recursive: true });
  },
});
