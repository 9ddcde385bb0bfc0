/**
 * The run directory as a transaction, end to end: what an interrupt, a resume, a divergence and a
 * refused `--out` leave on disk.
 */
import { assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { readSafetensors } from "@webtune/models";
import { cli, cliInterrupted } from "./cli_util.ts";

const TINY = [
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
  "--seed",
  "3",
];

function oneLine(text: string): string {
  const lines = text.trim().split("\n").filter((l) => l.startsWith("webtune "));
  assertEquals(lines.length, 1, `expected one error line, got:\n${text}`);
  return lines[0];
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** Every file of a directory and its bytes. */
async function snapshot(dir: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(dir)) {
    files.set(e.name, await Deno.readFile(`${dir}/${e.name}`));
  }
  return files;
}

async function assertUnchanged(dir: string, before: Map<string, Uint8Array>) {
  const after = await snapshot(dir);
  assertEquals([...after.keys()].sort(), [...before.keys()].sort());
  for (const [name, bytes] of before) assertEquals(after.get(name), bytes, name);
}

/** Runs scratch and sends SIGINT after its first training batch (in epoch 1). */
function interruptInFirstEpoch(out: string) {
  return cliInterrupted(
    "scratch",
    [...TINY, "--json", "--out", out],
    (stdout) => stdout.includes('"type":"batch-end"'),
  );
}

const epochOf = async (file: string) =>
  readSafetensors(await Deno.readFile(file), file).metadata.epoch;

Deno.test("Ctrl-C in epoch 1 leaves a true epoch-0 checkpoint and no model; resume, finish, extend", async () => {
  const out = await Deno.makeTempDir({ prefix: "webtune-cut1-" });
  const cut = await interruptInFirstEpoch(out);
  assertEquals(cut.code, 130, cut.stderr);
  assertStringIncludes(cut.stderr, "epoch 0 is checkpointed");
  assertStringIncludes(cut.stderr, `--resume ${out}`);
  const state = JSON.parse(await Deno.readTextFile(`${out}/state.json`));
  assertEquals([state.completed_epochs, state.history], [0, []]);
  assertEquals(await epochOf(`${out}/checkpoint.safetensors`), "0");
  // Only a finished run has a model: nothing labelled "epoch 0" holds partly trained weights.
  assertEquals(await exists(`${out}/model.safetensors`), false);
  assertEquals(await exists(`${out}/config.json`), false);

  const resumed = await cli("scratch", ["--resume", out, "--json"]);
  assertEquals(resumed.code, 0, resumed.stderr);
  // The model is the last checkpoint's weights, byte for byte.
  assertEquals(
    await Deno.readFile(`${out}/model.safetensors`),
    await Deno.readFile(`${out}/checkpoint.safetensors`),
  );
  assertEquals(await epochOf(`${out}/model.safetensors`), "1");

  // A finished run is left alone.
  const finished = await snapshot(out);
  const again = await cli("scratch", ["--resume", out]);
  assertEquals(again.code, 0, again.stderr);
  assertStringIncludes(again.stdout, "the run is finished (1 of 1 epochs); nothing changed");
  await assertUnchanged(out, finished);

  // Flags a resume cannot honour are refused, each named; nothing changes.
  const refused = await cli("scratch", ["--resume", out, "--lr", "0.1", "--data", "/x"]);
  assertEquals(refused.code, 2);
  const line = oneLine(refused.stderr);
  assertMatch(line, /cannot change --data \(recorded: "synthetic"\), --lr \(recorded: 0\.0005\)/);
  await assertUnchanged(out, finished);

  // --epochs extends a finished run.
  const extended = await cli("scratch", ["--resume", out, "--epochs", "2", "--json"]);
  assertEquals(extended.code, 0, extended.stderr);
  const state2 = JSON.parse(await Deno.readTextFile(`${out}/state.json`));
  assertEquals([state2.completed_epochs, state2.config.epochs, state2.history.length], [2, 2, 2]);
  assertEquals(await epochOf(`${out}/model.safetensors`), "2");
  await Deno.remove(out, { recursive: true });
});

Deno.test("a diverging run exits 1 on one line, keeps the epoch-0 checkpoint, writes no model", async () => {
  const out = await Deno.makeTempDir({ prefix: "webtune-nan-" });
  const r = await cli("scratch", [...TINY, "--lr", "1e308", "--out", out]);
  assertEquals(r.code, 1, r.stderr);
  const line = oneLine(r.stderr);
  assertMatch(
    line,
    /^webtune scratch: training diverged: the loss is not finite at epoch 1, batch \d/,
  );
  assertStringIncludes(line, "learning rate 1e+308");
  assertStringIncludes(line, `no model written; the checkpoint of epoch 0 is kept in ${out}`);
  assertEquals(await exists(`${out}/model.safetensors`), false);
  assertEquals(await exists(`${out}/config.json`), false);
  assertEquals(JSON.parse(await Deno.readTextFile(`${out}/state.json`)).completed_epochs, 0);
  assertEquals(await epochOf(`${out}/checkpoint.safetensors`), "0");
  await Deno.remove(out, { recursive: true });
});

Deno.test("a run that fails in a directory holding a run of its task leaves it as it was", async () => {
  const out = await Deno.makeTempDir({ prefix: "webtune-prev-" });
  // A previous scratch run's files (their content does not matter to a new run) and a user's.
  await Deno.writeTextFile(`${out}/metrics.json`, JSON.stringify({ version: 1, task: "scratch" }));
  await Deno.writeTextFile(`${out}/config.json`, "previous config");
  await Deno.writeTextFile(`${out}/model.safetensors`, "previous model");
  await Deno.writeTextFile(`${out}/notes.txt`, "mine");
  const before = await snapshot(out);
  const r = await cli("scratch", [...TINY, "--lr", "1e308", "--out", out]);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(oneLine(r.stderr), `${out} is as it was before this run`);
  await assertUnchanged(out, before);
  await Deno.remove(out, { recursive: true });
});

Deno.test("--out must be empty or a run of the same task unless --overwrite; nothing written", async () => {
  const out = await Deno.makeTempDir({ prefix: "webtune-busy-" });
  await Deno.writeTextFile(`${out}/notes.txt`, "mine");
  const before = await snapshot(out);
  const r = await cli("scratch", [...TINY, "--out", out]);
  assertEquals(r.code, 1);
  assertEquals(
    oneLine(r.stderr),
    `webtune scratch: ${out}: not empty and not a webtune run; choose another --out, or pass --overwrite to replace its run files`,
  );
  await assertUnchanged(out, before);

  await Deno.writeTextFile(`${out}/metrics.json`, JSON.stringify({ version: 1, task: "scratch" }));
  const other = await cli("finetune", [...TINY, "--out", out]);
  assertEquals(other.code, 1);
  assertStringIncludes(oneLine(other.stderr), `${out}: a scratch run; choose another --out`);
  await Deno.remove(out, { recursive: true });
});

Deno.test("--resume refuses a hand-edited state.json on one line, before touching anything", async () => {
  const out = await Deno.makeTempDir({ prefix: "webtune-state-" });
  const { defaultRunConfig } = await import("@webtune/core");
  const state = {
    version: 1,
    task: "scratch",
    config: { ...defaultRunConfig("scratch"), epochs: 2 },
    data: "synthetic",
    completed_epochs: 0,
    history: [],
  };
  for (
    const [bad, message] of [
      [
        { ...state, config: { ...state.config, imageSize: 7 } },
        "config.imageSize must be at least 32",
      ],
      [{ ...state, completed_epochs: 5 }, "completed_epochs 5 is more than config.epochs 2"],
      [{ ...state, config: { ...state.config, lr: "abc" } }, "config.lr expects a number"],
      [{}, "version must be 1, got nothing"],
      [null, "not a run state"],
    ] as const
  ) {
    await Deno.writeTextFile(`${out}/state.json`, JSON.stringify(bad));
    const before = await snapshot(out);
    const r = await cli("scratch", ["--resume", out]);
    assertEquals(r.code, 1, r.stderr);
    const line = oneLine(r.stderr);
    assertEquals(line.startsWith(`webtune scratch: ${out}/state.json: `), true, line);
    assertStringIncludes(line, message);
    await assertUnchanged(out, before);
  }
  await Deno.remove(out, { recursive: true });
});
