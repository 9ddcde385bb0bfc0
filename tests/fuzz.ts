/**
 * A tiny seeded mutation fuzzer for the file readers (zip, pickle, `.pth`, safetensors, JPEG, PNG,
 * `state.json`).
 *
 * A case takes one of the target's valid seed inputs and applies 1-4 seeded mutations (bit flips,
 * byte and integer overwrites, truncations, insertions, deletions, duplicated ranges), biased to the
 * first bytes where headers and declared sizes live; a target whose input is structured text (JSON)
 * can bring its own mutator ({@linkcode FuzzTarget.mutate}). Every case must end in a result or a *clean*
 * error, as the target defines it (typically the reader's own error class with its file-name
 * prefix); a `RangeError` or `TypeError` from deep inside a reader is a bug in the reader.
 *
 * The cases run in a child process so that a hang is caught too: the test fails, naming the case,
 * when a case runs longer than `caseTimeoutMs`, and the child is killed. Memory is bounded by
 * failing a case after which the process holds more than `maxMemoryGrowth` bytes above where it
 * started (readers must refuse absurd declared sizes before allocating). A run must reach both
 * ends, some results and some clean errors: a reader that refuses (or accepts) everything would
 * pass otherwise. A case is reproduced from `(seed, index)` alone with {@linkcode fuzzCase}.
 *
 * ```ts ignore
 * // x_fuzz_test.ts: the same file is the test and the runner (in a child process).
 * import { errorWithPrefix, fuzzTest } from "../tests/fuzz.ts";
 * fuzzTest(import.meta.url, {
 *   name: "safetensors",
 *   seeds: () => [writeSafetensors(small)],
 *   run: (bytes) => readSafetensors(bytes, "fuzz.safetensors"),
 *   isClean: errorWithPrefix(WeightsError, "fuzz.safetensors: "),
 * });
 * ```
 *
 * @module
 */
import { Rng } from "../data/rng.ts";

/** What a fuzz test exercises. */
export interface FuzzTarget {
  /** Names the test (`fuzz: NAME`); unique within its file. */
  name: string;
  /** Valid inputs that cases mutate. */
  seeds: () => Uint8Array[] | Promise<Uint8Array[]>;
  /** Reads one input; may return anything or throw a clean error. */
  run: (bytes: Uint8Array) => unknown;
  /** Whether a thrown value is the reader's own, expected kind of error. */
  isClean: (error: unknown) => boolean;
  /**
   * Makes a case from a seed input; default {@linkcode mutate} (bytes). Must use only `rng` for
   * its choices, so that `(seed, index)` reproduces the case.
   */
  mutate?: (input: Uint8Array, rng: Rng) => FuzzCase;
}

/** Below this many cases a run is too short to require both results and clean errors. */
const MIN_CASES_FOR_BOTH_ENDS = 100;

/** Limits of one fuzz run. */
export interface FuzzOptions {
  /** Seeds the mutations. Default 1. */
  seed?: number;
  /** The most cases. Default 20 000. */
  cases?: number;
  /** Stop starting new cases after this long. Default 3000 ms. */
  budgetMs?: number;
  /** A case running longer than this is a hang. Default 5000 ms. */
  caseTimeoutMs?: number;
  /** Fail when the process's RSS grows more than this over the run. Default 1 GiB. */
  maxMemoryGrowth?: number;
}

/** What a finished run saw. */
export interface FuzzReport {
  /** Cases run. */
  cases: number;
  /** Cases that returned a result. */
  results: number;
  /** Cases that threw a clean error. */
  cleanErrors: number;
  /** Wall time. */
  ms: number;
  /** The slowest case and its time. */
  slowest: { index: number; ms: number };
}

/** One mutated input and the mutations that made it (for failure messages). */
export interface FuzzCase {
  /** The mutated bytes. */
  bytes: Uint8Array;
  /** The mutations applied, e.g. `flip bit 3 of byte 17`. */
  ops: string[];
}

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff];
const INTERESTING_32 = [
  0,
  1,
  0x7f,
  0xff,
  0x7fff,
  0xffff,
  0x10000,
  0x7fffffff,
  0x80000000,
  0xffffffff,
];

