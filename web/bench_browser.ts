/**
 * `deno task bench-browser`: the page's training speed in headless Chromium, per backend, side by
 * side: webtune's WebGPU kernels (`?kernels=fast`), tfjs-webgpu's stock kernels
 * (`?kernels=stock`) and tfjs-backend-webgl (`?backend=webgl`), on the same page, data and
 * adapter (Debian's Chromium: SwiftShader unless the machine has a GPU Chromium can use).
 *
 * Each variant gets a fresh browser (so a fresh GPU process), loads a zip of the first images of
 * each class of `--data` and the `--weights` checkpoint through the page's file inputs, and
 * trains `--epochs` epochs. Printed per variant: every epoch's seconds (the first one includes
 * shader compilation; compare the last), examples/s, and the peak resident memory of Chromium's
 * GPU process. `--trace` also counts the WebGPU calls the page makes per training step
 * (pipelines, shader modules, buffers, bind groups, dispatches): a count that grows every step
 * means something is compiled or allocated per dispatch.
 *
 * ```sh
 * deno task bench-browser                       # webgpu-fast, webgpu-stock, webgl
 * deno task bench-browser --variants webgpu-fast --trace
 * ```
 *
 * Timings on a shared machine are noisy: compare the variants of one run.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import { zipSync } from "fflate";
import { chromium } from "playwright-core";
import { buildWeb } from "./build.ts";
import { CHROMIUM, CHROMIUM_ARGS, gpuProcessRss } from "./chromium.ts";
import { staticHandler } from "./static.ts";

const SHARED = new URL("../../shared/", import.meta.url);

/** The page URL query of each variant. */
const VARIANTS: Record<string, string> = {
  "webgpu-fast": "?kernels=fast",
  "webgpu-stock": "?kernels=stock",
  "webgl": "?backend=webgl",
};

const HELP = `deno task bench-browser [flags]

Trains on the web page in headless Chromium (${CHROMIUM}) with each backend and prints the
epoch times side by side (the last epoch is the steady-state one).

  --variants LIST      comma-separated, of ${Object.keys(VARIANTS).join(", ")} (default: all)
  --data DIR           a folder in the hotdog layout (default ../shared/datasets/hotdog-mini)
  --weights FILE       source checkpoint (default ../shared/fixtures/food101-resnet18/
                       food101-64-resnet18.pth)
  --train N            training images per class (default 8)
  --test N             test images per class (default 4)
  --image-size N       default 64
  --batch-size N       default 8
  --epochs N           default 2
  --timeout-s N        per variant (default 900)
  --trace              count WebGPU calls per training step
  --json               print the results as JSON
  --help               this text`;

/** WebGPU calls counted with `--trace`: the device's and the compute pass's. */
const TRACED = {
  GPUDevice: [
    "createComputePipeline",
    "createComputePipelineAsync",
    "createShaderModule",
    "createBuffer",
    "createBindGroup",
  ],
  GPUComputePassEncoder: ["dispatchWorkgroups"],
  GPUQueue: ["submit"],
  GPUBuffer: ["destroy"],
};

/** One variant's measurements. */
export interface VariantResult {
  variant: string;
  adapter?: string;
  /** Seconds of each completed epoch. */
  epochSeconds: number[];
  examplesPerSec?: number;
  /** Peak resident memory of Chromium's GPU process, MiB. */
  peakGpuRssMiB: number;
  /** GPU-process RSS every ~2 s, MiB. */
  gpuRssMiB: number[];
  /** `--trace`: every ~2 s, seconds since load, training steps done and WebGPU calls so far. */
  timeline?: { s: number; steps: number; calls: Record<string, number> }[];
  /** `--trace`: WebGPU calls made during a training step (call name → count), by step number. */
  callsPerStep?: { step: number; calls: Record<string, number> }[];
  error?: string;
}

/** What the bench reads of `window.webtune` (see hook.ts). */
interface Probe {
  state: string;
  error?: string;
  busy: number;
  adapter?: string;
  batches: number;
  epochs: number[];
  examplesPerSec?: number;
  calls?: Record<string, number>;
}

