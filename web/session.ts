/**
 * The page's model of one working session: the data set, the source weights, and the run being
 * trained. All the work is done by `@webtune/core`, `data` and `models` — the same calls the CLI
 * makes — and nothing here touches the DOM.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  type AdapterReport,
  type ClassReport,
  classReport,
  encodeModelFiles,
  type EpochMetrics,
  evaluate,
  modelConfig,
  type ModelFiles,
  predictProbabilities,
  type PreparedRun,
  prepareRun,
  type RunConfig,
  runTraining,
  setupBackend,
  type TrainListener,
  type TrainResult,
} from "@webtune/core";
import type { DataSource, RgbImage } from "@webtune/data";
import { describeClassifier, type StateDict } from "@webtune/models";

/** Source weights the user picked. */
export interface SourceWeights {
  /** File name, for messages. */
  name: string;
  weights: StateDict;
  /** The classifier line as PyTorch prints it, e.g. `fc: Linear(in_features=512, ...)`. */
  fc: string;
}

/** One image's prediction, shaped like `deno task predict --json` prints it. */
export interface Prediction {
  file: string;
  class: string;
  probabilities: Record<string, number>;
}

export type { ModelFiles };

/** Makes {@linkcode SourceWeights} from a state dict read with `readWeights`. */
export function sourceWeights(name: string, weights: StateDict): SourceWeights {
  return { name, weights, fc: describeClassifier(weights) };
}

/**
 * Data, source weights and the current run. A run survives Stop and Start so training can go
 * on where it stopped; changing the data, the source or any setting but the epoch count starts
 * a new one (its model is disposed, so tensors never pile up).
 */
export class Session {
  /** The device in use (set by the page once the backend is up); oversized batches are refused. */
  adapter?: AdapterReport;
  data?: DataSource;
  source?: SourceWeights;
  /** The run being trained, if any. */
  run?: PreparedRun;
  /** Completed epochs of {@linkcode run}. */
  history: EpochMetrics[] = [];
  /** The epoch count the current run is heading for. */
  targetEpochs = 0;
  /**
   * The model files after the last complete epoch, on the host: what survives a lost GPU device
   * (their tensors die with it), so the page can still offer them for download.
   */
  lastEpochFiles?: ModelFiles;
  /** Why the GPU device was lost during training, until a new run starts on a new device. */
  deviceLost?: string;
  #runKey = "";
  #controller?: AbortController;

  /** Uses a new data set; drops the current run (its classes may differ). */
  setData(data: DataSource): void {
    this.discardRun();
    this.data = data;
  }

  /** Uses new source weights; drops the current run. */
  setSource(source: SourceWeights | undefined): void {
    this.discardRun();
    this.source = source;
  }

  /** Whether {@linkcode train} with `config` would continue the current run. */
  continues(config: RunConfig): boolean {
    return this.run !== undefined && this.#keyOf(config) === this.#runKey;
  }

