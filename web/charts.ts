/**
 * The live training charts: the chapter's per-epoch curves (core's `trainingCurvesSvg`, the same
 * picture the CLI writes as `curves.svg`) and the loss of every batch (a canvas, since a run has
 * far more batches than an SVG axis can label one by one).
 *
 * @module
 */
import { type EpochMetrics, trainingCurvesSvg } from "@webtune/core";

/** Draws the epoch curves into `container` (SVG markup made by core from numbers only). */
export function drawEpochChart(container: HTMLElement, history: readonly EpochMetrics[]): void {
  container.innerHTML = trainingCurvesSvg([...history]);
  const svg = container.querySelector("svg");
  if (svg) {
    // Let CSS size it; the viewBox keeps its proportions on a phone.
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", describeEpochs(history));
  }
}

/** One sentence of the latest numbers, for screen readers. */
function describeEpochs(history: readonly EpochMetrics[]): string {
  const last = history.at(-1);
  if (!last) return "no epoch finished yet";
  return `after epoch ${last.epoch}: loss ${last.loss.toFixed(3)}, train acc ${
    last.train_acc.toFixed(3)
  }, test acc ${last.test_acc.toFixed(3)}`;
}

/**
 * Draws the per-batch losses as a line, with a faint vertical line where each epoch starts
 * (`epochStarts` holds indices into `losses`).
 */
export function drawBatchChart(
  canvas: HTMLCanvasElement,
  losses: readonly number[],
  epochStarts: readonly number[],
): void {
  const ratio = globalThis.devicePixelRatio || 1;
  const cssWidth = canvas.clientWidth || 480;
  const cssHeight = Math.round(cssWidth * 2 / 3);
  canvas.width = Math.round(cssWidth * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, cssWidth, cssHeight);
  const left = 44, right = 12, top = 12, bottom = 30;
  const w = cssWidth - left - right, h = cssHeight - top - bottom;
  const finite = losses.filter(Number.isFinite);
  // Before the first batch, an axis up to 1 rather than one scaled to nothing.
  const yMax = finite.length ? niceCeil(Math.max(1e-6, ...finite)) : 1;
  const n = Math.max(2, losses.length);
  const x = (i: number) => left + (i / (n - 1)) * w;
  const y = (v: number) => top + (1 - Math.min(v, yMax) / yMax) * h;

  ctx.font = "11px sans-serif";
  ctx.strokeStyle = "#ddd";
  ctx.fillStyle = "#333";
  ctx.textAlign = "right";
  for (let k = 0; k <= 4; k++) {
    const v = (yMax * k) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y(v));
    ctx.lineTo(left + w, y(v));
    ctx.stroke();
    ctx.fillText(String(+v.toPrecision(3)), left - 4, y(v) + 4);
  }
  ctx.strokeStyle = "#bbb";
  ctx.textAlign = "center";
  epochStarts.forEach((start, e) => {
    ctx.beginPath();
    ctx.moveTo(x(start), top);
    ctx.lineTo(x(start), top + h);
    ctx.stroke();
    ctx.fillText(`epoch ${e + 1}`, Math.min(x(start) + 24, left + w - 24), top + h + 14);
  });
  ctx.fillText("batch", left + w / 2, cssHeight - 4);

  ctx.strokeStyle = "#1f77b4";
  ctx.fillStyle = "#1f77b4";
  ctx.lineWidth = 2;
  ctx.beginPath();
  losses.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i), y(v)) : ctx.lineTo(x(i), y(v))));
  ctx.stroke();
  // Dots too, so that a run of one or two batches still shows.
  losses.forEach((v, i) => {
    ctx.beginPath();
    ctx.arc(x(i), y(v), 2.5, 0, 2 * Math.PI);
    ctx.fill();
  });
  canvas.setAttribute(
    "aria-label",
    losses.length
      ? `loss of ${losses.length} batches, last ${losses.at(-1)!.toFixed(3)}`
      : "no batch trained yet",
  );
}

/** The smallest of 1, 2, 5 × 10^k at or above `v`, for a tidy axis. */
function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
