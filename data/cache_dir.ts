/**
 * Where downloads and extracted data sets are kept.
 *
 * @module
 */

/**
 * The default cache directory: `$WEBTUNE_CACHE` if set, else `$XDG_CACHE_HOME/webtune`, else
 * `%LOCALAPPDATA%\webtune` on Windows, else `~/.cache/webtune`. `env` reads a variable (the CLI
 * passes `denoEnv`); environment access stays outside the data package.
 *
 * @example
 * ```ts
 * import { defaultCacheDir } from "@webtune/data";
 * const env: Record<string, string> = { HOME: "/home/ada" };
 * console.log(defaultCacheDir((name) => env[name])); // /home/ada/.cache/webtune
 * ```
 */
export function defaultCacheDir(env: (name: string) => string | undefined): string {
  const explicit = env("WEBTUNE_CACHE");
  if (explicit) return explicit;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return `${xdg.replace(/\/+$/, "")}/webtune`;
  const localAppData = env("LOCALAPPDATA");
  if (localAppData) return `${localAppData}\\webtune`;
  const home = env("HOME") ?? env("USERPROFILE");
  if (home) return `${home.replace(/\/+$/, "")}/.cache/webtune`;
  throw new Error(
    "no cache directory: set WEBTUNE_CACHE (or XDG_CACHE_HOME or HOME)",
  );
}
