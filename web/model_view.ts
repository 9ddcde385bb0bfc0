/**
 * Section 3, model: the source checkpoint (or training from scratch) and the hyper-parameters,
 * read into core's `RunConfig` with the chapter's defaults for everything not on the page.
 *
 * @module
 */
import {
  defaultRunConfig,
  paramEntries,
  ParamError,
  type ParamName,
  paramUsedBy,
  parseValue,
  type RunConfig,
} from "@webtune/core";
import { countParameters, describeArchitecture, readWeights } from "@webtune/models";
import { byId, dropZone } from "./dom.ts";
import { droppedFiles } from "./drop.ts";
import { fileBytes } from "./files.ts";
import { nextFrame, type Page } from "./page.ts";
import { sourceWeights } from "./session.ts";

type Task = RunConfig["task"];

/** What the model section tells the training section. */
export interface ModelSettings {
  /** The settings as a `RunConfig`; throws if one is invalid (and focuses it if asked). */
  config(focusInvalid?: boolean): RunConfig;
  /** The chosen task (scratch needs no source weights). */
  task(): Task;
}

/** Wires the model section. */
export function setupModelView(page: Page): ModelSettings {
  const radios = Array.from(
    document.querySelectorAll<HTMLInputElement>('input[name="task"]'),
  );
  const weightsInput = byId("weights-file", HTMLInputElement);
  const status = byId("weights-status", HTMLElement);
  const task = (): Task =>
    radios.find((r) => r.checked)?.value === "scratch" ? "scratch" : "finetune";
  const fields = buildFields(byId("hyper-fields", HTMLElement), task());

  const loadWeights = (file: File) =>
    page.act(async () => {
      status.textContent = `Reading ${file.name}…`;
      await nextFrame();
      try {
        // readWeights never runs anything from the file: .pth goes through an allow-list
        // unpickler, so a hostile checkpoint can only fail to load.
        const weights = readWeights(await fileBytes(file), file.name);
        const source = sourceWeights(file.name, weights);
        page.session.setSource(source);
        page.hook.source = { name: source.name, fc: source.fc };
        const millions = (countParameters(weights) / 1e6).toFixed(2);
        // The architecture is read from the weights' keys and shapes, as the CLI does.
        const arch = describeArchitecture(weights).replace("architecture: ", "");
        status.textContent = `${file.name}: ${source.fc} (${arch}, ${millions} M parameters)`;
      } catch (e) {
        status.textContent = "";
        throw e;
      }
    });

  weightsInput.addEventListener("change", () => {
    const file = weightsInput.files?.[0];
    if (file) loadWeights(file);
  });
  dropZone(byId("weights-drop", HTMLElement), (transfer) => {
    droppedFiles(transfer).then((files) => {
      if (files[0]) loadWeights(files[0].file);
    });
  });
  for (const radio of radios) {
    radio.addEventListener("change", () => {
      // Each task has its own chapter defaults (scratch: η 5e-4, one param group).
      const defaults = defaultRunConfig(task());
      for (const field of fields) field.reset(defaults[field.name as keyof RunConfig]);
      page.refresh();
    });
  }

  page.onRefresh(() => {
    const locked = page.session.training || page.hook.state === "preparing";
    const scratch = task() === "scratch";
    for (const r of radios) r.disabled = locked;
    weightsInput.disabled = locked || scratch;
    // A field whose parameter the task does not use (scratch: head multiplier, freezing) is off.
    for (const field of fields) field.input.disabled = locked || !paramUsedBy(field.name, task());
  });

  const config = (focusInvalid = false): RunConfig => {
    const t = task();
    const values: Record<string, unknown> = { ...defaultRunConfig(t) };
    for (const field of fields) {
      if (!paramUsedBy(field.name, t)) continue;
      try {
        values[field.name] = field.read();
      } catch (e) {
        if (focusInvalid) field.input.focus();
        // The table's problem ("must be at least 1, got 0") after the field's label.
        throw e instanceof ParamError ? new Error(`${field.label} ${e.problem}`) : e;
      }
    }
    return values as RunConfig;
  };
  return { config, task };
}

/**
 * An error's message for the page: a run parameter's problem (core names the parameter, e.g. a
 * batch too big for the device) under the form field's label instead of its code name.
 */
export function errorMessage(e: unknown): string {
  const entry = paramEntries("finetune").find((p) => p.name === (e as ParamError).param);
  if (e instanceof ParamError && entry) return `${entry.spec.page ?? e.param} ${e.problem}`;
  return e instanceof Error ? e.message : String(e);
}

/** A form field made from one entry of the run-config table. */
interface Field {
  name: ParamName;
  label: string;
  input: HTMLInputElement | HTMLSelectElement;
  /** The value, parsed and checked like the CLI's flag; throws `ParamError`. */
  read(): number | boolean | string;
  /** Shows a task's default. */
  reset(value: unknown): void;
}

/**
 * The hyper-parameter fields: one per table entry with a page label, its id the CLI flag's name
 * (`#batch-size`), its limits and default the table's.
 */
function buildFields(grid: HTMLElement, task: Task): Field[] {
  const fields: Field[] = [];
  for (const { name, flag, spec, default: value } of paramEntries(task)) {
    if (!spec.page) continue;
    const label = document.createElement("label");
    label.title = spec.help;
    let input: HTMLInputElement | HTMLSelectElement;
    if (spec.kind === "enum") {
      input = document.createElement("select");
      for (const choice of spec.choices) input.add(new Option(choice, choice));
    } else {
      input = document.createElement("input");
      if (spec.kind === "boolean") {
        input.type = "checkbox";
        label.className = "check";
      } else {
        input.type = "number";
        input.step = spec.integer ? "1" : "any";
        if (spec.min !== undefined) input.min = String(spec.min);
        if (spec.max !== undefined) input.max = String(spec.max);
        input.required = true;
      }
    }
    input.id = flag;
    const checkbox = input instanceof HTMLInputElement && input.type === "checkbox";
    if (checkbox) label.append(input, ` ${spec.page}`);
    else label.append(`${spec.page} `, input);
    grid.append(label);
    const field: Field = {
      name,
      label: spec.page,
      input,
      read: () =>
        parseValue(
          spec.page!,
          spec,
          checkbox ? String((input as HTMLInputElement).checked) : input.value,
        ),
      reset(value) {
        if (checkbox) (input as HTMLInputElement).checked = value === true;
        else input.value = value === undefined ? "" : String(value);
      },
    };
    field.reset(value);
    fields.push(field);
  }
  return fields;
}
