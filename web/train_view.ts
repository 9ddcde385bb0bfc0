/**
 * Section 4, training: Start / Stop / New run, a progress bar, examples per second, and the live
 * charts, all drawn from core's `TrainEvent`s.
 *
 * @module
 */
import type { EpochMetrics, TrainEvent } from "@webtune/core";
import type { SkippedFile } from "@webtune/data";
import { drawBatchChart, drawEpochChart } from "./charts.ts";
import { byId, el, percent } from "./dom.ts";
import type { ModelSettings } from "./model_view.ts";
import type { Page } from "./page.ts";

/** Wires the training section. */
export function setupTrainView(
  page: Page,
  settings: ModelSettings,
  showSkipped: (skipped: SkippedFile[]) => void,
): void {
  const { session, hook } = page;
  const start = byId("start", HTMLButtonElement);
  const stop = byId("stop", HTMLButtonElement);
  const reset = byId("reset", HTMLButtonElement);
  const progress = byId("progress", HTMLProgressElement);
  const status = byId("train-status", HTMLElement);
  const hint = byId("start-hint", HTMLElement);
  const epochChart = byId("epoch-chart", HTMLElement);
  const batchChart = byId("batch-chart", HTMLCanvasElement);
  const metrics = byId("metrics", HTMLTableElement);
  /** Where each epoch starts in `hook.batchLosses`, for the batch chart's epoch marks. */
  let epochStarts: number[] = [];

  const redraw = () => {
    drawEpochChart(epochChart, hook.history);
    drawBatchChart(batchChart, hook.batchLosses, epochStarts);
    metrics.tBodies[0].replaceChildren(...hook.history.map(metricsRow));
    metrics.hidden = hook.history.length === 0;
  };
  const clear = () => {
    hook.history = [];
    hook.batchLosses = [];
    hook.predictions = [];
    hook.report = undefined;
    epochStarts = [];
    progress.value = 0;
    redraw();
  };

  // Per-call bookkeeping for progress and the live examples/s.
  let first = 1, last = 1, epochT0 = 0, epochExamples = 0;
  const onEvent = (e: TrainEvent) => {
    switch (e.type) {
      case "run-start": {
        const run = session.run!;
        showSkipped([...run.train.report.skipped, ...run.test.report.skipped]);
        hook.state = "training";
        first = e.startEpoch;
        last = e.epochs;
        page.refresh();
        break;
      }
      case "epoch-start":
        epochStarts.push(hook.batchLosses.length);
        epochT0 = performance.now();
        epochExamples = 0;
        status.textContent = `Epoch ${e.epoch}/${e.epochs}: training…`;
        break;
      case "batch-end": {
        hook.batchLosses.push(e.loss);
        epochExamples += e.examples;
        const rate = epochExamples / ((performance.now() - epochT0) / 1000);
        progress.value = ((e.epoch - first) * e.batches + e.batch) /
          ((last - first + 1) * e.batches);
        status.textContent = `Epoch ${e.epoch}/${last}, batch ${e.batch}/${e.batches}: ` +
          `loss ${e.loss.toFixed(3)}, ${rate.toFixed(1)} examples/s`;
        drawBatchChart(batchChart, hook.batchLosses, epochStarts);
        break;
      }
      case "epoch-end":
        hook.history = [...hook.history, e.metrics];
        redraw();
        break;
      case "stopped":
        status.textContent =
          `Stopped in epoch ${e.epoch} after batch ${e.batch}. The model keeps ` +
          `what it learnt (the unfinished epoch is not counted); Start continues.`;
        break;
      case "run-end": {
        const m = e.epochs.at(-1);
        status.textContent = `Done: ${e.epochs.length} epochs` +
          (m ? `, test accuracy ${percent(m.test_acc)}` : "") +
          `, ${e.examplesPerSec.toFixed(1)} training examples/s.`;
        break;
      }
    }
  };

  start.addEventListener("click", () =>
    page.act(async () => {
      const config = settings.config(true);
      const continuing = session.continues(config);
      if (!continuing) clear();
      hook.state = continuing ? "training" : "preparing";
      status.textContent = continuing ? "Continuing…" : "Decoding the images…";
      page.refresh();
      try {
        const result = await session.train(config, onEvent, (split, done, total) => {
          status.textContent = `Decoding the ${split} images: ${done}/${total}`;
        });
        hook.history = [...result.epochs];
        hook.examplesPerSec = result.examplesPerSec;
        hook.state = result.stopped ? "stopped" : "trained";
      } catch (e) {
        hook.state = session.run ? "stopped" : "idle";
        status.textContent = "";
        throw e;
      }
    }));
  stop.addEventListener("click", () => {
    session.stop();
    stop.disabled = true;
    status.textContent = "Stopping after this batch…";
  });
  reset.addEventListener("click", () => {
    session.discardRun();
    clear();
    hook.state = "idle";
    status.textContent = "The model was discarded; Start begins a new run.";
    page.refresh();
  });
  // The Start button says whether it would continue, which depends on the settings.
  byId("hyper", HTMLFieldSetElement).addEventListener("input", () => page.refresh());

  page.onRefresh(() => {
    const preparing = hook.state === "preparing";
    const busy = session.training || preparing;
    // Changing the data or source weights drops the run; the charts go with it.
    if (!session.run && !preparing && (hook.history.length || hook.batchLosses.length)) clear();
    // Say what Start is waiting for rather than leaving a grey button unexplained.
    const missing = [
      page.backendReady() ? "" : "a backend (section 1)",
      session.data ? "" : "a data set (section 2)",
      settings.task() === "scratch" || session.source ? "" : "a source checkpoint (section 3)",
    ].filter(Boolean);
    const ready = missing.length === 0;
    hint.textContent = ready || busy ? "" : `Start needs ${missing.join(", ")}.`;
    start.disabled = busy || !ready;
    stop.disabled = !session.training;
    reset.disabled = busy || !session.run;
    let continues = false;
    try {
      continues = session.continues(settings.config());
    } catch {
      // An invalid field: Start will say which when pressed.
    }
    start.textContent = continues ? "Continue" : "Start";
  });
  redraw();
}

function metricsRow(m: EpochMetrics): HTMLTableRowElement {
  const row = el("tr");
  row.append(
    el("td", String(m.epoch)),
    el("td", m.loss.toFixed(4)),
    el("td", percent(m.train_acc)),
    el("td", percent(m.test_acc)),
    el("td", m.examples_per_sec.toFixed(1)),
    el("td", m.seconds.toFixed(1)),
  );
  return row;
}