/** A position, half the time within the first 64 bytes (headers, declared sizes). */
function position(rng: Rng, length: number): number {
  if (length === 0) return 0;
  return rng.int(0, rng.float() < 0.5 ? Math.min(length, 64) : length);
}

/**
 * Applies 1-4 seeded mutations to a copy of `input`.
 *
 * @example
 * ```ts ignore
 * const { bytes, ops } = mutate(new Uint8Array([1, 2, 3]), new Rng(7));
 * ```
 */
export function mutate(input: Uint8Array, rng: Rng): FuzzCase {
  let bytes = input.slice();
  const ops: string[] = [];
  const count = 1 + rng.int(0, 4);
  for (let k = 0; k < count; k++) {
    const kind = rng.int(0, 7);
    const at = position(rng, bytes.length);
    if (kind === 0 && bytes.length > 0) {
      const bit = rng.int(0, 8);
      bytes[at] ^= 1 << bit;
      ops.push(`flip bit ${bit} of byte ${at}`);
    } else if (kind === 1 && bytes.length > 0) {
      const value = rng.float() < 0.5
        ? INTERESTING_8[rng.int(0, INTERESTING_8.length)]
        : rng.int(0, 256);
      bytes[at] = value;
      ops.push(`set byte ${at} to ${value}`);
    } else if (kind === 2 && bytes.length >= 4) {
      const p = Math.min(at, bytes.length - 4);
      const value = INTERESTING_32[rng.int(0, INTERESTING_32.length)];
      const little = rng.float() < 0.5;
      new DataView(bytes.buffer).setUint32(p, value, little);
      ops.push(`set u32${little ? "le" : "be"} at ${p} to ${value}`);
    } else if (kind === 3) {
      // Truncations anywhere, not only near the start.
      const end = rng.int(0, bytes.length + 1);
      bytes = bytes.slice(0, end);
      ops.push(`truncate to ${end}`);
    } else if (kind === 4) {
      const n = 1 + rng.int(0, 16);
      const inserted = Uint8Array.from({ length: n }, () => rng.int(0, 256));
      const out = new Uint8Array(bytes.length + n);
      out.set(bytes.subarray(0, at));
      out.set(inserted, at);
      out.set(bytes.subarray(at), at + n);
      bytes = out;
      ops.push(`insert ${n} bytes at ${at}`);
    } else if (kind === 5 && bytes.length > 0) {
      const n = 1 + rng.int(0, Math.min(64, bytes.length - at));
      const out = new Uint8Array(bytes.length - n);
      out.set(bytes.subarray(0, at));
      out.set(bytes.subarray(at + n), at);
      bytes = out;
      ops.push(`delete ${n} bytes at ${at}`);
    } else if (bytes.length > 0) {
      const n = 1 + rng.int(0, Math.min(64, bytes.length));
      const from = rng.int(0, bytes.length - n + 1);
      const to = Math.min(at, bytes.length - n);
      bytes.copyWithin(to, from, from + n);
      ops.push(`copy ${n} bytes from ${from} to ${to}`);
    }
  }
  return { bytes, ops };
}

/**
 * Case `index` of a run seeded `seed` over `seeds`, made by `mutator` (a target's own, or the byte
 * mutations): the same bytes on every machine.
 */
export function fuzzCase(
  seeds: readonly Uint8Array[],
  seed: number,
  index: number,
  mutator: (input: Uint8Array, rng: Rng) => FuzzCase = mutate,
): FuzzCase {
  const rng = new Rng(Math.imul(seed, 0x9e3779b1) ^ index);
  const input = seeds[index % seeds.length];
  const { bytes, ops } = mutator(input, rng);
  return { bytes, ops: [`seed input ${index % seeds.length} (${input.length} bytes)`, ...ops] };
}

type FromChild =
  | { kind: "case"; index: number }
  | { kind: "done"; report: FuzzReport }
  | { kind: "fail"; message: string };

