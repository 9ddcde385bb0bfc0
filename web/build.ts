/**
 * Bundles the page into static files (`web/dist/`) with esbuild's JS API.
 *
 * esbuild does not understand Deno's `npm:` specifiers or workspace members, so two things
 * bridge the gap:
 *
 * - npm packages: Deno lays out a real `node_modules` (from its global cache, offline, at the
 *   exact versions of the root `deno.lock`) in a temporary directory, and esbuild resolves
 *   against it with its own Node rules, which honour each package's `browser` and `module`
 *   fields (fflate's browser build, tfjs' stubs for `node-fetch`, ...).
 * - `@webtune/*`: a tiny plugin maps each workspace member's name and exports to its files.
 *
 * Run from Deno only; the page itself never imports this file.
 *
 * @module
 */
import * as esbuild from "esbuild";

/** The repository root (this file is `web/build.ts`). */
const ROOT = new URL("../", import.meta.url);
const WEB = new URL("./", import.meta.url);

/** Build and test tools in the import map; the page never imports them. */
const TOOLS = new Set(["esbuild", "playwright-core"]);

/** Files copied unchanged next to the bundle. */
const STATIC_FILES = ["index.html", "style.css"];

/** Options for {@linkcode buildWeb}. */
export interface BuildWebOptions {
  /** Output directory (default `web/dist`); emptied first. */
  outDir?: string;
  /** Minify the JavaScript (default true). */
  minify?: boolean;
}

/**
 * Builds the page: `index.html`, `style.css`, `main.js` and its chunks (the webgl fallback is a
 * separate chunk, loaded only when asked for), and the service worker `sw.js` that keeps them
 * for offline use. All URLs are relative, so the folder works from
 * any static host.
 *
 * @returns the output directory.
 * @example
 * ```ts ignore
 * import { buildWeb } from "./build.ts";
 * const dist = await buildWeb();
 * ```
 */
export async function buildWeb(options: BuildWebOptions = {}): Promise<string> {
  const outDir = options.outDir ?? new URL("dist", WEB).pathname;
  await Deno.remove(outDir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  await Deno.mkdir(outDir, { recursive: true });
  const deps = await Deno.makeTempDir({ prefix: "webtune-web-deps-" });
  try {
    const nodeModules = await installNpmDeps(deps);
    await esbuild.build({
      entryPoints: { main: new URL("main.ts", WEB).pathname },
      outdir: outDir,
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      minify: options.minify ?? true,
      sourcemap: "linked",
      nodePaths: [nodeModules],
      plugins: [await workspacePlugin()],
      define: { "process.env.NODE_ENV": '"production"' },
      logLevel: "error",
      // Nothing in the page needs a file to be named the same between builds.
      chunkNames: "chunks/[name]-[hash]",
    });
    for (const file of STATIC_FILES) {
      await Deno.copyFile(new URL(file, WEB), `${outDir}/${file}`);
    }
    await buildServiceWorker(outDir, options.minify ?? true);
  } finally {
    await esbuild.stop();
    await Deno.remove(deps, { recursive: true }).catch(() => {});
  }
  return outDir;
}

/**
 * Bundles `sw.ts` as `sw.js` with the list of the bundle's files to keep offline and a digest
 * of their contents (a rebuild with any change gets a fresh cache). Source maps are left out:
 * only developer tools ask for them.
 */
async function buildServiceWorker(outDir: string, minify: boolean): Promise<void> {
  const files: string[] = [];
  const walk = async (dir: string, prefix: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await walk(`${dir}/${e.name}`, `${prefix}${e.name}/`);
      else if (!e.name.endsWith(".map")) files.push(`${prefix}${e.name}`);
    }
  };
  await walk(outDir, "");
  files.sort();
  const hash = new Uint8Array(files.length * 32);
  for (const [i, file] of files.entries()) {
    const bytes = await Deno.readFile(`${outDir}/${file}`);
    hash.set(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), i * 32);
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", hash));
  const version = [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
  await esbuild.build({
    entryPoints: { sw: new URL("sw.ts", WEB).pathname },
    outdir: outDir,
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    minify,
    define: {
      WEBTUNE_PRECACHE: JSON.stringify(["./", ...files.map((f) => `./${f}`)]),
      WEBTUNE_VERSION: JSON.stringify(version),
    },
    logLevel: "error",
  });
}

/**
 * Writes a config that imports the root import map's npm packages and has Deno install them
 * into `dir/node_modules` from its cache (`--cached-only`: no network; CI's `deno install`
 * has filled the cache). The root lock file pins the versions.
 */
async function installNpmDeps(dir: string): Promise<string> {
  const root = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const imports: Record<string, string> = {};
  for (const [name, target] of Object.entries(root.imports as Record<string, string>)) {
    if (target.startsWith("npm:") && !TOOLS.has(name)) imports[name] = target;
  }
  await Deno.writeTextFile(
    `${dir}/deno.json`,
    JSON.stringify({ nodeModulesDir: "auto", imports }),
  );
  await Deno.copyFile(new URL("deno.lock", ROOT), `${dir}/deno.lock`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["install", "--cached-only", "--quiet"],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  if (!out.success) {
    throw new Error(
      `web build: could not install the page's npm packages from Deno's cache ` +
        `(run \`deno install\` in the repository first):\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return `${dir}/node_modules`;
}

/** Resolves `@webtune/<member>[/<export>]` to the workspace member's file. */
async function workspacePlugin(): Promise<esbuild.Plugin> {
  const root = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const map = new Map<string, string>();
  for (const member of root.workspace as string[]) {
    const dir = new URL(`${member.replace(/^\.\//, "")}/`, ROOT);
    const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", dir)));
    if (!config.name) continue;
    const exports: Record<string, string> = typeof config.exports === "string"
      ? { ".": config.exports }
      : config.exports ?? {};
    for (const [sub, file] of Object.entries(exports)) {
      map.set(
        sub === "." ? config.name : `${config.name}/${sub.slice(2)}`,
        new URL(file, dir).pathname,
      );
    }
  }
  return {
    name: "webtune-workspace",
    setup(build) {
      build.onResolve({ filter: /^@webtune\// }, (args) => {
        const path = map.get(args.path);
        if (!path) return { errors: [{ text: `no workspace export ${args.path}` }] };
        return { path };
      });
    },
  };
}

if (import.meta.main) {
  const dir = await buildWeb();
  console.log(`built ${dir}`);
}