async function pickImages(data: URL, split: string, n: number): Promise<[string, string][]> {
  const picked: [string, string][] = [];
  const splitDir = new URL(`${split}/`, data);
  const classes = [];
  for await (const e of Deno.readDir(splitDir)) if (e.isDirectory) classes.push(e.name);
  for (const cls of classes.sort()) {
    const dir = new URL(`${cls}/`, splitDir);
    const names = [];
    for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
    for (const name of names.sort().slice(0, n)) {
      picked.push([`data/${split}/${cls}/${name}`, new URL(name, dir).pathname]);
    }
  }
  return picked;
}

/** Wraps the traced WebGPU methods in the page to count their calls in `__webtuneGpuCalls`. */
function countCallsScript(traced: Record<string, string[]>): string {
  return `(() => {
    const counts = {};
    globalThis.__webtuneGpuCalls = counts;
    const traced = ${JSON.stringify(traced)};
    for (const [cls, names] of Object.entries(traced)) {
      const proto = globalThis[cls]?.prototype;
      if (!proto) continue;
      for (const name of names) {
        const original = proto[name];
        if (typeof original !== "function") continue;
        proto[name] = function (...args) {
          counts[name] = (counts[name] ?? 0) + 1;
          return original.apply(this, args);
        };
      }
    }
  })();`;
}

const PROBE = `(() => {
  const w = globalThis.webtune;
  if (!w) return undefined;
  return {
    state: w.state, error: w.error, busy: w.busy, adapter: w.backend?.description,
    batches: w.batchLosses.length, epochs: w.history.map((m) => m.seconds),
    examplesPerSec: w.examplesPerSec, calls: globalThis.__webtuneGpuCalls
      ? { ...globalThis.__webtuneGpuCalls } : undefined,
  };
})()`;

interface Options {
  url: string;
  zip: Uint8Array;
  weights: string;
  imageSize: number;
  batchSize: number;
  epochs: number;
  timeoutMs: number;
  trace: boolean;
}