/** Set in the child process: which target to run, with which options (JSON). */
const CHILD_ENV = "WEBTUNE_FUZZ_CHILD";
const LOAD_TIMEOUT_MS = 120_000;
const encoder = new TextEncoder();

/**
 * Registers `fuzz: NAME` as a Deno test that runs the target's cases in a child process running
 * `moduleUrl` (pass `import.meta.url`: the calling test file is also the child's module, where
 * this call runs the target instead of registering a test). A process rather than a worker: it
 * can be killed in the middle of a hung case, its RSS is the fuzzer's alone, and it starts
 * without type-checking the module again.
 */
export function fuzzTest(moduleUrl: string, target: FuzzTarget, options: FuzzOptions = {}): void {
  if (fuzzTarget(target)) return;
  // Longer or other campaigns without editing the tests:
  // WEBTUNE_FUZZ_SEED=7 WEBTUNE_FUZZ_BUDGET_MS=60000 deno test -A data/zip_fuzz_test.ts
  const env = (key: string) => {
    const value = Deno.env.get(key);
    return value === undefined ? undefined : Number(value);
  };
  const effective = {
    ...options,
    seed: env("WEBTUNE_FUZZ_SEED") ?? options.seed,
    budgetMs: env("WEBTUNE_FUZZ_BUDGET_MS") ?? options.budgetMs,
  };
  Deno.test(`fuzz: ${target.name}`, async () => {
    const report = await runFuzz(moduleUrl, target, effective);
    console.log(
      `fuzz ${target.name}: ${report.cases} cases in ${(report.ms / 1000).toFixed(1)} s ` +
        `(${report.results} results, ${report.cleanErrors} clean errors; slowest case ` +
        `${report.slowest.index}: ${report.slowest.ms.toFixed(0)} ms)`,
    );
  });
}

/**
 * In the child process started by {@linkcode runFuzz}, runs `target` if it is the one asked for
 * and returns true; elsewhere returns false. Call it at the top level of the module passed to
 * `runFuzz` ({@linkcode fuzzTest} does).
 */
export function fuzzTarget(target: FuzzTarget): boolean {
  const child = Deno.env.get(CHILD_ENV);
  if (child === undefined) return false;
  const job: { target: string; options: FuzzOptions } = JSON.parse(child);
  if (job.target === target.name) void runInChild(target, job.options);
  return true;
}

/** The child's side: one JSON line per message, written synchronously so none is lost. */
async function runInChild(target: FuzzTarget, options: FuzzOptions): Promise<void> {
  const send = (m: FromChild) => Deno.stdout.writeSync(encoder.encode(JSON.stringify(m) + "\n"));
  try {
    send({ kind: "done", report: await runCases(target, options, send) });
  } catch (err) {
    send({ kind: "fail", message: (err as Error).message });
  }
}

/**
 * Runs `target`'s cases in a child process running `moduleUrl` (which registers the target with
 * {@linkcode fuzzTarget} or {@linkcode fuzzTest}). Rejects, naming the case and its mutations, on
 * an unclean error, a hang, or memory growth.
 */
