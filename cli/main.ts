/**
 * The top of every command: prints errors as one line and exits with a meaningful code.
 *
 * @module
 */
import { UsageError } from "./args.ts";

/** Exit code after Ctrl-C, as shells report a process ended by SIGINT. */
export const EXIT_INTERRUPTED = 130;

/** A command asked to exit with this code after printing what it had to say. */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/**
 * Runs a command's body. A {@linkcode UsageError} exits 2, any other error prints
 * `webtune <command>: <message>` on one line and exits 1.
 */
export async function main(command: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (e instanceof ExitCode) Deno.exit(e.code);
    const message = e instanceof Error ? e.message : String(e);
    const line = message.startsWith("webtune ") ? message : `webtune ${command}: ${message}`;
    console.error(line.split("\n")[0]);
    if (Deno.env.get("WEBTUNE_DEBUG") && e instanceof Error) console.error(e.stack);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
