/**
 * The pieces every webtune chart shares (`curves.svg`, `lr_find.svg`), so they look alike.
 * Internal to core: not exported from mod.ts.
 *
 * @module
 */

/** Escapes text for an SVG text node. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

/** The opening of a chart: the `<svg>` element, a white background and the centred title. */
export function chartOpening(width: number, height: number, title?: string): string[] {
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  if (title) {
    parts.push(`<text x="${width / 2}" y="16" text-anchor="middle">${escapeXml(title)}</text>`);
  }
  return parts;
}

/**
 * Five labelled horizontal grid lines from `yMin` to `yMax`, between x = `left` and `right`;
 * `y` maps a value to its pixel row.
 */
export function horizontalGrid(
  yMin: number,
  yMax: number,
  y: (value: number) => number,
  left: number,
  right: number,
  label: (value: number) => string,
): string[] {
  const parts: string[] = [];
  for (let k = 0; k <= 4; k++) {
    const v = yMin + ((yMax - yMin) * k) / 4;
    parts.push(
      `<line x1="${left}" x2="${right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${left - 4}" y="${y(v) + 4}" text-anchor="end">${label(v)}</text>`,
    );
  }
  return parts;
}
