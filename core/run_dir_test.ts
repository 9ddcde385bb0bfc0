import { assertEquals, assertNotEquals, assertRejects, assertStringIncludes } from "@std/assert";
import * as tf from "@tensorflow/tfjs-core";
import { createRng, normalizeInto, rgbImage, testCrop } from "@webtune/data";
import { createResNet18 } from "@webtune/models";
import { setupBackend } from "./backend.ts";
import { predictProbabilities } from "./predict.ts";
import { defaultRunConfig } from "./run_config.ts";
import { encodeModelFiles, RunDir, type RunDirFs } from "./run_dir.ts";

/** A run directory in memory: the adapter is all RunDir sees of a file system. */
function memoryFs(): RunDirFs & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    stat: (p) =>
      Promise.resolve(
        files.has(p) ? { isFile: true, isDirectory: false, size: files.get(p)!.length } : undefined,
      ),
    readFile: (p) =>
      files.has(p) ? Promise.resolve(files.get(p)!) : Promise.reject(new Error("not found")),
    writeFile: (p, data) => Promise.resolve(void files.set(p, data)),
    mkdir: () => Promise.resolve(),
    rename: (from, to) => {
      files.set(to, files.get(from)!);
      files.delete(from);
      return Promise.resolve();
    },
    remove: (p) => Promise.resolve(void files.delete(p)),
  };
}

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("run dir: a model trained with other statistics predicts with them", async () => {
  await setupBackend({ backend: "cpu" });
  const rng = createRng(5);
  const model = createResNet18({ numClasses: 2, random: () => rng.float() });
  const fs = memoryFs();
  const dir = new RunDir(fs, "run");
  const config = { ...defaultRunConfig("scratch"), imageSize: 32 };
  const files = await encodeModelFiles(model, config, ["a", "b"], 1);
  // Retrained elsewhere with other statistics and resize: config.json is what predict obeys.
  const other = { ...JSON.parse(files.configJson), test_resize: 40, mean: [0.5, 0.4, 0.3] };
  other.std = [0.2, 0.3, 0.25];
  await dir.writeModel({ ...files, configJson: JSON.stringify(other) });
  assertEquals([...fs.files.keys()].sort(), ["run/config.json", "run/model.safetensors"]);

  const trained = await dir.readModel();
  assertEquals(trained.config.mean, [0.5, 0.4, 0.3]);
  const image = rgbImage(50, 45, Uint8Array.from({ length: 50 * 45 * 3 }, (_, i) => i * 7 % 256));
  const [p] = await predictProbabilities(trained.model, [image], trained.config);

  const expected = (mean: number[], std: number[], resize: number) => {
    const x = new Float32Array(32 * 32 * 3);
    normalizeInto(testCrop(image, 32, resize), x, 0, { mean, std });
    return tf.tidy(() =>
      tf.softmax(trained.model.forward(tf.tensor4d(x, [1, 32, 32, 3]), "eval").logits)
        .dataSync()
    );
  };
  assertEquals(Array.from(p), Array.from(expected(other.mean, other.std, 40)));
  const imagenet = JSON.parse(files.configJson);
  assertNotEquals(
    Array.from(p),
    Array.from(expected(imagenet.mean, imagenet.std, imagenet.test_resize)),
  );
  trained.model.dispose();
  model.dispose();
});

Deno.test("run dir: config.json and state.json are checked, naming the file", async () => {
  const fs = memoryFs();
  const dir = new RunDir(fs, "run");
  await assertRejects(() => dir.readModel(), Error, "run/config.json: missing");
  await dir.write("config", JSON.stringify({ architecture: "resnet18", class_names: ["a"] }));
  await dir.write("model", new Uint8Array(8));
  await assertRejects(() => dir.readModel(), Error, "run/config.json: not a webtune model config");

  await assertRejects(() => dir.readState(), Error, "run/state.json: no checkpoint to resume");
  const state = {
    task: "scratch",
    config: defaultRunConfig("scratch"),
    data: "synthetic",
    completed_epochs: 1,
    history: [{}],
  };
  await dir.write("state", JSON.stringify(state));
  assertEquals((await dir.readState()).version, 1);
  for (
    const [bad, message] of [
      [{ ...state, version: 2 }, "format version 2"],
      [{ ...state, config: { ...state.config, lr: "abc" } }, "config.lr expects a number"],
      [{ ...state, config: { ...state.config, imageSize: 7 } }, "imageSize must be at least 32"],
      [{ ...state, completed_epochs: 5 }, "history has 1 epochs, completed_epochs 5"],
      [null, "not a run state"],
    ] as const
  ) {
    fs.files.set("run/state.json", text(JSON.stringify(bad)));
    const e = await assertRejects(() => dir.readState(), Error);
    assertStringIncludes(e.message, "run/state.json: ");
    assertStringIncludes(e.message, message);
  }
});

Deno.test("run dir: writes are atomic (no temporary file is left, a failed write keeps the old)", async () => {
  const fs = memoryFs();
  const dir = new RunDir(fs, "run");
  await dir.write("metrics", "{}");
  const rename = fs.rename;
  fs.rename = () => Promise.reject(new Error("disk full"));
  await assertRejects(() => dir.write("metrics", '{"new":1}'), Error, "disk full");
  fs.rename = rename;
  assertEquals([...fs.files.keys()], ["run/metrics.json"]);
  assertEquals(new TextDecoder().decode(fs.files.get("run/metrics.json")), "{}");
});
