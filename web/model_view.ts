/**
 * Section 3, model: the source checkpoint (or training from scratch) and the hyper-parameters,
 * read into core's `RunConfig` with the chapter's defaults for everything not on the page.
 *
 * @module
 */
import { defaultRunConfig, type RunConfig } from "@webtune/core";
import { countParameters, readWeights } from "@webtune/models";
import { byId, dropZone } from "./dom.ts";
import { droppedFiles } from "./drop.ts";
import { fileBytes } from "./files.ts";
import { nextFrame, type Page } from "./page.ts";
import { sourceWeights } from "./session.ts";

type Task = RunConfig["task"];

/** What the model section tells the training section. */
export interface ModelSettings {
  /** The settings as a `RunConfig`; throws if one is invalid (and focuses it if asked). */
  config(focusInvalid?: boolean): RunConfig;
  /** The chosen task (scratch needs no source weights). */
  task(): Task;
}

/** Wires the model section. */
export function setupModelView(page: Page): ModelSettings {
  const radios = Array.from(
    document.querySelectorAll<HTMLInputElement>('input[name="task"]'),
  );
  const weightsInput = byId("weights-file", HTMLInputElement);
  const status = byId("weights-status", HTMLElement);
  const lr = byId("lr", HTMLInputElement);
  const headLrMult = byId("head-lr-mult", HTMLInputElement);
  const batchSize = byId("batch-size", HTMLInputElement);
  const epochs = byId("epochs", HTMLInputElement);
  const imageSize = byId("image-size", HTMLInputElement);
  const freeze = byId("freeze-backbone", HTMLInputElement);
  const task = (): Task =>
    radios.find((r) => r.checked)?.value === "scratch" ? "scratch" : "finetune";

  const loadWeights = (file: File) =>
    page.act(async () => {
      status.textContent = `Reading ${file.name}…`;
      await nextFrame();
      try {
        // readWeights never runs anything from the file: .pth goes through an allow-list
        // unpickler, so a hostile checkpoint can only fail to load.
        const weights = readWeights(await fileBytes(file), file.name);
        const source = sourceWeights(file.name, weights);
        page.session.setSource(source);
        page.hook.source = { name: source.name, fc: source.fc };
        const millions = (countParameters(weights) / 1e6).toFixed(2);
        status.textContent = `${file.name}: ${source.fc} (${millions} M parameters)`;
      } catch (e) {
        status.textContent = "";
        throw e;
      }
    });

  weightsInput.addEventListener("change", () => {
    const file = weightsInput.files?.[0];
    if (file) loadWeights(file);
  });
  dropZone(byId("weights-drop", HTMLElement), (transfer) => {
    droppedFiles(transfer).then((files) => {
      if (files[0]) loadWeights(files[0].file);
    });
  });
  for (const radio of radios) {
    radio.addEventListener("change", () => {
      // Each task has its own chapter defaults (scratch: η 5e-4, one param group).
      lr.value = String(defaultRunConfig(task()).lr);
      page.refresh();
    });
  }

  page.onRefresh(() => {
    const locked = page.session.training || page.hook.state === "preparing";
    const scratch = task() === "scratch";
    for (const r of radios) r.disabled = locked;
    for (const input of [lr, batchSize, epochs, imageSize]) input.disabled = locked;
    weightsInput.disabled = locked || scratch;
    // Scratch trains every layer at η (param_group=False), and has no backbone to freeze.
    headLrMult.disabled = locked || scratch;
    freeze.disabled = locked || scratch;
  });

  const config = (focusInvalid = false): RunConfig => {
    const t = task();
    const num = (input: HTMLInputElement, what: string, integer: boolean, min: number) => {
      const v = input.valueAsNumber;
      if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
        if (focusInvalid) input.focus();
        throw new Error(`${what} must be ${integer ? "a whole number" : "a number"} ≥ ${min}`);
      }
      return v;
    };
    const base = defaultRunConfig(t);
    return {
      ...base,
      lr: num(lr, "the learning rate", false, 0),
      headLrMult: t === "scratch"
        ? base.headLrMult
        : num(headLrMult, "the head multiplier", false, 0),
      batchSize: num(batchSize, "the batch size", true, 1),
      epochs: num(epochs, "the epoch count", true, 1),
      imageSize: num(imageSize, "the image size", true, 32),
      freezeBackbone: t === "finetune" && freeze.checked,
    };
  };
  return { config, task };
}
