/**
 * The web page in a real browser (Debian's Chromium, software WebGPU via SwiftShader): load a
 * zip and a source checkpoint through the file inputs, fine-tune one short epoch, check the
 * charts, predictions and confusion matrix, download the model and check that the CLI's
 * `predict` gives the page's probabilities for the same images, and that a second training
 * leaves no tensors behind.
 *
 * Software WebGPU trains ResNet-18 at about an image per second on a 2-core machine, so the data
 * is tiny (4 + 2 images per class at 64 px). Every wait is on page state (`window.webtune`) or a
 * browser event, with generous timeouts; nothing sleeps.
 *
 * @module
 */
import { assert, assertEquals, assertGreater, assertLess, assertRejects } from "@std/assert";
import * as tf from "@tensorflow/tfjs-core";
import { Buffer } from "node:buffer";
import { zipSync } from "fflate";
import { chromium } from "playwright-core";
import {
  defaultRunConfig,
  loadTrainedModel,
  predictProbabilities,
  type RunConfig,
  setupBackend,
} from "@webtune/core";
import {
  decodeImage,
  encodeRgbPng,
  openDataSource,
  resolveDataSource,
  rgbImage,
} from "@webtune/data";
import { buildWeb } from "@webtune/web/build";
import { CHROMIUM, CHROMIUM_ARGS } from "@webtune/web/chromium";
import { filesSource } from "@webtune/web/files";
import { Session } from "@webtune/web/session";
import { staticHandler } from "@webtune/web/static";

const ROOT = new URL("../", import.meta.url);
const SHARED = new URL("../../shared/", import.meta.url);
const HOTDOG_MINI = new URL("datasets/hotdog-mini/", SHARED);
const SOURCE_PTH = new URL("fixtures/food101-resnet18/food101-64-resnet18.pth", SHARED);
/** A folder to keep the page's screenshots in (to look at them), from the environment. */
const SCREENSHOTS = Deno.env.get("WEBTUNE_WEB_SCREENSHOTS");

function exists(path: string | URL): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const sharedPresent = exists(SHARED);
const chromiumPresent = exists(CHROMIUM);
if (!sharedPresent) {
  console.log(`web_test: skipped, ../shared is absent (${SHARED.pathname}): no data or weights`);
}
if (!chromiumPresent) {
  console.log(`web_test: skipped, ${CHROMIUM} is absent (apt-get install chromium)`);
}

/** What the test reads of `window.webtune` (see web/hook.ts). */
interface Hook {
  state: string;
  error?: string;
  busy: number;
  backend?: { backend: string; description: string; isFallbackAdapter: boolean };
  fastKernels?: boolean;
  data?: { classes: string[]; train: number[]; test: number[] };
  source?: { name: string; fc: string };
  history: { epoch: number; loss: number; train_acc: number; test_acc: number }[];
  batchLosses: number[];
  examplesPerSec?: number;
  predictions: { file: string; class: string; probabilities: Record<string, number> }[];
  report?: { matrix: number[][]; accuracy: number };
  numTensors(): number;
}
type Win = { webtune?: Hook };

/** The first `n` images (by name) of each class of a split, as `[path in the zip, bytes]`. */
async function pickImages(split: string, n: number): Promise<[string, string][]> {
  const picked: [string, string][] = [];
  for (const cls of ["hotdog", "not-hotdog"]) {
    const dir = new URL(`${split}/${cls}/`, HOTDOG_MINI);
    const names = [];
    for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
    names.sort();
    for (const name of names.slice(0, n)) {
      picked.push([`hotdog-mini/${split}/${cls}/${name}`, new URL(name, dir).pathname]);
    }
  }
  return picked;
}

/** The grey-level variance of a PNG screenshot (0 for a blank one). */
function greyVariance(png: Uint8Array): number {
  const d = decodeImage(png, { name: "screenshot.png" }).data;
  let sum = 0, sq = 0;
  for (let i = 0; i < d.length; i += 3) {
    const v = (d[i] + d[i + 1] + d[i + 2]) / 3;
    sum += v;
    sq += v * v;
  }
  const n = d.length / 3;
  return sq / n - (sum / n) ** 2;
}

