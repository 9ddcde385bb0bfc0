/**
 * Section 5, using the model: class probabilities of dropped images or a camera frame, the
 * confusion matrix on the test split, and the model's files to download.
 *
 * @module
 */
import type { ClassReport } from "@webtune/core";
import { decodeImage } from "@webtune/data";
import { type Camera, startCamera } from "./camera.ts";
import { byId, download, dropZone, el, percent } from "./dom.ts";
import { droppedFiles } from "./drop.ts";
import { fileBytes } from "./files.ts";
import type { Page } from "./page.ts";
import { currentPredictor, openedModel, type Predictor } from "./predictor.ts";
import type { Prediction } from "./session.ts";

/** Wires the "use the model" section. */
export function setupUseView(page: Page): void {
  const { session, hook } = page;
  const input = byId("predict-file", HTMLInputElement);
  const cameraOn = byId("camera-on", HTMLButtonElement);
  const cameraOff = byId("camera-off", HTMLButtonElement);
  const capture = byId("capture", HTMLButtonElement);
  const cameraBox = byId("camera-box", HTMLElement);
  const video = byId("video", HTMLVideoElement);
  const list = byId("predictions", HTMLUListElement);
  const evaluate = byId("evaluate", HTMLButtonElement);
  const confusion = byId("confusion", HTMLElement);
  const saveWeights = byId("download-weights", HTMLButtonElement);
  const saveConfig = byId("download-config", HTMLButtonElement);
  let camera: Camera | undefined;
  /** The trained run, or a model reopened from the browser's storage. */
  const predictor = (): Predictor => {
    const p = currentPredictor(session);
    if (!p) throw new Error("train a model first, or open a saved one");
    return p;
  };

  /** The current model's files, or after a lost device the last complete epoch's. */
  const modelFiles = () => currentPredictor(session) ? predictor().files() : session.modelFiles();

  const show = (predictions: Prediction[]) => {
    hook.predictions = predictions;
    list.replaceChildren(...predictions.map(predictionItem));
  };
  const classify = (files: File[]) =>
    page.act(async () => {
      hook.predictions = [];
      // The CLI's decoder, so the page and `deno task predict` see the same pixels.
      const images = await Promise.all(files.map(async (file) => ({
        name: file.name,
        image: decodeImage(await fileBytes(file), { name: file.name }),
      })));
      show(await predictor().predict(images));
    });

  input.addEventListener("change", () => {
    if (input.files?.length) classify(Array.from(input.files));
  });
  dropZone(byId("predict-drop", HTMLElement), (transfer) => {
    const dropped = droppedFiles(transfer);
    dropped.then((files) => {
      if (files.length && !input.disabled) classify(files.map((f) => f.file));
    });
  });
  cameraOn.addEventListener("click", () =>
    page.act(async () => {
      camera = await startCamera(video);
      cameraBox.hidden = false;
      capture.focus();
    }));
  cameraOff.addEventListener("click", () => {
    camera?.stop();
    camera = undefined;
    cameraBox.hidden = true;
    cameraOn.focus();
  });
  capture.addEventListener("click", () =>
    page.act(async () => {
      if (!camera) return;
      show(await predictor().predict([{ name: "camera frame", image: camera.frame() }]));
    }));
  evaluate.addEventListener("click", () =>
    page.act(async () => {
      hook.report = undefined;
      const report = await session.evaluate();
      hook.report = report;
      confusion.replaceChildren(...reportView(report, session.run!.classes));
    }));
  saveWeights.addEventListener("click", () =>
    page.act(async () => {
      const { weights } = await modelFiles();
      download("model.safetensors", weights, "application/octet-stream");
    }));
  saveConfig.addEventListener("click", () =>
    page.act(async () => {
      const { configJson } = await modelFiles();
      download("config.json", configJson, "application/json");
    }));

  page.onRefresh(() => {
    // Using the model while it trains would read weights between two updates.
    const off = !currentPredictor(session) || !page.backendReady();
    for (const c of [input, cameraOn, capture]) c.disabled = off;
    // After a lost GPU device the last complete epoch's model is still there to download.
    const saved = session.lastEpochFiles !== undefined && !session.training;
    for (const c of [saveWeights, saveConfig]) c.disabled = off && !saved;
    // A reopened model has no test split to evaluate on.
    evaluate.disabled = off || !session.run || openedModel() !== undefined;
    if (!currentPredictor(session)) {
      list.replaceChildren();
      confusion.replaceChildren();
    }
  });
}

function predictionItem(p: Prediction): HTMLLIElement {
  const item = el("li");
  const best = p.probabilities[p.class];
  item.append(el("strong", `${p.file}: ${p.class} (${percent(best)})`));
  for (const [name, prob] of Object.entries(p.probabilities)) {
    const label = el("label", `${name} `);
    const meter = el("meter", "", { min: "0", max: "1", value: String(prob) });
    label.append(meter, ` ${prob.toFixed(4)}`);
    item.append(label);
  }
  return item;
}

/** The confusion matrix (rows: true class, columns: predicted) and per-class precision/recall. */
function reportView(report: ClassReport, classes: readonly string[]): HTMLElement[] {
  const table = el("table");
  table.append(el("caption", `Test split: accuracy ${percent(report.accuracy)}`));
  const head = el("tr");
  head.append(el("th", "true \\ predicted", { scope: "col" }));
  for (const c of classes) head.append(el("th", c, { scope: "col" }));
  head.append(
    el("th", "precision", { scope: "col" }),
    el("th", "recall", { scope: "col" }),
    el("th", "support", { scope: "col" }),
  );
  table.append(el("thead"));
  table.tHead!.append(head);
  const body = el("tbody");
  report.matrix.forEach((row, i) => {
    const tr = el("tr");
    tr.append(el("th", classes[i], { scope: "row" }));
    row.forEach((n, j) => tr.append(el("td", String(n), i === j ? { class: "diag" } : {})));
    const pc = report.perClass[i];
    tr.append(
      el("td", percent(pc.precision)),
      el("td", percent(pc.recall)),
      el("td", String(pc.support)),
    );
    body.append(tr);
  });
  table.append(body);
  return [table];
}
