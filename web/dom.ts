/**
 * Small DOM helpers shared by the page's views.
 *
 * @module
 */

/** The element with `id`, checked to be of `type` (a missing element is a bug in index.html). */
export function byId<T extends HTMLElement>(id: string, type: { new (): T }): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`index.html: #${id} is missing or not a ${type.name}`);
  return el;
}

/** Creates an element with text content and optional attributes. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text = "",
  attrs: Record<string, string> = {},
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/**
 * Makes `zone` accept drops: highlights it while something is dragged over, and passes the
 * `DataTransfer` to `onDrop` synchronously (its contents are only readable then).
 */
export function dropZone(zone: HTMLElement, onDrop: (transfer: DataTransfer) => void): void {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer) onDrop(e.dataTransfer);
  });
}

/** Offers `bytes` as a download named `name` (a plain `<a download>` click). */
export function download(name: string, bytes: Uint8Array | string, type: string): void {
  const blob = new Blob([bytes as BlobPart], { type });
  const url = URL.createObjectURL(blob);
  const a = el("a", "", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  // The click has started the download; the URL can go once the browser has read it.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** A percentage with one decimal, e.g. `87.5%`. */
export function percent(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}
