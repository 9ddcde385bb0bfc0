import { assertEquals, assertStringIncludes } from "@std/assert";
import { defaultRunConfig, NoWebGPUError, ParamError, RUN_PARAMS } from "@webtune/core";
import {
  defineCommand,
  EXIT_INTERRUPTED,
  runCommand,
  runConfigFromFlags,
  runParamFlags,
  usage,
} from "./shell.ts";

/** A command that records what it was given, and fails or exits as told. */
const probe = defineCommand({
  name: "probe",
  synopsis: "[options] FILE...",
  description: "A test command.",
  positionals: true,
  flags: {
    lr: { kind: "number", min: 0, default: 0.5, help: "a rate" },
    shift: { kind: "number", default: 0, help: "any number, negatives too" },
    steps: { kind: "number", integer: true, min: 1, default: 3, help: "a count" },
    backend: { kind: "enum", choices: ["webgpu", "cpu"], default: "webgpu", help: "where" },
    sizes: { kind: "numbers", integer: true, min: 32, default: "64,224", help: "a list" },
    fast: { kind: "boolean", help: "a switch" },
    group: { kind: "boolean", explicit: true, default: true, help: "true or false" },
    dir: { kind: "path", what: "directory", help: "an existing folder" },
    name: { kind: "string", required: true, placeholder: "NAME", help: "a name" },
    outcome: { kind: "enum", choices: ["ok", "fail", "interrupt"], default: "ok", help: "how" },
  },
  run({ values, positionals, out }) {
    out(JSON.stringify({ ...values, positionals }));
    if (values.outcome === "fail") throw new Error("it broke\nsecond line");
    if (values.outcome === "interrupt") return EXIT_INTERRUPTED;
  },
});

async function run(...args: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await runCommand(probe, args, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err, values: out[0]?.startsWith("{") ? JSON.parse(out[0]) : undefined };
}

Deno.test("shell: values are parsed to their kinds, defaults filled, positionals kept", async () => {
  const r = await run("--name", "x", "--lr", "1e-3", "--sizes", "32, 96", "--fast", "a.jpg");
  assertEquals(r.code, 0, r.err.join("\n"));
  assertEquals(r.values, {
    lr: 0.001,
    shift: 0,
    steps: 3,
    backend: "webgpu",
    sizes: [32, 96],
    fast: true,
    group: true,
    name: "x",
    outcome: "ok",
    positionals: ["a.jpg"],
  });
  assertEquals((await run("--name", "x", "--group", "false")).values.group, false);
});

Deno.test("shell: a negative number after a flag is its value, not an option", async () => {
  assertEquals((await run("--name", "x", "--shift", "-1.5")).values.shift, -1.5);
  assertEquals((await run("--name", "x", "--shift=-2")).values.shift, -2);
  const r = await run("--name", "x", "--lr", "-1");
  assertEquals([r.code, r.err], [2, ["webtune probe: --lr must be at least 0, got -1"]]);
});

Deno.test("shell: bad values are one-line usage errors naming the flag (exit 2)", async () => {
  const cases: [string[], string][] = [
    [["--steps", "three"], '--steps expects a number, got "three"'],
    [["--steps", "1.5"], "--steps expects an integer, got 1.5"],
    [["--steps", "1e300"], `--steps expects an integer of at most ${Number.MAX_SAFE_INTEGER}`],
    [["--steps", "0"], "--steps must be at least 1, got 0"],
    [["--lr", "Infinity"], '--lr expects a number, got "Infinity"'],
    [["--lr", ""], '--lr expects a number, got ""'],
    [["--backend", "gpu"], "--backend expects webgpu or cpu, got gpu"],
    [["--group", "yes"], "--group expects true or false, got yes"],
    [["--sizes", "64,x"], '--sizes expects a number, got "x" (a comma-separated list)'],
    [["--sizes", "16"], "--sizes must be at least 32, got 16 (a comma-separated list)"],
    [["--nope"], "Unknown option '--nope'"],
    [["--steps"], "Option '--steps <value>' argument missing (see --help)"],
  ];
  for (const [args, message] of cases) {
    const r = await run("--name", "x", ...args);
    assertEquals(r.code, 2, args.join(" "));
    assertEquals(r.err.length, 1, r.err.join("\n"));
    assertStringIncludes(r.err[0], `webtune probe: ${message}`);
  }
  const missing = await run();
  assertEquals([missing.code, missing.err], [2, [
    "webtune probe: --name NAME is required (see --help)",
  ]]);
});

Deno.test("shell: a path flag must exist (exit 1, naming the path)", async () => {
  const dir = await Deno.makeTempDir();
  assertEquals((await run("--name", "x", "--dir", dir)).values.dir, dir);
  const r = await run("--name", "x", "--dir", `${dir}/nope`);
  assertEquals([r.code, r.err], [1, [
    `webtune probe: ${dir}/nope: cannot read (no such directory)`,
  ]]);
  await Deno.remove(dir);
});

