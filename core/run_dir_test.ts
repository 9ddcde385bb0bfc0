import {
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import * as tf from "@tensorflow/tfjs-core";
import { createRng, normalizeInto, rgbImage, testCrop } from "@webtune/data";
import { createResNet18, writeSafetensors } from "@webtune/models";
import { placeOnDevice, setupBackend } from "./backend.ts";
import { predictProbabilities } from "./predict.ts";
import { defaultRunConfig } from "./run_config.ts";
import { encodeModelFiles, loadTrainedModel, parseRunState, RunDir } from "./run_dir.ts";
import { memoryFs } from "./test_util.ts";

const text = (s: string) => new TextEncoder().encode(s);
const EPOCH_1 = {
  epoch: 1,
  loss: 0.7,
  train_acc: 0.5,
  test_acc: 0.5,
  examples_per_sec: 10,
  seconds: 1,
};

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
    version: 1,
    task: "scratch",
    config: defaultRunConfig("scratch"),
    data: "synthetic",
    completed_epochs: 1,
    history: [EPOCH_1],
  };
  await dir.write("state", JSON.stringify(state));
  assertEquals((await dir.readState()).version, 1);
  for (
    const [bad, message] of [
      [{ ...state, version: 2 }, "format version 2"],
      [{ ...state, config: { ...state.config, lr: "abc" } }, "config.lr expects a number"],
      [{ ...state, config: { ...state.config, imageSize: 7 } }, "imageSize must be at least 32"],
      [{ ...state, completed_epochs: 2 }, "history has 1 epochs, completed_epochs 2"],
      [{ ...state, completed_epochs: 6 }, "completed_epochs 6 is more than config.epochs 5"],
      [{ ...state, completed_epochs: -1 }, "completed_epochs must be an integer ≥ 0"],
      [{ ...state, history: [{ ...EPOCH_1, epoch: 2 }] }, "history[0].epoch must be 1"],
      [{ ...state, history: [{ ...EPOCH_1, loss: null }] }, "history[0].loss must be a number"],
      [{ ...state, history: [{ ...EPOCH_1, test_acc: 3 }] }, "history[0].test_acc must be"],
      [{ ...state, data: 7 }, "data must be a non-empty string"],
      [{ ...state, weights: {} }, "weights must be a string"],
      [{ ...state, task: "finetune" }, "task and config.task differ"],
      [{ ...state, config: null }, "config must be an object"],
      [{ ...state, version: undefined }, "version must be 1, got nothing"],
      [{}, "version must be 1"],
      [[], "not a run state"],
      [null, "not a run state"],
    ] as const
  ) {
    fs.files.set("run/state.json", text(JSON.stringify(bad)));
    const e = await assertRejects(() => dir.readState(), Error);
    assertStringIncludes(e.message, "run/state.json: ");
    assertStringIncludes(e.message, message);
  }
});

