/**
 * Shared pieces of the Chromium tests: where Chromium is, its flags, the built page served on
 * 127.0.0.1, and waiting on `window.webtune`.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import type { Page } from "playwright-core";
import { buildWeb } from "@webtune/web/build";
import { chromiumBaseArgs } from "@webtune/web/chromium";
import { staticHandler } from "@webtune/web/static";

/** Debian's Chromium (never a downloaded one: `npx playwright install` needs the network). */
export const CHROMIUM = "/usr/bin/chromium";

/** The page's headless Chromium flags (web/chromium.ts), with SwiftShader allowed for WebGL. */
export const BASE_ARGS: string[] = [...chromiumBaseArgs(), "--enable-unsafe-swiftshader"];

/** A fake camera (a moving test pattern) that needs no permission prompt. */
export const FAKE_CAMERA_ARGS = [
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
];

/** Whether a path exists. */
export function exists(path: string | URL): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The page built into a temporary folder and served on 127.0.0.1 (any free port). */
export async function servePage(): Promise<{ url: string; close(): Promise<void> }> {
  const dist = await Deno.makeTempDir({ prefix: "webtune-web-dist-" });
  await buildWeb({ outDir: dist });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, staticHandler(dist));
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    async close() {
      await server.shutdown();
      await Deno.remove(dist, { recursive: true });
    },
  };
}

/**
 * Waits until the JavaScript expression `pred` (over `w = window.webtune`) holds, or the page
 * shows an error (which fails the wait unless `allowError`). Prints how long it took.
 */
export async function waitForHook<T = Record<string, unknown>>(
  page: Page,
  what: string,
  pred: string,
  timeout: number,
  allowError = false,
): Promise<T> {
  const started = performance.now();
  await page.waitForFunction(
    `(() => { const w = globalThis.webtune; return w && (w.error || (${pred})); })()`,
    undefined,
    { timeout, polling: 100 },
  );
  const hook = await page.evaluate(() => {
    const w = (globalThis as { webtune?: Record<string, unknown> }).webtune!;
    // Functions do not cross to the test.
    return JSON.parse(JSON.stringify(w));
  });
  if (!allowError) assertEquals(hook.error, undefined, `${what}: the page shows an error`);
  console.log(`  ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return hook as T;
}
