/**
 * Section 2's data set builder: classes by name, each filled from dropped or picked images, a
 * folder, or camera snapshots (hold the button for a burst); thumbnails that remove an image
 * when clicked; the test split; "Use this data set" and "Download as .zip". The set is kept in
 * the browser's storage after every change.
 *
 * "Use this data set" hands the zip to the data section's zip input, so a built set is opened
 * by exactly the code that opens a dropped zip (and the CLI's `--data`).
 *
 * @module
 */
import { type Camera, startCamera } from "./camera.ts";
import { type BuilderImage, DatasetBuilder } from "./dataset_builder.ts";
import { byId, download, dropZone, el } from "./dom.ts";
import { droppedFiles, filesFromFolderInput } from "./drop.ts";
import type { Page } from "./page.ts";
import { getState, putState } from "./store.ts";

/** Snapshots per second while the capture button is held. */
const BURST_PER_SECOND = 8;

/** What the browser test reads of the builder (on `window.webtune.builder`). */
export interface BuilderHook {
  classes: { name: string; images: number; test: number }[];
  /** Why the set cannot be used yet, if it cannot. */
  problem?: string;
  /** Whether the last change is stored. */
  saved: boolean;
}

/** Wires the builder; resolves once a saved set (if any) is restored. */
export async function setupBuilderView(page: Page): Promise<void> {
  const form = byId("builder-add", HTMLFormElement);
  const nameInput = byId("builder-class-name", HTMLInputElement);
  const list = byId("builder-classes", HTMLElement);
  const fraction = byId("builder-fraction", HTMLInputElement);
  const seed = byId("builder-seed", HTMLInputElement);
  const splitRadios = Array.from(
    document.querySelectorAll<HTMLInputElement>('input[name="builder-split"]'),
  );
  const use = byId("builder-use", HTMLButtonElement);
  const exportZip = byId("builder-export", HTMLButtonElement);
  const status = byId("builder-status", HTMLElement);
  const cameraToggle = byId("builder-camera", HTMLButtonElement);
  const video = byId("builder-video", HTMLVideoElement);
  const zipInput = byId("data-zip", HTMLInputElement);
  const hook = page.hook;

  let builder = new DatasetBuilder();
  let camera: Camera | undefined;
  /** Object URLs of the thumbnails on screen, revoked when they are redrawn. */
  let urls: string[] = [];

  const publish = (problem = builder.problem()) => {
    hook.builder = {
      classes: builder.classes.map((c) => ({
        name: c.name,
        images: c.images.length,
        test: c.test.length,
      })),
      problem,
      saved: hook.builder?.saved ?? true,
    };
  };
  const save = async () => {
    hook.builder!.saved = false;
    await putState("dataset", builder.state());
    hook.builder!.saved = true;
  };
  /** Redraws, then stores the set (errors, e.g. a full quota, go to the page's alert). */
  const changed = () => {
    render();
    return page.act(save);
  };

  const addFiles = (cls: string, set: "images" | "test", files: { name: string; blob: Blob }[]) =>
    page.act(async () => {
      const skipped = await builder.addImages(cls, files, set);
      status.textContent = skipped
        ? `Left out ${skipped} file${skipped > 1 ? "s" : ""} that ${
          skipped > 1 ? "are" : "is"
        } not JPEG or PNG.`
        : "";
      render();
      await save();
    });

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    page.act(async () => {
      builder.addClass(nameInput.value);
      nameInput.value = "";
      render();
      await save();
      // Straight on to filling the new class.
      list.querySelector<HTMLInputElement>(".builder-class:last-child input[type=file]")
        ?.focus();
    });
  });
  const readSplit = () => {
    const separate = splitRadios.find((r) => r.checked)?.value === "separate";
    const f = fraction.valueAsNumber, s = seed.valueAsNumber;
    builder.split = separate ? { kind: "separate" } : {
      kind: "fraction",
      fraction: Number.isFinite(f) ? Math.min(0.9, Math.max(0.01, f / 100)) : 0.2,
      seed: Number.isInteger(s) ? s : 0,
    };
    changed();
  };
  for (const input of [fraction, seed, ...splitRadios]) {
    input.addEventListener("change", readSplit);
  }

  use.addEventListener("click", () =>
    page.act(async () => {
      const zip = await builder.toZip("my-dataset");
      // Through the zip input: the data section opens it as it opens any zip (and keeps it).
      const transfer = new DataTransfer();
      transfer.items.add(
        new File([zip as BlobPart], "my-dataset.zip", { type: "application/zip" }),
      );
      zipInput.files = transfer.files;
      zipInput.dispatchEvent(new Event("change"));
    }));
  exportZip.addEventListener("click", () =>
    page.act(async () => {
      download("my-dataset.zip", await builder.toZip("my-dataset"), "application/zip");
    }));

  cameraToggle.addEventListener("click", () =>
    page.act(async () => {
      if (camera) {
        camera.stop();
        camera = undefined;
      } else {
        camera = await startCamera(video);
      }
      render();
    }));

  /** Grabs camera frames into `cls` for as long as the button is held (mouse, touch or key). */
  const burstButton = (cls: string): HTMLButtonElement => {
    const button = el("button", "Hold to capture", { type: "button", class: "burst" });
    button.disabled = !camera;
    let timer: ReturnType<typeof setInterval> | undefined;
    const snap = async () => {
      if (!camera) return;
      const blob = await camera.snapshot();
      await builder.addImages(cls, [{ name: `camera-${Date.now()}.jpg`, blob }]);
      // Only this card's heading and thumbnails: redrawing the card would drop the button
      // being held (and its focus).
      const index = builder.classes.findIndex((c) => c.name === cls);
      const card = list.children[index];
      const image = builder.classes[index]?.images.at(-1);
      if (!card || !image) return;
      card.querySelector("h3")!.textContent = cardTitle(index);
      let grid = card.querySelector(".thumbs");
      if (!grid) card.append(grid = thumbGrid(cls, `${cls} images`));
      grid.append(thumb(cls, image));
      publish();
    };
    // Snapshots still being taken when the button is let go: the burst ends after them, so no
    // frame lands after the set was saved.
    const inFlight = new Set<Promise<void>>();
    const capture = () => {
      const done: Promise<void> = snap().finally(() => inFlight.delete(done));
      inFlight.add(done);
    };
    const startBurst = () => {
      if (timer !== undefined || !camera) return;
      capture();
      timer = setInterval(capture, 1000 / BURST_PER_SECOND);
    };
    const stopBurst = () => {
      if (timer === undefined) return;
      clearInterval(timer);
      timer = undefined;
      const hadFocus = document.activeElement === button;
      page.act(async () => {
        await Promise.all(inFlight);
        changed();
        // The redraw replaced the button: give its successor the focus a keyboard user had.
        if (hadFocus) {
          list.querySelector<HTMLButtonElement>(`[data-class="${CSS.escape(cls)}"] .burst`)
            ?.focus();
        }
      });
    };
    button.addEventListener("pointerdown", startBurst);
    button.addEventListener("keydown", (e) => {
      if ((e.key === " " || e.key === "Enter") && !e.repeat) startBurst();
    });
    for (const type of ["pointerup", "pointerleave", "pointercancel", "keyup", "blur"]) {
      button.addEventListener(type, stopBurst);
    }
    return button;
  };

  const cardTitle = (index: number): string => {
    const cls = builder.classes[index];
    const { train, test } = builder.splitImages();
    const separate = builder.split.kind === "separate";
    return `${cls.name}: ${cls.images.length + (separate ? cls.test.length : 0)} images ` +
      `(${train[index].length} train, ${test[index].length} test)`;
  };
  const thumbGrid = (cls: string, caption: string) =>
    el("div", "", { class: "thumbs", role: "list", "aria-label": caption, "data-of": cls });
  /** A thumbnail that removes its image when clicked. */
  const thumb = (cls: string, image: BuilderImage): HTMLElement => {
    const url = URL.createObjectURL(image.blob);
    urls.push(url);
    const button = el("button", "", {
      type: "button",
      class: "thumb",
      role: "listitem",
      title: `${image.name}: click to remove`,
      "aria-label": `remove ${image.name} from ${cls}`,
    });
    button.append(el("img", "", { src: url, alt: "" }));
    button.addEventListener("click", () => {
      const grid = button.parentElement!;
      const at = Array.prototype.indexOf.call(grid.children, button);
      const label = grid.getAttribute("aria-label")!;
      builder.removeImage(image.id);
      changed();
      // Keep a keyboard user's place: the next thumbnail, or the class's first picker.
      const newGrid = list.querySelector(`[aria-label="${CSS.escape(label)}"]`);
      const next = newGrid?.children[Math.min(at, newGrid.children.length - 1)] ??
        list.querySelector(`[data-class="${CSS.escape(cls)}"] input`);
      (next as HTMLElement | null)?.focus();
    });
    return button;
  };

  const classCard = (index: number): HTMLElement => {
    const cls = builder.classes[index];
    const card = el("div", "", { class: "builder-class drop", "data-class": cls.name });
    const separate = builder.split.kind === "separate";
    card.append(el("h3", cardTitle(index)));
    const controls = el("div", "", { class: "row" });
    const picker = (label: string, set: "images" | "test", folder: boolean) => {
      const input = el("input", "", {
        type: "file",
        multiple: "",
        accept: folder ? "" : "image/jpeg,image/png",
        "aria-label": `${label} to ${cls.name}`,
      });
      if (folder) input.setAttribute("webkitdirectory", "");
      input.addEventListener("change", () => {
        const files = input.files ? filesFromFolderInput(input.files) : [];
        addFiles(cls.name, set, files.map((f) => ({ name: f.path, blob: f.file })));
      });
      const wrap = el("label", `${label} `);
      wrap.append(input);
      return wrap;
    };
    controls.append(picker("Add images", "images", false), picker("Add a folder", "images", true));
    if (separate) controls.append(picker("Add test images", "test", false));
    const remove = el("button", "Remove class", { type: "button", class: "secondary" });
    remove.addEventListener("click", () => {
      builder.removeClass(cls.name);
      changed();
    });
    controls.append(burstButton(cls.name), remove);
    card.append(controls);
    const thumbs = (images: BuilderImage[], caption: string) => {
      if (!images.length) return;
      const grid = thumbGrid(cls.name, caption);
      grid.append(...images.map((image) => thumb(cls.name, image)));
      card.append(grid);
    };
    thumbs(cls.images, `${cls.name} images`);
    if (separate) thumbs(cls.test, `${cls.name} test images`);
    dropZone(card, (transfer) => {
      const dropped = droppedFiles(transfer);
      dropped.then((files) =>
        addFiles(
          cls.name,
          "images",
          files.map((f) => ({ name: f.path, blob: f.file })),
        )
      );
    });
    return card;
  };

  /** Redraws the class cards and the buttons' states. */
  const render = () => {
    const problem = builder.problem();
    publish(problem);
    for (const url of urls) URL.revokeObjectURL(url);
    urls = [];
    list.replaceChildren(...builder.classes.map((_, i) => classCard(i)));
    use.disabled = exportZip.disabled = problem !== undefined;
    status.textContent = builder.classes.length ? (problem ? `To use it: ${problem}.` : "") : "";
    cameraToggle.textContent = camera ? "Turn the camera off" : "Camera for snapshots";
    video.hidden = !camera;
    const separate = builder.split.kind === "separate";
    splitRadios.forEach((r) => r.checked = (r.value === "separate") === separate);
    fraction.disabled = seed.disabled = separate;
  };

  const saved = await getState("dataset").catch(() => undefined);
  if (saved) {
    builder = DatasetBuilder.from(saved);
    if (saved.split.kind === "fraction") {
      fraction.value = String(Math.round(saved.split.fraction * 100));
      seed.value = String(saved.split.seed);
    }
  }
  render();
}