Deno.test("run dir: broken JSON is refused on one line, its line breaks escaped", () => {
  const e = assertThrows(() => parseRunState('{"task":\n\tlr}', "s.json"), Error);
  assertMatch(e.message, /^s\.json: not valid JSON \(.*\)$/);
  assertEquals(e.message.split("\n").length, 1, e.message);
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

const host = (x: number) => ({
  dtype: "float32" as const,
  shape: [1],
  data: new Float32Array([x]),
});

/** A valid state after `done` epochs of a 2-epoch scratch run. */
function stateAfter(done: number) {
  return {
    task: "scratch" as const,
    config: { ...defaultRunConfig("scratch"), epochs: 2 },
    data: "synthetic",
    completed_epochs: done,
    history: Array.from({ length: done }, (_, i) => ({ ...EPOCH_1, epoch: i + 1 })),
  };
}

Deno.test("run dir: a checkpoint write that fails (disk full) keeps the previous checkpoint and state", async () => {
  const fs = memoryFs();
  const dir = new RunDir(fs, "run");
  const weights = (epoch: number) =>
    writeSafetensors(new Map([["w", host(epoch)]]), {
      task: "scratch",
      epoch: `${epoch}`,
    });
  await dir.writeCheckpoint(weights(0), new Map(), stateAfter(0), { epochs: [] });
  const before = new Map(fs.files);
  // ENOSPC on each of the four files in turn: the first ones may already have gone to disk.
  for (let failing = 0; failing < 3; failing++) {
    let writes = 0;
    const writeFile = fs.writeFile;
    fs.writeFile = (p, data) =>
      writes++ === failing
        ? Promise.reject(new Error("No space left on device (os error 28)"))
        : writeFile(p, data);
    const e = await assertRejects(() =>
      dir.writeCheckpoint(weights(1), new Map(), stateAfter(1), { epochs: [EPOCH_1] })
    );
    fs.writeFile = writeFile;
    assertStringIncludes((e as Error).message, "checkpoint of epoch 1 not written: run/");
    assertStringIncludes((e as Error).message, "No space left on device");
    assertStringIncludes((e as Error).message, "epoch 0's checkpoint in run is intact");
    assertEquals([...fs.files.keys()].sort(), [...before.keys()].sort());
    for (const [p, bytes] of before) assertEquals(fs.files.get(p), bytes, p);
  }
  const state = await dir.readState();
  assertEquals(state.completed_epochs, 0);
  assertEquals((await dir.readCheckpoint(state)).weights.get("w")!.data, new Float32Array([0]));
});

Deno.test("run dir: a checkpoint that is not the one state.json records is refused", async () => {
  const fs = memoryFs();
  const dir = new RunDir(fs, "run");
  const checkpoint = writeSafetensors(new Map([["w", host(1)]]), {
    task: "scratch",
    epoch: "1",
  });
  await dir.writeCheckpoint(checkpoint, new Map(), stateAfter(1), {});
  await dir.readCheckpoint(await dir.readState());
  await dir.write("state", JSON.stringify({ version: 1, ...stateAfter(2) }));
  await assertRejects(
    async () => dir.readCheckpoint(await dir.readState()),
    Error,
    "run/checkpoint.safetensors: holds scratch run's epoch 1, but state.json records scratch epoch 2",
  );
});

Deno.test("run dir: a new run starts only in an empty directory or a run of its task", async () => {
  const fs = memoryFs();
  const dir = new RunDir(fs, "run");
  assertEquals(await dir.refuseNewRun("scratch"), undefined); // missing
  fs.files.set("run/notes.txt", text("mine"));
  assertEquals(
    await dir.refuseNewRun("scratch"),
    "run: not empty and not a webtune run; choose another --out, or pass --overwrite to replace its run files",
  );
  await dir.writeCheckpoint(new Uint8Array(8), new Map(), stateAfter(0), { task: "finetune" });
  assertEquals(await dir.refuseNewRun("scratch"), undefined);
  assertStringIncludes((await dir.refuseNewRun("finetune"))!, "run: a scratch run; choose another");
  fs.files.set("file", text("x"));
  assertEquals(await new RunDir(fs, "file").refuseNewRun("scratch"), "file: not a directory");
});

Deno.test("run dir: a new run's takeover restores the previous run's files, or commits", async () => {
  const fs = memoryFs();
  const dir = new RunDir(fs, "run");
  fs.files.set("run/notes.txt", text("mine"));
  fs.files.set("run/model.safetensors", text("old model"));
  fs.files.set("run/config.json", text("old config"));
  const before = new Map(fs.files);
  const takeover = await dir.takeOver();
  assertEquals(takeover.moved.sort(), ["config.json", "model.safetensors"]);
  assertEquals(fs.files.has("run/model.safetensors"), false);
  await dir.write("state", "{}");
  await dir.write("model", "new model");
  await takeover.restore();
  assertEquals(fs.files, before);

  const again = await dir.takeOver();
  await dir.write("model", "new model");
  await again.commit();
  assertEquals([...fs.files.keys()].sort(), ["run/model.safetensors", "run/notes.txt"]);
});

Deno.test("run dir: a model loaded from files computes on the GPU, bit for bit as the one saved", async () => {
  await setupBackend({ backend: "webgpu", kernels: "fast" });
  const rng = createRng(9);
  const saved = createResNet18({ numClasses: 2, random: () => rng.float() });
  // Running statistics as training leaves them (not PyTorch's 0 and 1), written by GPU ops: its
  // BatchNorm scale rsqrt(var + eps) is computed on the GPU, which rounds it differently from
  // tfjs-webgpu's CPU path for never-uploaded small tensors (about a third of values here).
  for (const [name, v] of saved.variables) {
    const variance = name.endsWith("running_var");
    if (variance || name.endsWith("running_mean")) {
      const values = Float32Array.from(
        { length: v.size },
        () => variance ? 0.5 + rng.float() : 0.1 * (rng.float() - 0.5),
      );
      const onGpu = tf.tensor(values, v.shape);
      placeOnDevice([onGpu]);
      v.assign(tf.mul(onGpu, 1));
      onGpu.dispose();
    }
  }
  placeOnDevice(saved.variables.values());
  const files = await encodeModelFiles(saved, defaultRunConfig("scratch"), ["a", "b"], 1);
  const loaded = loadTrainedModel(files.configJson, files.weights, "model.safetensors");
  try {
    const x = tf.tensor4d(Float32Array.from({ length: 2 * 32 * 32 * 3 }, () => rng.float() - 0.5), [
      2,
      32,
      32,
      3,
    ]);
    const logits = async (m: typeof saved) => {
      const y = tf.tidy(() => m.forward(x, "eval").logits);
      const data = Array.from(await y.data());
      y.dispose();
      return data;
    };
    const expected = await logits(saved);
    // Not a degenerate net: the two images get different logits.
    assertNotEquals(expected.slice(0, 2), expected.slice(2));
    assertEquals(await logits(loaded.model), expected);
    x.dispose();
  } finally {
    saved.dispose();
    loaded.model.dispose();
  }
});
