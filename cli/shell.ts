/**
 * The one command shell of every `deno task` command: a command declares its flags and a run
 * function; parsing, `--help`, validation (enums, numbers, paths), the one-line error and the exit
 * codes live here.
 *
 * Exit codes: 0 ok, 1 error, 2 usage error, 130 interrupted (as shells report SIGINT).
 *
 * JSR (and so `@std/cli`'s `parseArgs`) is unreachable from this project's machines; Node's
 * built-in `node:util` `parseArgs` stands in for it, and this file is the only place that
 * imports it.
 *
 * @example
 * ```ts
 * import { defineCommand, runCommand } from "./shell.ts";
 * const hello = defineCommand({
 *   name: "hello",
 *   synopsis: "[--times N]",
 *   description: "Say hello.",
 *   flags: { times: { kind: "number", integer: true, min: 1, default: 1, help: "how often" } },
 *   run({ values, out }) {
 *     for (let i = 0; i < values.times; i++) out("hello");
 *   },
 * });
 * console.log(await runCommand(hello, ["--times", "2"])); // prints hello twice, then 0
 * ```
 *
 * @module
 */
import { parseArgs as nodeParseArgs } from "node:util";
import {
  NoWebGPUError,
  paramEntries,
  ParamError,
  type ParamSpec,
  parseValue,
  type RunConfig,
  type Task,
} from "@webtune/core";

/** Exit code after Ctrl-C, as shells report a process ended by SIGINT. */
export const EXIT_INTERRUPTED = 130;
/** Exit code of a usage error (bad flag, bad value). */
export const EXIT_USAGE = 2;

interface FlagBase {
  help: string;
  /** A usage error if the flag is not given. */
  required?: boolean;
  /** The value's name in `--help` (default VALUE). */
  placeholder?: string;
}

/** A flag declaration: its kind decides how its value is parsed and checked. */
export type FlagSpec =
  | FlagBase & { kind: "number"; integer?: boolean; min?: number; max?: number; default?: number }
  | FlagBase & { kind: "numbers"; integer?: boolean; min?: number; default?: string }
  /** A comma list of values of one run parameter (`compare --optimizer sgd,adamw`). */
  | FlagBase & { kind: "list"; of: ParamSpec; default?: string }
  | FlagBase & { kind: "boolean"; explicit?: boolean; default?: boolean }
  | FlagBase & { kind: "enum"; choices: readonly string[]; default?: string }
  | FlagBase & { kind: "string"; default?: string }
  | FlagBase & { kind: "path"; what: "file" | "directory"; default?: string };

/** The flags of a command, by flag name (`batch-size`). */
export type Flags = Record<string, FlagSpec>;

type ValueOf<F extends FlagSpec> = F extends { kind: "number" } ? number
  : F extends { kind: "numbers" } ? number[]
  : F extends { kind: "list" } ? (number | boolean | string)[]
  : F extends { kind: "boolean" } ? boolean
  : string;
/** Parsed flag values: flags without a default (and not required) may be undefined. */
export type Values<F extends Flags> = {
  [K in keyof F]: F[K] extends { default: unknown } | { required: true } | { kind: "boolean" }
    ? ValueOf<F[K]>
    : ValueOf<F[K]> | undefined;
};

/** What a command's run function gets. */
export interface Context<F extends Flags> {
  values: Values<F>;
  /** The flags given on the command line (the rest of `values` are defaults). */
  given: ReadonlySet<string>;
  positionals: string[];
  /** stdout and stderr, one line per call (tests capture them). */
  out: (line: string) => void;
  err: (line: string) => void;
}

/** A command: its flags, its `--help` text and what it does. */
export interface Command<F extends Flags> {
  name: string;
  synopsis: string;
  description: string;
  flags: F;
  /** Whether it takes positional arguments (predict's images). */
  positionals?: boolean;
  /** Returns an exit code, or nothing for 0. */
  run(ctx: Context<F>): Promise<number | void> | number | void;
}

/** Declares a command (an identity function that keeps the flags' types). */
export function defineCommand<F extends Flags>(command: Command<F>): Command<F> {
  return command;
}

/** A usage error: printed on one line, exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A command asks to exit with this code after printing what it had to say. */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/**
 * The flags of the run-config table for `task` (see `@webtune/core`'s `RUN_PARAMS`): one per
 * parameter the task uses, with its default for that task.
 */
