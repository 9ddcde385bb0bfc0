/**
 * A one-line text progress bar for downloads and decoding.
 *
 * @module
 */

/**
 * Formats `done` of `total` as a bar, e.g.
 * `[##########----------]  50% 130.5/261.0 MB`. With `total` unknown it shows the amount only.
 * `unit` `"bytes"` prints megabytes; `"items"` prints counts.
 *
 * @example
 * ```ts
 * import { formatProgress } from "./format_progress.ts";
 * console.log(formatProgress(5, 10, { width: 10, unit: "items" })); // [#####-----]  50% 5/10
 * ```
 */
export function formatProgress(
  done: number,
  total: number | undefined,
  options: { width?: number; unit?: "bytes" | "items" } = {},
): string {
  const width = options.width ?? 30;
  const unit = options.unit ?? "bytes";
  const amount = (n: number) => unit === "bytes" ? (n / 1e6).toFixed(1) : String(n);
  const suffix = unit === "bytes" ? " MB" : "";
  if (!total) return `${amount(done)}${suffix}`;
  const fraction = Math.min(1, Math.max(0, done / total));
  const filled = Math.round(fraction * width);
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${percent} ` +
    `${amount(done)}/${amount(total)}${suffix}`;
}
