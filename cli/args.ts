/**
 * Command-line parsing for every webtune command.
 *
 * JSR (and so `@std/cli`'s `parseArgs`) is unreachable from this project's machines; Node's
 * built-in `node:util` `parseArgs` stands in for it, and this file is the only place that
 * imports it.
 *
 * @module
 */
import { parseArgs as nodeParseArgs } from "node:util";

/** A flag: its type, default, and the line `--help` prints. */
export interface FlagSpec {
  type: "string" | "boolean";
  default?: string | boolean;
  short?: string;
  multiple?: boolean;
  help: string;
}

/** A usage error: the CLI prints its message on one line and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Parsed flags plus positional arguments. */
export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/**
 * Parses `args` strictly: an unknown flag or a flag missing its value is a {@linkcode UsageError}
 * naming the flag. `--help` is always accepted.
 *
 * @example
 * ```ts
 * const { values } = parseFlags("finetune", ["--epochs", "3"], {
 *   epochs: { type: "string", default: "5", help: "epochs" },
 * });
 * ```
 */
export function parseFlags(
  command: string,
  args: string[],
  spec: Record<string, FlagSpec>,
  allowPositionals = false,
): Parsed {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = { help: { type: "boolean", short: "h" } };
  for (const [name, f] of Object.entries(spec)) {
    options[name] = {
      type: f.type,
      ...(f.short ? { short: f.short } : {}),
      ...(f.multiple ? { multiple: true } : {}),
    };
  }
  try {
    const { values, positionals } = nodeParseArgs({
      args,
      options,
      strict: true,
      allowPositionals,
      allowNegative: true,
    });
    for (const [name, f] of Object.entries(spec)) {
      if (values[name] === undefined && f.default !== undefined) {
        (values as Record<string, unknown>)[name] = f.default;
      }
    }
    return { values: values as Parsed["values"], positionals };
  } catch (e) {
    const message = (e as Error).message.split("\n")[0]
      .replace(/\. To specify a positional argument.*$/, "");
    throw new UsageError(`webtune ${command}: ${message} (see --help)`);
  }
}

/** The `--help` text for a command. */
export function usage(
  command: string,
  synopsis: string,
  description: string,
  spec: Record<string, FlagSpec>,
): string {
  const rows = Object.entries(spec).map(([name, f]) => {
    const flag = `--${name}${f.type === "string" ? " VALUE" : ""}`;
    const def = f.default !== undefined && f.default !== false ? ` (default: ${f.default})` : "";
    return `  ${flag.padEnd(26)} ${f.help}${def}`;
  });
  return [
    `usage: deno task ${command} ${synopsis}`,
    "",
    description,
    "",
    "options:",
    ...rows,
    `  ${"--help".padEnd(26)} show this help`,
  ].join("\n");
}

/** Reads a number flag; a non-number is a {@linkcode UsageError} naming the flag. */
export function numberFlag(
  command: string,
  values: Parsed["values"],
  name: string,
  { integer = false, min = -Infinity } = {},
): number {
  const raw = values[name];
  const n = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(n)) {
    throw new UsageError(
      `webtune ${command}: --${name} expects a number, got ${JSON.stringify(raw)}`,
    );
  }
  if (integer && !Number.isInteger(n)) {
    throw new UsageError(`webtune ${command}: --${name} expects an integer, got ${raw}`);
  }
  if (n < min) {
    throw new UsageError(`webtune ${command}: --${name} must be at least ${min}, got ${raw}`);
  }
  return n;
}
