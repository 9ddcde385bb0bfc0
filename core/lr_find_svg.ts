import { CHART_COLORS } from "./curves_svg.ts";
import { chartOpening, escapeXml, horizontalGrid } from "./svg.ts";
import type { LrFindResult } from "./lr_find.ts";

/**
 * Draws an lr-find sweep as a standalone SVG, like fastai's `plot_lr_find`: smoothed loss
 * against the learning rate on a log axis, without the last `skipEnd` batches (fastai's 5, where
 * the loss shoots up), and a dot for each suggestion. Same look as `curves.svg`.
 *
 * @example
 * ```ts ignore
 * import { lrFind, lrFindSvg } from "@webtune/core";
 * const svg = lrFindSvg(await lrFind(step), { title: "lr-find: finetune" });
 * ```
 */
export function lrFindSvg(
  result: LrFindResult,
  options: { title?: string; width?: number; height?: number; skipEnd?: number } = {},
): string {
  const width = options.width ?? 480, height = options.height ?? 320;
  const left = 56, right = 16, top = options.title ? 28 : 12, bottom = 40;
  const skipEnd = options.skipEnd ?? 5;
  // fastai plots nothing when the sweep is shorter than skip_end; keep at least two points.
  const n = result.losses.length - skipEnd >= 2
    ? result.losses.length - skipEnd
    : result.losses.length;
  const points = result.lrs.slice(0, n)
    .map((lr, i) => [Math.log10(lr), result.losses[i]] as const)
    .filter(([, loss]) => Number.isFinite(loss));
  const suggestions = Object.entries(result.suggestions ?? {});
  const xs = [...points.map(([x]) => x), ...suggestions.map(([, s]) => Math.log10(s.lr))];
  const ys = [...points.map(([, y]) => y), ...suggestions.map(([, s]) => s.loss)];
  const xMin = Math.floor(Math.min(...xs, Math.log10(result.start_lr)));
  const xMax = Math.max(Math.ceil(Math.max(...xs, xMin + 1)), xMin + 1);
  const yLow = Math.min(...ys, Infinity), yHigh = Math.max(...ys, -Infinity);
  const pad = Number.isFinite(yLow) ? Math.max((yHigh - yLow) * 0.05, 1e-6) : 1;
  const yMin = Number.isFinite(yLow) ? yLow - pad : 0;
  const yMax = Number.isFinite(yHigh) ? yHigh + pad : 1;
  const x = (v: number) => left + ((v - xMin) / (xMax - xMin)) * (width - left - right);
  const y = (v: number) => top + (1 - (v - yMin) / (yMax - yMin)) * (height - top - bottom);
  const parts = [
    ...chartOpening(width, height, options.title),
    ...horizontalGrid(yMin, yMax, y, left, width - right, (v) => `${+v.toPrecision(3)}`),
  ];
  for (let decade = xMin; decade <= xMax; decade++) {
    parts.push(
      `<line x1="${x(decade)}" x2="${x(decade)}" y1="${top}" y2="${
        height - bottom
      }" stroke="#eee"/>`,
      `<text x="${x(decade)}" y="${height - bottom + 14}" text-anchor="middle">1e${decade}</text>`,
    );
  }
  parts.push(
    `<text x="${(left + width - right) / 2}" y="${height - 8}" text-anchor="middle">` +
      `learning rate (log scale)</text>`,
    `<text x="12" y="${(top + height - bottom) / 2}" text-anchor="middle" ` +
      `transform="rotate(-90 12 ${(top + height - bottom) / 2})">smoothed loss</text>`,
  );
  const pts = points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(" ");
  parts.push(
    `<polyline fill="none" stroke="${CHART_COLORS[0]}" stroke-width="2" points="${pts}"/>`,
  );
  suggestions.forEach(([name, s], k) => {
    const color = CHART_COLORS[(k + 1) % CHART_COLORS.length];
    const cx = x(Math.log10(s.lr)).toFixed(1), cy = y(s.loss).toFixed(1);
    parts.push(
      `<circle cx="${cx}" cy="${cy}" r="4" fill="${color}"/>`,
      `<circle cx="${width - right - 100}" cy="${top + 10 + 14 * k}" r="4" fill="${color}"/>`,
      `<text x="${width - right - 92}" y="${top + 14 + 14 * k}">${escapeXml(name)} ${
        s.lr.toExponential(1)
      }</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}
