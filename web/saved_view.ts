/**
 * Section 6, what the browser keeps: every trained model is saved (with its config and
 * metrics) when a training call ends, listed to reopen, download or delete, and the newest is
 * reopened after a reload. The data zip and the source weights last used are kept too, and put
 * back into their file inputs on reload, so the sections that read them do so unchanged.
 *
 * @module
 */
import type { PreparedRun } from "@webtune/core";
import { zipSync } from "fflate";
import { byId, download, el, percent } from "./dom.ts";
import type { Page } from "./page.ts";
import { openedModel, openModel, setOpenedModel } from "./predictor.ts";
import {
  deleteModel,
  getModel,
  getState,
  listModels,
  putState,
  type SavedModel,
  saveModel,
  storageLine,
} from "./store.ts";

/** What the browser test reads (on `window.webtune.saved`). */
export interface SavedHook {
  models: { id: string; title: string; epochs: number }[];
  /** The title of the reopened model, if one is open. */
  opened?: string;
  /** The storage line as shown. */
  storage?: string;
  /** True once the saved data, weights and model (if any) have been put back. */
  restored: boolean;
}

/** Wires section 6 and the keeping of inputs; restores what a previous visit left. */
export function setupSavedView(page: Page): void {
  const { session } = page;
  const hook = page.hook;
  const list = byId("saved-models", HTMLUListElement);
  const usage = byId("storage-use", HTMLElement);
  const openedLine = byId("opened-model", HTMLElement);
  const dataInput = byId("data-zip", HTMLInputElement);
  const weightsInput = byId("weights-file", HTMLInputElement);
  const state: SavedHook = { models: [], restored: false };
  hook.saved = state;

  /** Saved model ids of this visit's runs: continuing a run updates its entry. */
  const ids = new WeakMap<PreparedRun, string>();
  let savedEpochs = new WeakMap<PreparedRun, number>();
  /** Set while an input is refilled from storage, so it is not stored again. */
  let restoring = false;

  const show = async () => {
    const models = await listModels();
    state.models = models.map((m) => ({ id: m.id, title: m.title, epochs: m.history.length }));
    list.replaceChildren(...models.map(item));
    if (!models.length) list.append(el("li", "No saved models yet: a trained model appears here."));
    state.storage = await storageLine();
    usage.textContent = state.storage ? `Storage: ${state.storage}.` : "";
    const opened = openedModel();
    state.opened = opened?.title;
    openedLine.textContent = opened ? `Using the saved model “${opened.title}”.` : "";
  };

  const open = (saved: SavedModel) => {
    setOpenedModel(openModel(saved.id, saved.title, saved));
    hook.saved!.opened = saved.title;
  };

  const item = (m: SavedModel): HTMLLIElement => {
    const li = el("li");
    const when = new Date(m.savedAt).toLocaleString();
    li.append(el("strong", m.title), el("span", ` saved ${when} `, { class: "muted" }));
    const row = el("span", "", { class: "row" });
    const button = (text: string, label: string, action: () => Promise<void>) => {
      const b = el("button", text, { type: "button", "aria-label": `${label} ${m.title}` });
      b.addEventListener("click", () => page.act(action));
      row.append(b);
    };
    button("Open", "open", async () => {
      if (!page.backendReady()) throw new Error("choose a backend (section 1) first");
      const saved = await getModel(m.id);
      if (!saved) throw new Error(`${m.title}: no longer in the browser's storage`);
      open(saved);
      await show();
    });
    button("Download", "download", () => {
      // The CLI's run-directory files in one zip: unzip into DIR, then `predict --model DIR`.
      download(
        `${fileStem(m.title)}.zip`,
        // Stored, not deflated: float32 weights barely compress, and deflating 45 MB would
        // hold up the page for seconds.
        zipSync({
          "model.safetensors": m.weights,
          "config.json": new TextEncoder().encode(m.configJson),
        }, { level: 0 }),
        "application/zip",
      );
      return Promise.resolve();
    });
    button("Delete", "delete", async () => {
      await deleteModel(m.id);
      if (openedModel()?.id === m.id) setOpenedModel(undefined);
      await show();
    });
    li.append(row);
    return li;
  };

  /** Saves the current run after a training call, if it learnt anything new since. */
  const autosave = () => {
    const run = session.run;
    if (!run || session.training || session.history.length === 0) return;
    if (savedEpochs.get(run) === session.history.length) return;
    savedEpochs.set(run, session.history.length);
    let id = ids.get(run);
    if (!id) ids.set(run, id = `model-${Date.now().toString(36)}`);
    const history = [...session.history];
    const last = history.at(-1)!;
    const title = `${run.classes.join(", ")} · ${history.length} epoch${
      history.length > 1 ? "s" : ""
    } · test acc ${percent(last.test_acc)}`;
    page.act(async () => {
      const { weights, configJson } = await session.modelFiles();
      try {
        await saveModel({
          id: id!,
          title,
          savedAt: Date.now(),
          configJson,
          weights,
          history,
          classes: [...run.classes],
          data: session.data?.description ?? "",
        });
      } catch (e) {
        // Not saved: a later training call tries again.
        savedEpochs = new WeakMap();
        throw e;
      } finally {
        await show();
      }
    });
  };

  page.onRefresh(() => {
    // Training a new model: section 5 uses it rather than a reopened one.
    if (session.training && openedModel()) {
      setOpenedModel(undefined);
      openedLine.textContent = "";
      state.opened = undefined;
    }
    autosave();
    if (pendingModel && page.backendReady()) {
      const saved = pendingModel;
      pendingModel = undefined;
      page.act(async () => {
        if (!session.run && !openedModel()) open(saved);
        await show();
        state.restored = true;
      });
    }
  });

  // Keep the data zip and the source weights chosen (picked, dropped onto the input, fetched
  // by URL, or built in the page: all pass through these inputs).
  const keep = (input: HTMLInputElement, store: (file: File) => Promise<unknown>) =>
    input.addEventListener("change", () => {
      const file = input.files?.[0];
      if (file && !restoring) page.act(async () => void await store(file).finally(show));
    });
  keep(dataInput, (file) => putState("data", file));
  keep(
    weightsInput,
    async (file) =>
      putState("source", { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) }),
  );

  const refill = (input: HTMLInputElement, file: File) => {
    const transfer = new DataTransfer();
    transfer.items.add(file);
    input.files = transfer.files;
    restoring = true;
    try {
      input.dispatchEvent(new Event("change"));
    } finally {
      restoring = false;
    }
  };

  let pendingModel: SavedModel | undefined;
  page.act(async () => {
    const [data, source, models] = await Promise.all([
      getState("data"),
      getState("source"),
      listModels(),
    ]);
    if (data) refill(dataInput, data);
    if (source) refill(weightsInput, new File([source.bytes as BlobPart], source.name));
    await show();
    // The newest model is reopened once a backend is up (it needs one to hold its weights).
    pendingModel = models[0];
    if (!pendingModel) state.restored = true;
  });
}

function fileStem(title: string): string {
  return title.replace(/[^A-Za-z0-9-]+/g, "-").replace(/^-|-$/g, "").slice(0, 60) || "model";
}
