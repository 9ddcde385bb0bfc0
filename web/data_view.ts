/**
 * Section 2, data: a dropped or picked zip or folder, or the synthetic set; shows the classes,
 * what was skipped, and the chapter's 2 × 8 grid of training images.
 *
 * @module
 */
import {
  type DataSource,
  describeSkipped,
  openDataSource,
  readZip,
  resolveDataSource,
  samplesGrid,
  type SkippedFile,
} from "@webtune/data";
import { byId, dropZone, el } from "./dom.ts";
import { droppedFiles, filesFromFolderInput } from "./drop.ts";
import { fileBytes, filesSource, type PathFile } from "./files.ts";
import { nextFrame, type Page } from "./page.ts";

/** Wires the data section. Returns a function that shows the files a run's decoding skipped. */
export function setupDataView(page: Page): (skipped: SkippedFile[]) => void {
  const zipInput = byId("data-zip", HTMLInputElement);
  const folderInput = byId("data-folder", HTMLInputElement);
  const synthetic = byId("data-synthetic", HTMLButtonElement);
  const status = byId("data-status", HTMLElement);
  const skippedLine = byId("data-skipped", HTMLElement);

  const load = (what: string, open: () => Promise<DataSource>) =>
    page.act(async () => {
      status.textContent = `Reading ${what}…`;
      await nextFrame();
      try {
        const data = await open();
        page.session.setData(data);
        await show(page, data);
      } catch (e) {
        status.textContent = "";
        throw e;
      }
    });

  zipInput.addEventListener("change", () => {
    const file = zipInput.files?.[0];
    if (file) load(file.name, () => openZip(file));
  });
  folderInput.addEventListener("change", () => {
    const files = folderInput.files ? filesFromFolderInput(folderInput.files) : [];
    if (files.length) load("the folder", () => openFolder(files));
  });
  synthetic.addEventListener(
    "click",
    () => load("the synthetic set", () => resolveDataSource("synthetic", { seed: 0 })),
  );
  dropZone(byId("data-drop", HTMLElement), (transfer) => {
    const dropped = droppedFiles(transfer);
    load("the dropped files", async () => {
      const files = await dropped;
      if (files.length === 1 && /\.zip$/i.test(files[0].path)) return openZip(files[0].file);
      if (files.length === 0) throw new Error("nothing readable was dropped");
      return openFolder(files);
    });
  });

  page.onRefresh(() => {
    const locked = page.session.training || page.hook.state === "preparing";
    for (const c of [zipInput, folderInput, synthetic]) c.disabled = locked;
  });

  // A run's decode report lists the listing's non-image files as well as undecodable ones.
  return (skipped) => {
    skippedLine.textContent = describeSkipped(skipped) ?? "";
  };
}

async function openZip(file: File): Promise<DataSource> {
  return openDataSource(readZip(await fileBytes(file), { name: file.name }));
}

function openFolder(files: PathFile[]): Promise<DataSource> {
  const top = files[0].path.split("/")[0];
  const name = files.every((f) => f.path.startsWith(`${top}/`)) ? top : "dropped files";
  return openDataSource(filesSource(name, files));
}

/** Shows the data set's classes, skipped files and sample grid. */
async function show(page: Page, data: DataSource): Promise<void> {
  const count = (labels: Int32Array) =>
    data.classes.map((_, c) => labels.reduce((n, l) => n + (l === c ? 1 : 0), 0));
  const train = count(data.train.labels), test = count(data.test.labels);
  page.hook.data = { description: data.description, classes: [...data.classes], train, test };

  byId("data-status", HTMLElement).textContent = `${data.description}: ${data.classes.length} ` +
    `classes, ${data.train.labels.length} training and ${data.test.labels.length} test images.`;
  const table = byId("class-counts", HTMLTableElement);
  const body = table.tBodies[0];
  body.replaceChildren(...data.classes.map((c, i) => {
    const row = el("tr");
    row.append(
      el("th", c, { scope: "row" }),
      el("td", String(train[i])),
      el("td", String(test[i])),
    );
    return row;
  }));
  table.hidden = false;
  const ignored = [...data.train.ignored, ...data.test.ignored];
  byId("data-skipped", HTMLElement).textContent = describeSkipped(ignored) ?? "";

  const grid = await samplesGrid(data.train, { tile: 96 });
  const canvas = byId("samples", HTMLCanvasElement);
  canvas.width = grid.width;
  canvas.height = grid.height;
  canvas.getContext("2d")?.putImageData(
    new ImageData(new Uint8ClampedArray(grid.rgba), grid.width, grid.height),
    0,
    0,
  );
  byId("samples-figure", HTMLElement).hidden = false;
}
