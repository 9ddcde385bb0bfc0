/**
 * Helpers for end-to-end tests that run the CLI as a user would.
 *
 * @module
 */
import { KERNEL_CHOICES_FILE } from "../cli/kernel_store.ts";
import { cacheDir } from "../cli/sources.ts";

/** The repository root. */
export const ROOT: string = new URL("../", import.meta.url).pathname;
/** `../shared` beside the repository. */
export const SHARED: string = new URL("../../shared/", import.meta.url).pathname;
/** Whether `../shared` is there (tests that need it are ignored, with a printed reason, if not). */
export const sharedPresent: boolean = await Deno.stat(SHARED).then(() => true, () => false);
if (!sharedPresent) console.log(`skipping tests that read ../shared: ${SHARED} is absent`);

/**
 * This test file's cache directory, the `WEBTUNE_CACHE` of the commands it runs (each test file
 * loads this module afresh; removed when the file ends). So no test writes the user's cache and
 * no test file's kernel choices carry into another's; the commands of one file share it as a
 * user's runs share theirs. It starts as a copy of the user's measured kernel choices (their
 * cache's `kernel-choices.json`, if any; nothing else): every test file starts from the same
 * choices, and `auto` runs need not measure again in each file (on a warm cache that cost e2e_test
 * a quarter more time). Tests about the choosing itself pass a cache of their own.
 */
export const TEST_CACHE: string = await Deno.makeTempDir({ prefix: "webtune-test-cache-" });
globalThis.addEventListener("unload", () => Deno.removeSync(TEST_CACHE, { recursive: true }));
try {
  await Deno.copyFile(
    `${cacheDir()}/${KERNEL_CHOICES_FILE}`,
    `${TEST_CACHE}/${KERNEL_CHOICES_FILE}`,
  );
} catch {
  // No user cache (or no HOME): the tests measure for themselves.
}

/** Environment of the commands: {@linkcode TEST_CACHE}, then the caller's `env`. */
function commandEnv(env: Record<string, string> = {}): Record<string, string> {
  return { WEBTUNE_CACHE: TEST_CACHE, ...env };
}

/** Output of a finished CLI command. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `deno run -A cli/<command>.ts ...args` from the repository root, with `env` added to the
 * environment (the cache is {@linkcode TEST_CACHE} unless `env` names another).
 */
export async function cli(
  command: string,
  args: string[],
  env?: Record<string, string>,
): Promise<CliResult> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `cli/${command}.ts`, ...args],
    cwd: ROOT,
    env: commandEnv(env),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
}

/**
 * Runs `deno run -A cli/<command>.ts ...args` and sends it SIGINT (Ctrl-C) once `interruptWhen`
 * holds for the standard output read so far; returns the finished command's output. `env` as
 * for {@linkcode cli}.
 */
export async function cliInterrupted(
  command: string,
  args: string[],
  interruptWhen: (stdout: string) => boolean,
  env?: Record<string, string>,
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `cli/${command}.ts`, ...args],
    cwd: ROOT,
    env: commandEnv(env),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let stdout = "", signalled = false;
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    stdout += chunk;
    if (!signalled && interruptWhen(stdout)) {
      child.kill("SIGINT");
      signalled = true;
    }
  }
  const { code } = await child.status;
  return { code, stdout, stderr: await stderr };
}

/** Every line of `text` that parses as a JSON object. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}
