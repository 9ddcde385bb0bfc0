/**
 * The "Find a learning rate" button: `deno task lr-find` in the page — fastai's `lr_find` on a
 * throw-away copy of the run the settings describe (core's `lrFindOnModel`, the sweep's fastai
 * defaults from `LR_FIND_PARAMS`), drawn with core's `lrFindSvg` (the CLI's `lr_find.svg`).
 * The run being trained is left alone.
 *
 * @module
 */
import {
  LR_FIND_PARAMS,
  lrFindInputs,
  lrFindOnModel,
  type LrFindResult,
  lrFindSvg,
  prepareRun,
} from "@webtune/core";
import { byId } from "./dom.ts";
import type { ModelSettings } from "./model_view.ts";
import type { Page } from "./page.ts";

/** Wires the lr-find button (`#lr-find`), its status line and chart. */
export function setupLrFindView(page: Page, settings: ModelSettings): void {
  const { session } = page;
  const button = byId("lr-find", HTMLButtonElement);
  const status = byId("lr-find-status", HTMLElement);
  const chart = byId("lr-find-chart", HTMLElement);
  let sweeping = false;

  button.addEventListener("click", () =>
    page.act(async () => {
      const config = settings.config(true);
      if (!session.data) throw new Error("choose a data set first");
      if (config.task === "finetune" && !session.source) {
        throw new Error("choose a source checkpoint (.pth or .safetensors), or train from scratch");
      }
      sweeping = true;
      page.refresh();
      status.textContent = "Decoding the images…";
      // A model of its own: the sweep trains it until the loss diverges.
      const run = await prepareRun(config, session.data, {
        adapter: session.adapter,
        source: config.task === "finetune" ? session.source!.weights : undefined,
      });
      let result: LrFindResult;
      try {
        run.recipe.startEpoch(1, 1); // head only during --freeze-epochs, as fastai sweeps
        result = await lrFindOnModel({
          startLr: LR_FIND_PARAMS.startLr.default,
          endLr: LR_FIND_PARAMS.endLr.default,
          numIt: LR_FIND_PARAMS.numIt.default,
          ...lrFindInputs(run),
          onStep: ({ iteration, lr }) => {
            status.textContent = `Batch ${iteration + 1}/${LR_FIND_PARAMS.numIt.default}: ` +
              `lr ${lr.toExponential(1)}`;
          },
        });
      } finally {
        run.dispose();
        sweeping = false;
      }
      chart.innerHTML = lrFindSvg(result, { title: "lr-find" });
      chart.hidden = false;
      chart.querySelector("svg")?.setAttribute("role", "img");
      const s = result.suggestions;
      status.textContent = s
        ? `Suggested learning rate: ${s.steep.lr.toExponential(1)} (steep), ` +
          `${s.valley.lr.toExponential(1)} (valley), for this batch size.`
        : "Too few batches for a suggestion.";
    }));

  page.onRefresh(() => {
    button.disabled = sweeping || session.training || !page.backendReady() || !session.data;
  });
}