Deno.test("shell: errors print their first line (exit 1); a command's code is returned", async () => {
  const failed = await run("--name", "x", "--outcome", "fail");
  assertEquals([failed.code, failed.err], [1, ["webtune probe: it broke"]]);
  assertEquals((await run("--name", "x", "--outcome", "interrupt")).code, 130);
});

Deno.test("shell: --help lists every flag with its values and default, and exits 0", async () => {
  const r = await run("--help");
  assertEquals(r.code, 0);
  const text = r.out.join("\n");
  assertStringIncludes(text, "usage: deno task probe [options] FILE...");
  assertStringIncludes(text, "--backend webgpu|cpu");
  assertStringIncludes(text, "(default: webgpu)");
  assertStringIncludes(text, "--group true|false");
  assertStringIncludes(text, "--name NAME");
  assertStringIncludes(text, "(required)");
  assertEquals(usage(probe), text);
});

Deno.test("shell: the run-config table's flags, per task, with the task's defaults", async () => {
  const finetune = runParamFlags("finetune"), scratch = runParamFlags("scratch");
  assertEquals(finetune.lr.default, 5e-5);
  assertEquals(scratch.lr.default, 5e-4);
  assertEquals(scratch["param-group"].default, false);
  assertEquals("head-init" in finetune, true);
  assertEquals("head-init" in scratch, false);
  const command = defineCommand({
    name: "t",
    synopsis: "",
    description: "",
    flags: finetune,
    run({ values, out }) {
      out(JSON.stringify(runConfigFromFlags("finetune", defaultRunConfig("finetune"), values)));
    },
  });
  const out: string[] = [];
  const args = ["--head-init", "imagenet-hotdog", "--seed", "3", "--limit-train", "8"];
  const errors: string[] = [];
  const code = await runCommand(command, args, (l) => out.push(l), (l) => errors.push(l));
  assertEquals(code, 0, errors.join("\n"));
  assertEquals(JSON.parse(out[0]), {
    ...defaultRunConfig("finetune"),
    headInit: "imagenet-hotdog",
    seed: 3,
    limitTrain: 8,
  });
  const err: string[] = [];
  assertEquals(await runCommand(command, ["--seed", "1e300"], () => {}, (l) => err.push(l)), 2);
  assertStringIncludes(err[0], "--seed expects an integer");
});

/** What the shell prints, and the code it returns, for a command that throws `error`. */
async function failWith(error: Error) {
  const command = defineCommand({
    name: "t",
    synopsis: "",
    description: "",
    flags: {},
    run() {
      throw error;
    },
  });
  const err: string[] = [];
  const code = await runCommand(command, [], () => {}, (l) => err.push(l));
  return { code, err };
}

Deno.test("shell: core's errors are told with the flag that helps (exit 1)", async () => {
  const tooBig = await failWith(
    new ParamError("batchSize", "128 at 224 px needs 392 MiB: use 32 or less"),
  );
  assertEquals(tooBig, {
    code: 1,
    err: ["webtune t: --batch-size 128 at 224 px needs 392 MiB: use 32 or less"],
  });
  const noGpu = await failWith(
    new NoWebGPUError("no WebGPU adapter found: ... or use the (slow) cpu backend"),
  );
  assertEquals(noGpu, {
    code: 1,
    err: ["webtune t: no WebGPU adapter found: ... or use the (slow) cpu backend (--backend cpu)"],
  });
});

Deno.test("shell: a list flag takes comma lists of a run parameter's values; a switch's alone is true", async () => {
  const lists = defineCommand({
    name: "lists",
    synopsis: "[options]",
    description: "Lists of run parameters.",
    flags: {
      optimizer: { kind: "list", of: RUN_PARAMS.optimizer, help: "a list of enums" },
      lr: { kind: "list", of: RUN_PARAMS.lr, default: "5e-5", help: "a list of numbers" },
      nesterov: { kind: "list", of: RUN_PARAMS.nesterov, help: "a switch's list" },
      epochs: { kind: "number", default: 5, help: "not a list" },
    },
    run({ values, out }) {
      out(JSON.stringify(values));
    },
  });
  const parse = async (...args: string[]) => {
    const out: string[] = [], err: string[] = [];
    const code = await runCommand(lists, args, (l) => out.push(l), (l) => err.push(l));
    return { code, err, values: code === 0 ? JSON.parse(out[0]) : undefined };
  };
  assertEquals((await parse("--optimizer", "sgd,adamw", "--lr", "1e-4, 5e-4")).values, {
    optimizer: ["sgd", "adamw"],
    lr: [1e-4, 5e-4],
    epochs: 5,
  });
  assertEquals((await parse()).values.lr, [5e-5]);
  assertEquals((await parse("--nesterov", "--epochs", "1")).values.nesterov, [true]);
  assertEquals((await parse("--nesterov")).values.nesterov, [true]);
  assertEquals((await parse("--nesterov", "false,true")).values.nesterov, [false, true]);
  const bad = await parse("--optimizer", "sgd,adam");
  assertEquals(bad.code, 2);
  assertEquals(bad.err, [
    "webtune lists: --optimizer expects sgd or adamw, got adam (a comma-separated list)",
  ]);
  assertStringIncludes(usage(lists), "--optimizer sgd|adamw[,...]");
});
