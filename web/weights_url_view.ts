/**
 * The model section's "download from a URL" field, prefilled with torchvision's ResNet-18.
 * The fetched file is handed to the source-checkpoint input, so it is read (and kept) exactly
 * as a picked file is.
 *
 * @module
 */
import { PRETRAINED_CONFIGS, RESNET18_IMAGENET } from "@webtune/models";
import { byId, el } from "./dom.ts";
import type { Page } from "./page.ts";
import { fetchWeights } from "./weights_url.ts";

/** Wires the weights URL field. */
export function setupWeightsUrl(page: Page): void {
  const form = byId("weights-url-form", HTMLFormElement);
  const url = byId("weights-url", HTMLInputElement);
  const fetchButton = byId("weights-fetch", HTMLButtonElement);
  const progress = byId("weights-progress", HTMLProgressElement);
  const status = byId("weights-url-status", HTMLElement);
  const weightsInput = byId("weights-file", HTMLInputElement);
  const options = byId("weights-urls", HTMLDataListElement);
  // Offered in the field's list: torchvision's checkpoint of each architecture the CLI knows.
  options.replaceChildren(
    ...Object.values(PRETRAINED_CONFIGS).map((p) => el("option", p.name, { value: p.url })),
  );
  url.value ||= RESNET18_IMAGENET.url;

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    page.act(async () => {
      status.textContent = `Downloading ${url.value}…`;
      progress.hidden = false;
      progress.removeAttribute("value");
      try {
        const { name, bytes } = await fetchWeights(url.value, {
          onProgress: (p) => {
            if (p.total) {
              progress.max = p.total;
              progress.value = p.received;
            }
            const total = p.total ? ` of ${megabytes(p.total)}` : "";
            status.textContent = `Downloading ${fileName(p.url)}: ${megabytes(p.received)}${total}`;
          },
        });
        status.textContent = `Downloaded ${name} (${
          (bytes.length / 1e6).toFixed(1)
        } MB, hash checked).`;
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes as BlobPart], name));
        weightsInput.files = transfer.files;
        weightsInput.dispatchEvent(new Event("change"));
      } catch (e) {
        // The one-line reason goes to the page's alert; the file picker stays as it was.
        status.textContent = "";
        throw e;
      } finally {
        progress.hidden = true;
      }
    });
  });
  page.onRefresh(() => {
    fetchButton.disabled = weightsInput.disabled;
    url.disabled = weightsInput.disabled;
  });
}

function fileName(url: string): string {
  return url.split("/").pop() ?? url;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
