/**
 * What section 5 predicts with: the run just trained, or a saved model reopened from the
 * browser's storage (which has no data set or optimizer, only `config.json` and the weights).
 *
 * @module
 */
import { loadTrainedModel, predictProbabilities, type TrainedModel } from "@webtune/core";
import type { RgbImage } from "@webtune/data";
import type { ModelFiles, Prediction, Session } from "./session.ts";

/** A model that classifies images. */
export interface Predictor {
  classes: readonly string[];
  predict(images: { name: string; image: RgbImage }[]): Promise<Prediction[]>;
  /** `model.safetensors` and `config.json`. */
  files(): Promise<ModelFiles>;
}

/** A reopened saved model. */
export interface OpenedModel extends Predictor {
  /** The saved model's id. */
  id: string;
  title: string;
  dispose(): void;
}

/** Rebuilds a saved model on the current backend, as `deno task predict --model` does. */
export function openModel(
  id: string,
  title: string,
  files: ModelFiles,
): OpenedModel {
  const trained: TrainedModel = loadTrainedModel(files.configJson, files.weights, title);
  const classes = trained.config.class_names;
  return {
    id,
    title,
    classes,
    async predict(images) {
      const probs = await predictProbabilities(
        trained.model,
        images.map((i) => i.image),
        trained.config,
      );
      return images.map(({ name }, i) => {
        const p = Array.from(probs[i]);
        return {
          file: name,
          class: classes[p.indexOf(Math.max(...p))],
          probabilities: Object.fromEntries(classes.map((c, k) => [c, p[k]])),
        };
      });
    },
    files: () => Promise.resolve(files),
    dispose: () => trained.model.dispose(),
  };
}

let opened: OpenedModel | undefined;

/** The reopened model, if one is open. */
export function openedModel(): OpenedModel | undefined {
  return opened;
}

/** Makes `model` the one section 5 uses (disposing the previous one); `undefined` closes it. */
export function setOpenedModel(model: OpenedModel | undefined): void {
  if (opened !== model) opened?.dispose();
  opened = model;
}

/**
 * What section 5 uses: a reopened model if one is open, else the session's run (while it is not
 * training: its weights change between batches), else nothing.
 */
export function currentPredictor(session: Session): Predictor | undefined {
  if (opened) return opened;
  const run = session.run;
  if (!run || session.training) return undefined;
  return {
    classes: run.classes,
    predict: (images) => session.predict(images),
    files: () => session.modelFiles(),
  };
}
