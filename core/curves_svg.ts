import { chartOpening, escapeXml, horizontalGrid } from "./svg.ts";

/** One line of a chart: a name and its y values at x = 1, 2, ... (epochs). */
export interface Series {
  name: string;
  values: number[];
  /** CSS colour. */
  color: string;
  /** Dashed line (d2l's animator draws train acc dashed, test acc dash-dotted). */
  dash?: string;
}

/** The chart palette (matplotlib's first six), shared by every webtune chart. */
export const CHART_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/**
 * Draws epoch curves as a standalone SVG, like d2l's `Animator` (x: epoch, y: value, legend).
 * Shared by the CLI (`curves.svg`) and the web page.
 *
 * @example
 * ```ts
 * import { curvesSvg } from "@webtune/core";
 * const svg = curvesSvg([{ name: "test acc", values: [0.5, 0.7], color: "green" }], {});
 * ```
 */
export function curvesSvg(
  series: Series[],
  options: {
    title?: string;
    xLabel?: string;
    width?: number;
    height?: number;
    yMax?: number;
    /**
     * Put the legend in a column this wide right of the plot (for long names, e.g. `compare`'s
     * combinations); by default it sits inside the plot's top-right corner.
     */
    legendWidth?: number;
  },
): string {
  const width = options.width ?? 480, height = options.height ?? 320;
  const legendWidth = options.legendWidth ?? 0;
  const left = 48, right = 16 + legendWidth, top = options.title ? 28 : 12, bottom = 40;
  // The legend's key starts 110 px left of the plot's edge inside it, or just right of it.
  const keyX = legendWidth > 0 ? width - right + 12 : width - right - 110;
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  const yMax = options.yMax ?? Math.max(1, ...all);
  const x = (i: number) => left + (n === 1 ? 0.5 : i / (n - 1)) * (width - left - right);
  const y = (v: number) => top + (1 - v / yMax) * (height - top - bottom);
  const parts = [
    ...chartOpening(width, height, options.title),
    ...horizontalGrid(0, yMax, y, left, width - right, (v) => `${+v.toFixed(2)}`),
  ];
  for (let i = 0; i < n; i++) {
    parts.push(
      `<text x="${x(i)}" y="${height - bottom + 14}" text-anchor="middle">${i + 1}</text>`,
    );
  }
  parts.push(
    `<text x="${(left + width - right) / 2}" y="${height - 8}" text-anchor="middle">${
      escapeXml(options.xLabel ?? "epoch")
    }</text>`,
  );
  series.forEach((s, k) => {
    const color = s.color || CHART_COLORS[k % CHART_COLORS.length];
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts}"/>`,
      ...s.values.map((v, i) =>
        `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="${color}"/>`
      ),
      `<line x1="${keyX}" x2="${keyX + 20}" y1="${top + 10 + 14 * k}" ` +
        `y2="${top + 10 + 14 * k}" stroke="${color}" stroke-width="2"${dash}/>`,
      `<text x="${keyX + 24}" y="${top + 14 + 14 * k}">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/** The chapter's three curves (train loss, train acc, test acc) from epoch metrics. */
export function trainingCurvesSvg(
  epochs: { loss: number; train_acc: number; test_acc: number }[],
  title?: string,
): string {
  return curvesSvg([
    { name: "train loss", values: epochs.map((e) => e.loss), color: CHART_COLORS[0] },
    {
      name: "train acc",
      values: epochs.map((e) => e.train_acc),
      color: CHART_COLORS[1],
      dash: "6 3",
    },
    {
      name: "test acc",
      values: epochs.map((e) => e.test_acc),
      color: CHART_COLORS[2],
      dash: "2 3",
    },
  ], { title });
}