  /**
   * Trains: continues the current run if `config` matches it (up to its epoch count if it was
   * stopped early, else `config.epochs` more), otherwise prepares a new one (decoding every
   * image once) and trains `config.epochs`.
   */
  async train(
    config: RunConfig,
    onEvent: TrainListener,
    onDecodeProgress?: (split: "train" | "test", done: number, total: number) => void,
  ): Promise<TrainResult> {
    const data = this.data;
    if (!data) throw new Error("choose a data set first");
    if (config.task === "finetune" && !this.source) {
      throw new Error("choose a source checkpoint (.pth or .safetensors), or train from scratch");
    }
    if (this.deviceLost) {
      // The lost device's tensors are gone: a fresh device, and a new run on it.
      this.adapter = await setupBackend({ backend: "webgpu", fresh: true });
      this.discardRun();
      this.deviceLost = undefined;
    }
    if (!this.continues(config)) {
      this.discardRun();
      this.run = await prepareRun(config, data, {
        adapter: this.adapter,
        source: config.task === "finetune" ? this.source!.weights : undefined,
        onDecodeProgress,
      });
      this.#runKey = this.#keyOf(config);
    }
    const run = this.run!;
    const completed = this.history.length;
    if (completed >= this.targetEpochs) this.targetEpochs = completed + config.epochs;
    const controller = new AbortController();
    this.#controller = controller;
    const device = (tf.backend() as { device?: GPUDevice }).device;
    let lost: GPUDeviceLostInfo | undefined;
    device?.lost.then((info) => lost = info);
    try {
      const result = await runTraining(run, {
        onEvent,
        signal: controller.signal,
        completedEpochs: completed,
        history: this.history,
        epochs: this.targetEpochs,
        afterEpoch: async (_metrics, history) => {
          this.lastEpochFiles = await encodeModelFiles(
            run.model,
            run.config,
            run.classes,
            history.length,
          );
          this.history = [...history];
        },
      });
      this.history = result.epochs;
      return result;
    } catch (e) {
      // The failed read that reports a lost device can come before `device.lost` settles.
      if (device && !lost) {
        lost = await Promise.race([
          device.lost,
          new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 200)),
        ]);
      }
      if (!lost) throw e;
      this.#dropLostRun();
      const epochs = this.lastEpochFiles ? this.history.length : 0;
      this.deviceLost =
        `the GPU device was lost during training (${lost.reason}: ${
          lost.message || "no details"
        }); ` +
        (epochs > 0
          ? `the model after epoch ${epochs} is kept and can be downloaded; `
          : "no epoch had finished, so there is no model to keep; ") +
        "Start trains again on a new device";
      throw new Error(this.deviceLost);
    } finally {
      this.#controller = undefined;
    }
  }

  /** Forgets a run whose tensors died with the device (disposing them may throw). */
  #dropLostRun(): void {
    try {
      this.run?.dispose();
    } catch {
      // Their memory went with the device.
    }
    this.run = undefined;
    this.#runKey = "";
  }

  /** Asks the training loop to stop after the current batch; the model keeps what it learnt. */
  stop(): void {
    this.#controller?.abort();
  }

  /** Whether a training call is running. */
  get training(): boolean {
    return this.#controller !== undefined;
  }

  /** Disposes the current run's model and optimizer state. */
  discardRun(): void {
    this.run?.dispose();
    this.run = undefined;
    this.history = [];
    this.targetEpochs = 0;
    this.lastEpochFiles = undefined;
    this.#runKey = "";
  }

  /** Whether there is a model to download: the current run's, or the one a lost device left. */
  get hasModel(): boolean {
    return this.run !== undefined || this.lastEpochFiles !== undefined;
  }

  /** Class probabilities of images with the current model (test transform, eval mode). */
  async predict(images: { name: string; image: RgbImage }[]): Promise<Prediction[]> {
    const run = this.#requireRun();
    const probs = await predictProbabilities(
      run.model,
      images.map((i) => i.image),
      modelConfig(run.config, run.classes),
    );
    return images.map(({ name }, i) => {
      const p = Array.from(probs[i]);
      return {
        file: name,
        class: run.classes[p.indexOf(Math.max(...p))],
        probabilities: Object.fromEntries(run.classes.map((c, k) => [c, p[k]])),
      };
    });
  }

  /** Confusion matrix and per-class precision/recall on the test split. */
  async evaluate(): Promise<ClassReport> {
    const run = this.#requireRun();
    const { labels, predictions } = await evaluate(run.model, run.testBatches());
    return classReport(labels, predictions, run.classes.length);
  }

  /**
   * `model.safetensors` and `config.json` of the current model, byte for byte what the CLI
   * writes into a run directory (core's `encodeModelFiles`), so `deno task predict --model DIR`
   * reads them.
   */
  modelFiles(): Promise<ModelFiles> {
    if (!this.run && this.lastEpochFiles) return Promise.resolve(this.lastEpochFiles);
    const run = this.#requireRun();
    return encodeModelFiles(run.model, run.config, run.classes, this.history.length);
  }

  #requireRun(): PreparedRun {
    if (!this.run) throw new Error("train a model first");
    return this.run;
  }

  /** Everything that shapes a run except how long it trains. */
  #keyOf(config: RunConfig): string {
    return JSON.stringify({ ...config, epochs: 0 });
  }
}