export async function runFuzz(
  moduleUrl: string,
  target: FuzzTarget,
  options: FuzzOptions = {},
): Promise<FuzzReport> {
  const caseTimeoutMs = options.caseTimeoutMs ?? 5000;
  const config = new URL("../deno.json", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-check", "--config", config, moduleUrl],
    env: { [CHILD_ENV]: JSON.stringify({ target: target.name, options }) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let current = -1;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut: string | undefined;
  let outcome: FromChild | undefined;
  const arm = () => {
    clearTimeout(timer);
    // Starting the child and preparing the seeds get a generous allowance; a case gets
    // caseTimeoutMs, after which the child is killed mid-case.
    const ms = current < 0 ? LOAD_TIMEOUT_MS : caseTimeoutMs;
    timer = setTimeout(() => {
      timedOut = `did not finish within ${ms} ms`;
      child.kill("SIGKILL");
    }, ms);
  };
  try {
    arm();
    let buffered = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const m: FromChild = JSON.parse(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        if (m.kind === "case") {
          current = m.index;
          arm();
        } else outcome = m;
      }
    }
  } finally {
    clearTimeout(timer);
  }
  const status = await child.status;
  const errors = (await stderr).trim().split("\n").slice(-5).join(" | ");
  if (timedOut) {
    const what = current < 0 ? "starting" : await describeCase(target, options, current);
    throw new Error(`fuzz ${target.name}: ${what} ${timedOut}`);
  }
  if (outcome?.kind === "fail") throw new Error(outcome.message);
  if (outcome?.kind !== "done") {
    throw new Error(
      `fuzz ${target.name}: the child exited with ${status.code} after case ${current}: ${errors}`,
    );
  }
  return outcome.report;
}

async function describeCase(target: FuzzTarget, options: FuzzOptions, index: number) {
  const seed = options.seed ?? 1;
  const { ops } = fuzzCase(await target.seeds(), seed, index, target.mutate);
  return `case ${index} (seed ${seed}: ${ops.join(", ")})`;
}

/** Runs the cases in this thread; throws on the first unclean error or memory blow-up. */
async function runCases(
  target: FuzzTarget,
  options: FuzzOptions,
  onCase: (m: FromChild) => void = () => {},
): Promise<FuzzReport> {
  const seed = options.seed ?? 1;
  const maxCases = options.cases ?? 20_000;
  const budgetMs = options.budgetMs ?? 3000;
  const maxGrowth = options.maxMemoryGrowth ?? 1024 ** 3;
  const seeds = await target.seeds();
  if (seeds.length === 0) throw new Error(`fuzz ${target.name}: no seed inputs`);
  // Every seed must itself be read without error, or the mutations test nothing useful.
  for (const [i, s] of seeds.entries()) {
    try {
      await target.run(s);
    } catch (e) {
      throw new Error(
        `fuzz ${target.name}: seed input ${i} fails unmutated: ${(e as Error).message}`,
      );
    }
  }
  const startRss = Deno.memoryUsage().rss;
  const started = performance.now();
  const report: FuzzReport = {
    cases: 0,
    results: 0,
    cleanErrors: 0,
    ms: 0,
    slowest: { index: -1, ms: 0 },
  };
  for (let index = 0; index < maxCases && performance.now() - started < budgetMs; index++) {
    onCase({ kind: "case", index });
    const { bytes, ops } = fuzzCase(seeds, seed, index, target.mutate);
    const t0 = performance.now();
    try {
      await target.run(bytes);
      report.results++;
    } catch (e) {
      if (!target.isClean(e)) {
        const err = e as Error;
        throw new Error(
          `fuzz ${target.name}: case ${index} (seed ${seed}: ${ops.join(", ")}) threw ` +
            `${err?.name}: ${err?.message}\n${err?.stack ?? ""}`,
        );
      }
      report.cleanErrors++;
    }
    const ms = performance.now() - t0;
    if (ms > report.slowest.ms) report.slowest = { index, ms };
    report.cases++;
    const growth = Deno.memoryUsage().rss - startRss;
    if (growth > maxGrowth) {
      throw new Error(
        `fuzz ${target.name}: after case ${index} (seed ${seed}: ${ops.join(", ")}) the process ` +
          `grew by ${(growth / 1024 ** 2).toFixed(0)} MiB`,
      );
    }
  }
  report.ms = performance.now() - started;
  if (
    report.cases >= MIN_CASES_FOR_BOTH_ENDS && (report.results === 0 || report.cleanErrors === 0)
  ) {
    throw new Error(
      `fuzz ${target.name}: all ${report.cases} cases ${
        report.results === 0 ? "threw clean errors" : "returned results"
      } (seed ${seed}): the mutations never reach the other end`,
    );
  }
  return report;
}

/** A clean-error predicate: an instance of `type` whose message starts with `prefix`. */
export function errorWithPrefix(
  type: abstract new (...args: never[]) => Error,
  prefix: string,
): (e: unknown) => boolean {
  return (e) => e instanceof type && e.message.startsWith(prefix) && !e.message.includes("\n");
}