export function runParamFlags(task: Task): Flags {
  const flags: Flags = {};
  for (const p of paramEntries(task)) {
    if (p.used) flags[p.flag] = { ...p.spec, default: p.default } as FlagSpec;
  }
  return flags;
}

/** The run config of `task` from parsed flags: the table's flags over the task's defaults. */
export function runConfigFromFlags(
  task: Task,
  defaults: RunConfig,
  values: Record<string, unknown>,
): RunConfig {
  const config: Record<string, unknown> = { ...defaults, task };
  for (const p of paramEntries(task)) {
    if (p.used && values[p.flag] !== undefined) config[p.name] = values[p.flag];
  }
  return config as RunConfig;
}

/** A run parameter's error in the shell's words: the flag instead of the field name. */
export function flagMessage(e: ParamError): string {
  const flag = paramEntries("finetune").find((p) => p.name === e.param)?.flag ?? e.param;
  return `--${flag} ${e.problem}`;
}

/** The value's name in messages and `--help`: `--model DIR`. */
function valueName(f: FlagSpec): string {
  if (f.placeholder) return f.placeholder;
  if (f.kind === "path") return f.what === "file" ? "FILE" : "DIR";
  if (f.kind === "number") return f.integer ? "N" : "X";
  if (f.kind === "list") {
    const of = f.of;
    const one = of.kind === "enum"
      ? of.choices.join("|")
      : of.kind === "boolean"
      ? "true|false"
      : of.integer
      ? "N"
      : "X";
    return `${one}[,...]`;
  }
  return f.kind === "numbers" ? (f.integer ? "N,N" : "X,X") : "VALUE";
}

function takesValue(f: FlagSpec): boolean {
  return f.kind !== "boolean" || f.explicit === true;
}

/** A list of a switch (`compare --nesterov`): given alone, it means `true` as the switch does. */
function isSwitchList(f: FlagSpec): boolean {
  return f.kind === "list" && f.of.kind === "boolean" && !f.of.explicit;
}

/**
 * `--lr -1`: Node's parser takes `-1` for an option and calls it ambiguous. A value that looks
 * like a negative number after a flag that takes a value is joined into `--lr=-1`. A switch's
 * list flag without a list after it (`compare --nesterov --epochs 1`) becomes `--nesterov=true`.
 */
function joinNegativeNumbers(args: string[], flags: Flags): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : undefined;
    const next = args[i + 1];
    if (name && flags[name] && isSwitchList(flags[name])) {
      if (next !== undefined && /^(true|false)(,(true|false))*$/.test(next)) {
        joined.push(`${args[i]}=${next}`);
        i++;
      } else {
        joined.push(`${args[i]}=true`);
      }
    } else if (
      name && flags[name] && takesValue(flags[name]) && next !== undefined &&
      /^-(\d|\.\d|Infinity)/.test(next)
    ) {
      joined.push(`${args[i]}=${next}`);
      i++;
    } else {
      joined.push(args[i]);
    }
  }
  return joined;
}

function parseOne(name: string, f: FlagSpec, raw: string): unknown {
  try {
    switch (f.kind) {
      case "number":
      case "enum":
        return parseValue(`--${name}`, f, raw);
      case "boolean":
        return parseValue(`--${name}`, f, raw);
      case "numbers": {
        const items = raw.split(",").map((s) => s.trim());
        const item = { kind: "number", integer: f.integer, min: f.min, help: f.help } as const;
        return items.map((raw) => parseValue(`--${name}`, item, raw));
      }
      case "list":
        return raw.split(",").map((item) => parseValue(`--${name}`, f.of, item.trim()));
      case "string":
      case "path":
        if (raw === "") throw new UsageError(`--${name} expects a value, got ""`);
        return raw;
    }
  } catch (e) {
    if (e instanceof ParamError) {
      const list = f.kind === "numbers" || f.kind === "list" ? " (a comma-separated list)" : "";
      throw new UsageError(`${e.param} ${e.problem}${list}`);
    }
    throw e;
  }
}

/** A path flag must name an existing file or directory (bad input: exit 1, not a usage error). */
async function checkPath(f: FlagSpec & { kind: "path" }, path: string) {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? `no such ${f.what}` : (e as Error).message;
    throw new Error(`${path}: cannot read (${why})`);
  }
  if (f.what === "directory" && !info.isDirectory) throw new Error(`${path}: not a directory`);
  if (f.what === "file" && !info.isFile) throw new Error(`${path}: not a file`);
}

