/**
 * The whole run's remaining time, from the training events: every epoch left, training and
 * evaluation. Known after the first batch, so a user on a slow adapter knows at once whether to
 * wait.
 *
 * @module
 */
import type { TrainEvent } from "./events.ts";

/**
 * Before the first evaluation has been timed, a test image is taken to cost this fraction of a
 * training image: evaluation is a forward pass only, training a forward and a backward pass
 * (about twice the forward's work) plus the update.
 */
const EVAL_COST_GUESS = 1 / 3;

/**
 * Estimates the time left in a run from its events.
 *
 * @example
 * ```ts
 * import { RunEta } from "./eta.ts";
 * const eta = new RunEta();
 * const onEvent = (e: TrainEvent) => {
 *   eta.onEvent(e);
 *   console.log(eta.secondsLeft()); // undefined until the first batch has finished
 * };
 * ```
 */
export class RunEta {
  #epochs = 0;
  #epoch = 0;
  #trainExamples = 0;
  #testExamples = 0;
  #epochStart = 0;
  #lastBatchEnd = 0;
  #doneThisEpoch = 0;
  #trainedExamples = 0;
  #trainMs = 0;
  #evaluatedExamples = 0;
  #evalMs = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** The run's last epoch (0 before `run-start`). */
  get epochs(): number {
    return this.#epochs;
  }

  /** Feed every event of the run, in order. */
  onEvent(event: TrainEvent): void {
    switch (event.type) {
      case "run-start":
        this.#epochs = event.epochs;
        this.#trainExamples = event.trainExamples;
        this.#testExamples = event.testExamples;
        break;
      case "epoch-start":
        this.#epoch = event.epoch;
        this.#epochStart = this.#lastBatchEnd = this.now();
        this.#doneThisEpoch = 0;
        break;
      case "batch-end": {
        const t = this.now();
        this.#trainMs += t - this.#lastBatchEnd;
        this.#lastBatchEnd = t;
        this.#trainedExamples += event.examples;
        this.#doneThisEpoch += event.examples;
        break;
      }
      case "epoch-end":
        // Between the last batch and the end of the epoch the model was evaluated.
        this.#evalMs += this.now() - this.#lastBatchEnd;
        this.#evaluatedExamples += this.#testExamples;
        // The next epoch has not started: nothing of it is done yet.
        this.#epoch += 1;
        this.#doneThisEpoch = 0;
        break;
    }
  }

  /** Seconds until the run's last epoch ends; undefined before any batch has been timed. */
  secondsLeft(): number | undefined {
    if (this.#trainedExamples === 0 || this.#trainMs <= 0) return undefined;
    const msPerTrain = this.#trainMs / this.#trainedExamples;
    const msPerTest = this.#evaluatedExamples > 0
      ? this.#evalMs / this.#evaluatedExamples
      : msPerTrain * EVAL_COST_GUESS;
    // Epochs not yet evaluated, the current one included.
    const epochsLeft = Math.max(0, this.#epochs - this.#epoch + 1);
    if (epochsLeft === 0) return 0;
    const trainLeft = epochsLeft * this.#trainExamples - this.#doneThisEpoch;
    const testLeft = epochsLeft * this.#testExamples;
    return (trainLeft * msPerTrain + testLeft * msPerTest) / 1000;
  }
}

/**
 * `1 h 05 min`, `12 min`, `45 s`: a duration for a progress line.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./eta.ts";
 * formatDuration(3900); // "1 h 05 min"
 * ```
 */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}
