/**
 * Fuzzes `state.json` through tests/fuzz.ts's harness (a child process: a hang or a memory blow-up
 * fails the test too): every mutated file ends in a valid state or a clean one-line error naming
 * the file; never a TypeError from deep inside, never a state that breaks the invariants a resume
 * relies on.
 *
 * Mutations are structural (a field replaced by a value of another type or out of range, deleted,
 * added; arrays grown and shrunk) and, in one case of five, the harness's byte mutations of the
 * text (truncated, bytes changed), because a hand-edited `state.json` goes wrong in both ways.
 */
import { assert, assertEquals } from "@std/assert";
import type { Rng } from "@webtune/data";
import { type FuzzCase, fuzzTest, mutate } from "../tests/fuzz.ts";
import { defaultRunConfig } from "./run_config.ts";
import { parseRunState, type RunState } from "./run_dir.ts";

const PATH = "fuzz/state.json";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SEED_STATE = {
  version: 1,
  task: "finetune",
  // A finished run (completed = epochs): a nudged epoch count breaks it.
  config: { ...defaultRunConfig("finetune"), epochs: 2, schedule: "cosine" },
  data: "hotdog",
  weights: "resnet18.pth",
  completed_epochs: 2,
  history: [1, 2].map((epoch) => ({
    epoch,
    loss: 0.5 / epoch,
    train_acc: 0.8,
    test_acc: 0.75,
    examples_per_sec: 12.5,
    seconds: 3,
    lrs: [5e-5, 4e-5],
  })),
};

const ODD_VALUES: unknown[] = [
  null,
  true,
  0,
  1,
  -1,
  0.5,
  2,
  1e308,
  -1e308,
  2 ** 53,
  "",
  "abc",
  "3",
  [],
  [1],
  {},
  { epoch: 1 },
];

/** Every path to a value in `v` (object keys and array indices). */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  }
  return out;
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(0, items.length)];
}

/** The fields whose consistency a resume depends on: half of the mutations aim at them. */
const HOT_PATHS = [
  ["version"],
  ["task"],
  ["completed_epochs"],
  ["history"],
  ["history", 0],
  ["history", 1, "epoch"],
  ["config"],
  ["config", "task"],
  ["config", "epochs"],
  ["config", "imageSize"],
  ["config", "lr"],
];

/** One structural mutation of `root` (a deep copy is changed and returned). */
function mutateValue(root: unknown, rng: Rng): { value: unknown; op: string } {
  const copy = structuredClone(root);
  const all = paths(copy);
  const hot = all.filter((p) => HOT_PATHS.some((h) => h.join(".") === p.join(".")));
  const path = pick(rng, hot.length > 0 && rng.float() < 0.5 ? hot : all);
  const op = rng.int(0, 4);
  const odd = structuredClone(pick(rng, ODD_VALUES));
  if (path.length === 0) return { value: odd, op: `root = ${JSON.stringify(odd)}` };
  type Node = Record<string | number, unknown>;
  const parent = path.slice(0, -1).reduce((v: Node, k) => v[k] as Node, copy as Node);
  const key = path[path.length - 1];
  const where = path.join(".");
  if (op === 0 && !Array.isArray(parent)) {
    delete parent[key];
    return { value: copy, op: `delete ${where}` };
  }
  if (op === 1 && Array.isArray(parent)) {
    parent.push(structuredClone(parent[key as number]));
    return { value: copy, op: `duplicate ${where}` };
  }
  if (op === 2 && typeof parent[key] === "number") {
    parent[key] = (parent[key] as number) + pick(rng, [-1, 1, 0.5, 1e9]);
    return { value: copy, op: `nudge ${where}` };
  }
  parent[key] = odd;
  return { value: copy, op: `${where} = ${JSON.stringify(odd)}` };
}

/** What a resume relies on, checked independently of the parser. */
function assertResumable(s: RunState) {
  assertEquals(s.version, 1);
  assertEquals(s.task, s.config.task);
  assert(Number.isInteger(s.completed_epochs) && s.completed_epochs >= 0);
  assert(s.completed_epochs <= s.config.epochs);
  assertEquals(s.history.length, s.completed_epochs);
  s.history.forEach((m, i) => assertEquals(m.epoch, i + 1));
  for (const key of ["imageSize", "batchSize", "epochs"] as const) {
    assert(Number.isInteger(s.config[key]) && s.config[key] > 0, key);
  }
  assert(Number.isFinite(s.config.lr) && s.config.lr >= 0, "lr");
  assert(typeof s.data === "string");
}

/**
 * 1-3 structural mutations of the seed's JSON, then in one case of five the byte mutations of the
 * text as well.
 */
function mutateState(input: Uint8Array, rng: Rng): FuzzCase {
  let value: unknown = JSON.parse(decoder.decode(input));
  const ops: string[] = [];
  for (let k = 1 + rng.int(0, 3); k > 0; k--) {
    const m = mutateValue(value, rng);
    value = m.value;
    ops.push(m.op);
  }
  // JSON.stringify(undefined) is undefined: an empty file.
  const bytes = encoder.encode(JSON.stringify(value) ?? "");
  if (rng.float() >= 0.2) return { bytes, ops };
  const text = mutate(bytes, rng);
  return { bytes: text.bytes, ops: [...ops, ...text.ops] };
}

fuzzTest(import.meta.url, {
  name: "state.json",
  seeds: () => [encoder.encode(JSON.stringify(SEED_STATE))],
  mutate: mutateState,
  // Decoded as RunDir.readState decodes the file; a broken invariant throws AssertionError,
  // which is not clean, so the harness fails naming the case.
  run: (bytes) => assertResumable(parseRunState(decoder.decode(bytes), PATH)),
  // parseRunState throws plain Errors (not a subclass such as TypeError) naming the file.
  isClean: (e) =>
    e instanceof Error && e.constructor === Error && e.message.startsWith(`${PATH}: `) &&
    !e.message.includes("\n"),
});