/**
 * Parses and checks `args` against `flags`: an unknown flag, a missing value or a bad value is a
 * {@linkcode UsageError} naming the flag. `--help` is always accepted.
 */
export async function parseFlags<F extends Flags>(
  flags: F,
  args: string[],
  allowPositionals = false,
): Promise<{ values: Values<F>; given: Set<string>; positionals: string[]; help: boolean }> {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, f] of Object.entries(flags)) {
    options[name] = { type: takesValue(f) ? "string" : "boolean" };
  }
  let parsed;
  try {
    parsed = nodeParseArgs({
      args: joinNegativeNumbers(args, flags),
      options,
      strict: true,
      allowPositionals,
      allowNegative: true,
    });
  } catch (e) {
    // Node's message spans lines (the problem, then a hint); one line keeps both.
    const message = (e as Error).message.split("\n").map((l) => l.trim()).filter(Boolean)
      .join(" ");
    throw new UsageError(`${message} (see --help)`);
  }
  const raw = parsed.values as Record<string, string | boolean | undefined>;
  if (raw.help) return { values: {} as Values<F>, given: new Set(), positionals: [], help: true };
  const values: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(flags)) {
    const given = raw[name];
    if (given === undefined) {
      if (f.required) {
        throw new UsageError(`--${name} ${valueName(f)} is required (see --help)`);
      }
      values[name] = (f.kind === "numbers" || f.kind === "list") && f.default !== undefined
        ? parseOne(name, f, f.default)
        : f.default ?? (f.kind === "boolean" ? false : undefined);
      continue;
    }
    values[name] = typeof given === "boolean" ? given : parseOne(name, f, given);
    if (f.kind === "path") await checkPath(f, given as string);
  }
  const given = new Set(Object.keys(flags).filter((name) => raw[name] !== undefined));
  return { values: values as Values<F>, given, positionals: parsed.positionals, help: false };
}

/** The `--help` text of a command. */
export function usage(command: Command<Flags>): string {
  const rows = Object.entries(command.flags).map(([name, f]) => {
    const value = f.kind === "enum"
      ? ` ${f.choices.join("|")}`
      : f.kind === "boolean"
      ? (f.explicit ? " true|false" : "")
      : ` ${valueName(f)}`;
    const flag = `--${name}${value}`;
    const def = f.default !== undefined && f.default !== false ? ` (default: ${f.default})` : "";
    const required = f.required ? " (required)" : "";
    return `  ${flag.padEnd(26)} ${f.help}${def}${required}`;
  });
  return [
    `usage: deno task ${command.name} ${command.synopsis}`,
    "",
    command.description,
    "",
    "options:",
    ...rows,
    `  ${"--help".padEnd(26)} show this help`,
  ].join("\n");
}

/**
 * Runs a command on `args` and returns its exit code; errors are printed as one line
 * `webtune <command>: <message>` on `err`.
 */
export async function runCommand<F extends Flags>(
  command: Command<F>,
  args: string[],
  out: (line: string) => void = console.log,
  err: (line: string) => void = console.error,
): Promise<number> {
  try {
    const { values, given, positionals, help } = await parseFlags(
      command.flags,
      args,
      command.positionals,
    );
    if (help) {
      out(usage(command as unknown as Command<Flags>));
      return 0;
    }
    return (await command.run({ values, given, positionals, out, err })) ?? 0;
  } catch (e) {
    if (e instanceof ExitCode) return e.code;
    // core names problems; the shell says which flag helps.
    const message = e instanceof ParamError
      ? flagMessage(e)
      : e instanceof NoWebGPUError
      ? `${e.message} (--backend cpu)`
      : e instanceof Error
      ? e.message
      : String(e);
    const line = message.startsWith("webtune ") ? message : `webtune ${command.name}: ${message}`;
    err(line.split("\n")[0]);
    if (Deno.env.get("WEBTUNE_DEBUG") && e instanceof Error) err(e.stack ?? "");
    return e instanceof UsageError ? EXIT_USAGE : 1;
  }
}

/** Runs a command on `Deno.args` and exits with its code (the entry point of `cli/*.ts`). */
export async function main<F extends Flags>(command: Command<F>): Promise<never> {
  Deno.exit(await runCommand(command, Deno.args));
}