/** How many pixels differ between two PNG screenshots of the same element. */
function pixelsChanged(before: Uint8Array, after: Uint8Array): number {
  const a = decodeImage(before, { name: "before.png" });
  const b = decodeImage(after, { name: "after.png" });
  if (a.width !== b.width || a.height !== b.height) return b.width * b.height;
  let changed = 0;
  for (let i = 0; i < a.data.length; i += 3) {
    const d = Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) +
      Math.abs(a.data[i + 2] - b.data[i + 2]);
    if (d > 30) changed++;
  }
  return changed;
}

Deno.test({
  name: "web: fine-tune in Chromium (WebGPU), page predictions = CLI predictions, no tensor leak",
  ignore: !sharedPresent || !chromiumPresent,
  async fn(t) {
    const dist = await Deno.makeTempDir({ prefix: "webtune-web-test-dist-" });
    const tmp = await Deno.makeTempDir({ prefix: "webtune-web-test-" });
    if (SCREENSHOTS) await Deno.mkdir(SCREENSHOTS, { recursive: true });
    await buildWeb({ outDir: dist });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      staticHandler(dist),
    );
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const context = await browser.newContext({
        acceptDownloads: true,
        viewport: { width: 1280, height: 900 },
      });
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(e.message));
      page.on("console", (m) => {
        if (m.type() === "error") console.log(`  [page console] ${m.text()}`);
      });
      const hook = () => page.evaluate(() => (globalThis as Win).webtune!);
      /** Waits until `pred(webtune)` holds or the page shows an error. */
      const waitFor = async (what: string, pred: string, timeout: number) => {
        const started = performance.now();
        await page.waitForFunction(
          `(() => { const w = globalThis.webtune; return w && (w.error || (${pred})); })()`,
          undefined,
          { timeout, polling: 250 },
        );
        const h = await hook();
        assertEquals(h.error, undefined, `${what}: the page shows an error: ${h.error}`);
        console.log(`  ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
        return h;
      };

      // Each step needs the ones before it: after a failure the rest are skipped rather than
      // each waiting out its timeout on a page that will not get there.
      let ok = true;
      const step = async (name: string, fn: () => Promise<void>) => {
        ok = (await t.step({ name, ignore: !ok, fn })) && ok;
      };

      await step("the page finds a WebGPU adapter", async () => {
        await page.goto(`http://127.0.0.1:${server.addr.port}/`);
        const h = await waitFor("backend", 'w.state !== "starting"', 60_000);
        assertEquals(h.state, "idle", "no WebGPU adapter in Chromium");
        assertEquals(h.backend?.backend, "webgpu");
        // webtune's own kernels on every adapter, SwiftShader included (their WGSL once made
        // SwiftShader's compiler exhaust memory: see allOf in core/kernels/kernel_util.ts).
        assertEquals(h.fastKernels, true, "the page does not use webtune's kernels");
        const text = await page.locator("#adapter").textContent();
        console.log(`  adapter: ${text}`);
        assert(text?.includes("webgpu"), `adapter line: ${text}`);
      });

      const CHARTS = ["#epoch-chart", "#batch-chart"];
      /** Screenshots of the charts before training: their axes without data. */
      const emptyCharts = new Map<string, Uint8Array>();
      const trainFiles = await pickImages("train", 4);
      const testFiles = await pickImages("test", 2);
      await step("a zip and a .pth through the file inputs", async () => {
        const entries: Record<string, Uint8Array> = {};
        for (const [name, path] of [...trainFiles, ...testFiles]) {
          entries[name] = await Deno.readFile(path);
        }
        await page.setInputFiles("#data-zip", {
          name: "hotdog-tiny.zip",
          mimeType: "application/zip",
          buffer: Buffer.from(zipSync(entries, { level: 0 })),
        });
        const h = await waitFor("data", "w.data && w.busy === 0", 60_000);
        assertEquals(h.data!.classes, ["hotdog", "not-hotdog"]);
        assertEquals(h.data!.train, [4, 4]);
        assertEquals(h.data!.test, [2, 2]);
        assert(await page.locator("#samples-figure").isVisible(), "no sample grid");

        await page.setInputFiles("#weights-file", SOURCE_PTH.pathname);
        const s = await waitFor("weights", "w.source && w.busy === 0", 120_000);
        assert(s.source!.fc.startsWith("fc: Linear(in_features=512, "), s.source!.fc);
        const status = await page.locator("#weights-status").textContent();
        assert(status?.includes(s.source!.fc), `weights status: ${status}`);
      });

      await step("one short epoch trains and draws the charts", async () => {
        await page.fill("#image-size", "64");
        await page.fill("#batch-size", "4");
        await page.fill("#epochs", "1");
        for (const id of CHARTS) emptyCharts.set(id, await page.locator(id).screenshot());
        await page.click("#start");
        const h = await waitFor("training", 'w.state === "trained"', 600_000);
        assertEquals(h.history.length, 1);
        assertEquals(h.batchLosses.length, 2, "8 images in batches of 4");
        const m = h.history[0];
        assert(Number.isFinite(m.loss) && m.loss > 0, `loss ${m.loss}`);
        assert(m.test_acc >= 0 && m.test_acc <= 1, `test acc ${m.test_acc}`);
        console.log(
          `  epoch 1: loss ${m.loss.toFixed(4)}, train acc ${m.train_acc}, test acc ${m.test_acc}` +
            `, ${h.examplesPerSec?.toFixed(2)} examples/s`,
        );
        // One dot per epoch and series in the SVG; the metrics table shows the epoch.
        assertEquals(await page.locator("#epoch-chart svg circle").count(), 3);
        assertEquals(await page.locator("#metrics tbody tr").count(), 1);
        assert((await page.locator("#train-status").textContent())?.includes("test accuracy"));
      });

      let pagePredictions: Hook["predictions"] = [];
      await step("predictions and the confusion matrix", async () => {
        await page.setInputFiles("#predict-file", testFiles.map(([, path]) => path));
        const h = await waitFor("predict", "w.predictions.length === 4 && w.busy === 0", 120_000);
        pagePredictions = h.predictions;
        assertEquals(
          pagePredictions.map((p) => p.file),
          testFiles.map(([, p]) => p.split("/").at(-1)),
        );
        assertEquals(await page.locator("#predictions li").count(), 4);

        await page.click("#evaluate");
        const r = await waitFor("confusion", "w.report && w.busy === 0", 120_000);
        const total = r.report!.matrix.flat().reduce((a, b) => a + b, 0);
        assertEquals(total, 4);
        // The same model on the same test batches in eval mode as the epoch's test accuracy.
        assertEquals(r.report!.accuracy, r.history[0].test_acc);
        assertEquals(await page.locator("#confusion tbody tr").count(), 2);
      });

      await step("downloaded model: the CLI predicts what the page predicted", async () => {
        for (
          const [button, name] of [["#download-weights", "model.safetensors"], [
            "#download-config",
            "config.json",
          ]]
        ) {
          const [download] = await Promise.all([page.waitForEvent("download"), page.click(button)]);
          assertEquals(download.suggestedFilename(), name);
          await download.saveAs(`${tmp}/${name}`);
        }
        const config = JSON.parse(await Deno.readTextFile(`${tmp}/config.json`));
        assertEquals(config.class_names, ["hotdog", "not-hotdog"]);
        assertEquals(config.image_size, 64);

        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "cli/predict.ts",
            "--model",
            tmp,
            "--json",
            ...testFiles.map(([, p]) => p),
          ],
          cwd: ROOT.pathname,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stderr = new TextDecoder().decode(out.stderr);
        assert(out.success, `deno task predict failed:\n${stderr}`);
        const cli: Hook["predictions"] = JSON.parse(new TextDecoder().decode(out.stdout));
        assertEquals(cli.length, 4);
        // Compared as log-probabilities: a confident prediction's probabilities are 1 and ~0 on
        // both sides, so their difference says nothing; ln p of the unlikely class is the logit
        // margin, which still differs if the page and the CLI compute differently.
        let maxLogDiff = 0;
        cli.forEach((c, i) => {
          const p = pagePredictions[i];
          assertEquals(c.class, p.class, `${p.file}: class on the page vs the CLI`);
          for (const [cls, prob] of Object.entries(c.probabilities)) {
            const onPage = p.probabilities[cls];
            assertGreater(Math.min(prob, onPage), 0, `${p.file}: ${cls} underflowed to 0`);
            maxLogDiff = Math.max(maxLogDiff, Math.abs(Math.log(prob) - Math.log(onPage)));
          }
        });
        console.log(`  page vs CLI: max |Δ ln probability| = ${maxLogDiff.toExponential(2)}`);
        assertLess(maxLogDiff, 1e-4);
      });

      await step("the charts are drawn (screenshot) and a phone-sized page fits", async () => {
        for (const id of CHARTS) {
          const png = new Uint8Array(await page.locator(id).screenshot());
          const variance = greyVariance(png);
          const drawn = pixelsChanged(new Uint8Array(emptyCharts.get(id)!), png);
          console.log(`  ${id}: grey variance ${variance.toFixed(1)}, ${drawn} pixels drawn`);
          assertGreater(variance, 5, `${id}: blank (variance ${variance})`);
          // Against the empty axes from before training: one epoch is a dot per curve.
          assertGreater(drawn, 30, `${id}: no points drawn`);
        }
        await page.setViewportSize({ width: 390, height: 844 });
        const overflow = await page.evaluate(() => {
          const root = (globalThis as unknown as {
            document: { documentElement: { scrollWidth: number; clientWidth: number } };
          }).document.documentElement;
          return root.scrollWidth - root.clientWidth;
        });
        if (SCREENSHOTS) {
          await Deno.writeFile(
            `${SCREENSHOTS}/phone.png`,
            await page.screenshot({ fullPage: true }),
          );
        }
        assertLess(overflow, 1, `the page scrolls sideways on a phone by ${overflow} px`);
        await page.setViewportSize({ width: 1280, height: 900 });
      });

      await step("training again leaves no tensors behind", async () => {
        const before = await page.evaluate(() => (globalThis as Win).webtune!.numTensors());
        assertEquals(await page.locator("#start").textContent(), "Continue");
        await page.click("#start");
        const h = await waitFor(
          "second training",
          'w.state === "trained" && w.history.length === 2',
          600_000,
        );
        assertEquals(h.batchLosses.length, 4);
        const after = await page.evaluate(() => (globalThis as Win).webtune!.numTensors());
        console.log(`  tensors: ${before} after the first training, ${after} after the second`);
        assertEquals(after, before);
      });

      if (SCREENSHOTS) {
        await Deno.writeFile(
          `${SCREENSHOTS}/desktop.png`,
          await page.screenshot({ fullPage: true }),
        );
      }
      assertEquals(pageErrors, [], "uncaught errors in the page");
    } finally {
      await browser.close();
      await server.shutdown();
      await Deno.remove(dist, { recursive: true });
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("web: a picked or dropped folder of Files reads like a directory", async () => {
  const png = encodeRgbPng(rgbImage(4, 4));
  const file = (name: string) =>
    new File([png as Uint8Array<ArrayBuffer>], name, { type: "image/png" });
  const paths = [
    "pics/train/cats/a.png",
    "pics/train/cats/b.png",
    "pics/train/dogs/c.png",
    "pics/test/cats/d.png",
    "pics/test/dogs/e.png",
    "pics/test/dogs/notes.txt",
  ];
  const source = filesSource("pics", paths.map((path) => ({ path, file: file(path) })));
  assertEquals((await source.readDir("")).map((e) => e.name), ["pics"]);
  assertEquals((await source.readDir("pics/train/")).map((e) => [e.name, e.isDirectory]), [
    ["cats", true],
    ["dogs", true],
  ]);
  assertEquals(await source.readFile("pics/train/cats/a.png"), png);
  await assertRejects(() => source.readDir("pics/val"));
  await assertRejects(() => source.readFile("pics/train/cats/z.png"));

  // The same layout rules as a directory or a zip: one top folder, train/ and test/.
  const data = await openDataSource(source);
  assertEquals(data.classes, ["cats", "dogs"]);
  assertEquals(Array.from(data.train.labels), [0, 0, 1]);
  assertEquals(Array.from(data.test.labels), [0, 1]);
  assertEquals(data.test.ignored.map((s) => s.path), ["test/dogs/notes.txt"]);
});

Deno.test("web: the static server serves the bundle's files and nothing outside it", async () => {
  const root = await Deno.makeTempDir({ prefix: "webtune-static-" });
  try {
    await Deno.writeTextFile(`${root}/index.html`, "<p>hi</p>");
    await Deno.writeTextFile(`${root}/main.js`, "export {};");
    const serve = staticHandler(root);
    const get = (path: string, method = "GET") =>
      serve(new Request(`http://127.0.0.1${path}`, { method }));
    const index = await get("/");
    assertEquals(index.status, 200);
    assertEquals(index.headers.get("content-type"), "text/html; charset=utf-8");
    assertEquals(await index.text(), "<p>hi</p>");
    const js = await get("/main.js");
    assertEquals(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    await js.body?.cancel();
    for (const path of ["/missing.js", "/../etc/passwd", "/%2e%2e/etc/passwd", "/a%5c..%5cb"]) {
      const r = await get(path);
      assertEquals(r.status, 404, path);
      await r.body?.cancel();
    }
    assertEquals((await get("/", "POST")).status, 405);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("web: the page's session stops, continues, and exports what the CLI reads", async () => {
  await setupBackend();
  const session = new Session();
  session.setData(await resolveDataSource("synthetic", { synthetic: { perClass: 2 } }));
  const config: RunConfig = {
    ...defaultRunConfig("scratch"),
    imageSize: 32,
    batchSize: 2,
    epochs: 1,
  };
  // Stop after the first batch: the model keeps its update, no epoch is recorded.
  const stopped = await session.train(config, (e) => {
    if (e.type === "batch-end") session.stop();
  });
  assert(stopped.stopped);
  assertEquals(session.history.length, 0);
  assert(session.continues(config));
  const tensors = tf.memory().numTensors;

  // Start again: the same run trains its epoch again, to the end this time.
  const finished = await session.train(config, () => {});
  assertEquals(finished.epochs.map((m) => m.epoch), [1]);
  assertEquals(session.targetEpochs, 1);
  assertEquals(tf.memory().numTensors, tensors, "tensors left behind by training");

  // A changed setting starts a new run; the old model is disposed.
  assert(!session.continues({ ...config, lr: 0.1 }));

  const report = await session.evaluate();
  assertEquals(report.matrix.flat().reduce((a, b) => a + b, 0), 4);
  const files = await session.modelFiles();
  const trained = loadTrainedModel(files.configJson, files.weights, "model.safetensors");
  try {
    assertEquals(trained.config.class_names, ["circles", "stripes"]);
    assertEquals(trained.config.image_size, 32);
    const image = await session.data!.test.load(0);
    const [fromPage] = await session.predict([{ name: "a", image }]);
    const [fromFiles] = await predictProbabilities(trained.model, [image], trained.config);
    assertLess(Math.abs(fromPage.probabilities.circles - fromFiles[0]), 1e-6);
  } finally {
    trained.model.dispose();
    session.discardRun();
  }
  assertLess(tf.memory().numTensors, tensors, "the run's tensors were not freed");
});
