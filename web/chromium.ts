/**
 * How webtune drives a headless Chromium (Debian's `/usr/bin/chromium`, software WebGPU through
 * SwiftShader) with `npm:playwright-core`: shared by the browser test and the page's benchmark
 * (`web/bench_browser.ts`). Deno only; the page never imports this file.
 *
 * @module
 */

/** Debian's Chromium; playwright-core drives it (never `npx playwright install`). */
export const CHROMIUM = "/usr/bin/chromium";

/**
 * Chromium flags that give a WebGPU adapter without a GPU: SwiftShader's Vulkan behind Dawn
 * (`--enable-unsafe-webgpu`, since Linux WebGPU is still behind a flag), no sandbox (root, no
 * user namespaces in containers), and nothing that reaches the network.
 *
 * @example
 * ```ts ignore
 * import { chromium } from "playwright-core";
 * import { CHROMIUM, CHROMIUM_ARGS } from "./chromium.ts";
 * const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
 * ```
 */
export const CHROMIUM_ARGS: string[] = [
  "--enable-unsafe-webgpu",
  ...chromiumBaseArgs(),
  "--enable-features=Vulkan",
];

/**
 * Flags for a headless Chromium that reaches nothing outside the machine: no sandbox (root, no
 * user namespaces in containers), SwiftShader, no background networking. No WebGPU by itself.
 */
export function chromiumBaseArgs(): string[] {
  return [
    "--no-sandbox",
    "--disable-gpu-sandbox",
    "--headless=new",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--use-angle=swiftshader",
  ];
}

/**
 * The resident memory in bytes of the GPU processes among `pid`'s descendants (Chromium's GPU
 * process runs Dawn and SwiftShader, so that is where WebGPU's memory lives), from `ps`.
 * 0 when there is none.
 */
export async function gpuProcessRss(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", {
    args: ["-e", "-o", "pid=,ppid=,rss=,args="],
    stdout: "piped",
  }).output();
  const rows = new TextDecoder().decode(out.stdout).split("\n").map((line) => {
    const m = line.trim().match(/^(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/);
    return m ? { pid: +m[1], ppid: +m[2], rssKiB: +m[3], args: m[4] } : undefined;
  }).filter((r) => r !== undefined);
  const ours = new Set([pid]);
  // Children come after their parents in pid order unless pids wrapped; loop to a fixed point.
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rows) {
      if (!ours.has(r.pid) && ours.has(r.ppid)) {
        ours.add(r.pid);
        grew = true;
      }
    }
  }
  return rows.filter((r) => ours.has(r.pid) && r.args.includes("--type=gpu-process"))
    .reduce((sum, r) => sum + r.rssKiB * 1024, 0);
}