/** Trains once on the page at `url` in a fresh browser and measures. */
async function runVariant(variant: string, o: Options): Promise<VariantResult> {
  const result: VariantResult = { variant, epochSeconds: [], peakGpuRssMiB: 0, gpuRssMiB: [] };
  const server = await chromium.launchServer({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const pid = server.process().pid!;
  const browser = await chromium.connect(server.wsEndpoint());
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const mib = (await gpuProcessRss(pid)) / 2 ** 20;
      result.gpuRssMiB.push(Math.round(mib));
      result.peakGpuRssMiB = Math.max(result.peakGpuRssMiB, Math.round(mib));
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  try {
    const page = await browser.newPage();
    if (o.trace) await page.addInitScript(countCallsScript(TRACED));
    page.on("console", (m) => {
      if (m.type() === "error") console.error(`  [${variant} console] ${m.text()}`);
    });
    const probe = () => page.evaluate(PROBE) as Promise<Probe | undefined>;
    const t0 = performance.now();
    const deadline = t0 + o.timeoutMs;
    /** Polls the page until `done` holds; records calls per step. Returns the last probe. */
    const until = async (done: (p: Probe) => boolean): Promise<Probe> => {
      let lastBatches = -1;
      let lastCalls: Record<string, number> = {};
      for (;;) {
        const p = await probe();
        const now = (performance.now() - t0) / 1000;
        if (o.trace && p?.calls && now - (result.timeline?.at(-1)?.s ?? -2) >= 2) {
          (result.timeline ??= []).push({ s: Math.round(now), steps: p.batches, calls: p.calls });
        }
        if (p?.error) throw new Error(p.error);
        if (p && o.trace && p.calls && p.batches !== lastBatches) {
          if (lastBatches >= 0 && p.batches === lastBatches + 1) {
            const delta: Record<string, number> = {};
            for (const [k, v] of Object.entries(p.calls)) delta[k] = v - (lastCalls[k] ?? 0);
            (result.callsPerStep ??= []).push({ step: p.batches, calls: delta });
          }
          lastBatches = p.batches;
          lastCalls = p.calls;
        }
        if (p && done(p)) return p;
        if (performance.now() > deadline) throw new Error(`timed out (state ${p?.state})`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await page.goto(o.url);
    const ready = await until((p) => p.state !== "starting" && p.busy === 0);
    if (ready.state !== "idle") throw new Error(`the page did not start (state ${ready.state})`);
    result.adapter = ready.adapter;
    await page.setInputFiles("#data-zip", {
      name: "bench.zip",
      mimeType: "application/zip",
      buffer: Buffer.from(o.zip),
    });
    await until((p) => p.busy === 0 && p.state === "idle");
    await page.setInputFiles("#weights-file", o.weights);
    await page.waitForFunction("globalThis.webtune.source && globalThis.webtune.busy === 0");
    await page.fill("#image-size", String(o.imageSize));
    await page.fill("#batch-size", String(o.batchSize));
    await page.fill("#epochs", String(o.epochs));
    await page.click("#start");
    const done = await until((p) => p.state === "trained");
    result.epochSeconds = done.epochs;
    result.examplesPerSec = done.examplesPerSec;
  } catch (e) {
    result.error = e instanceof Error ? e.message.split("\n")[0] : String(e);
  } finally {
    sampling = false;
    await sampler;
    await browser.close().catch(() => {});
    await server.close();
  }
  return result;
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench-browser: --${flag} expects a positive whole number, got ${value}`);
    Deno.exit(2);
  }
  return n;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      variants: { type: "string", default: Object.keys(VARIANTS).join(",") },
      data: { type: "string", default: new URL("datasets/hotdog-mini/", SHARED).pathname },
      weights: {
        type: "string",
        default: new URL("fixtures/food101-resnet18/food101-64-resnet18.pth", SHARED).pathname,
      },
      train: { type: "string", default: "8" },
      test: { type: "string", default: "4" },
      "image-size": { type: "string", default: "64" },
      "batch-size": { type: "string", default: "8" },
      epochs: { type: "string", default: "2" },
      "timeout-s": { type: "string", default: "900" },
      trace: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  const variants = values.variants.split(",").map((v) => v.trim()).filter(Boolean);
  for (const v of variants) {
    if (!(v in VARIANTS)) {
      console.error(`bench-browser: unknown variant ${v} (${Object.keys(VARIANTS).join(", ")})`);
      Deno.exit(2);
    }
  }
  const data = new URL(`file://${Deno.realPathSync(values.data)}/`);
  const entries: Record<string, Uint8Array> = {};
  for (const split of ["train", "test"] as const) {
    const n = positiveInt(split, values[split]);
    for (const [name, path] of await pickImages(data, split, n)) {
      entries[name] = await Deno.readFile(path);
    }
  }
  const dist = await Deno.makeTempDir({ prefix: "webtune-bench-browser-" });
  await buildWeb({ outDir: dist });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, staticHandler(dist));
  const results: VariantResult[] = [];
  try {
    for (const variant of variants) {
      const r = await runVariant(variant, {
        url: `http://127.0.0.1:${server.addr.port}/${VARIANTS[variant]}`,
        zip: zipSync(entries, { level: 0 }),
        weights: values.weights,
        imageSize: positiveInt("image-size", values["image-size"]),
        batchSize: positiveInt("batch-size", values["batch-size"]),
        epochs: positiveInt("epochs", values.epochs),
        timeoutMs: positiveInt("timeout-s", values["timeout-s"]) * 1000,
        trace: values.trace,
      });
      results.push(r);
      {
        // With --json the lines go to stderr, to follow a long run.
        const log = values.json ? console.error : console.log;
        const epochs = r.epochSeconds.map((s) => s.toFixed(1)).join(" / ");
        log(
          `${variant.padEnd(13)} epochs ${epochs || "-"} s, ` +
            `${r.examplesPerSec?.toFixed(2) ?? "-"} examples/s, ` +
            `GPU process peak ${r.peakGpuRssMiB} MiB` + (r.error ? `, FAILED: ${r.error}` : ""),
        );
        for (const { s, steps, calls } of r.timeline ?? []) {
          log(`  ${s} s: ${steps} steps, ${JSON.stringify(calls)}`);
        }
        if (values.trace) {
          for (const { step, calls } of r.callsPerStep ?? []) {
            log(`  step ${step}: ${JSON.stringify(calls)}`);
          }
          log(`  GPU process RSS (MiB, every 2 s): ${r.gpuRssMiB.join(" ")}`);
        }
      }
    }
  } finally {
    await server.shutdown();
    await Deno.remove(dist, { recursive: true });
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
}
