/**
 * The typed events a training run emits. The core prints nothing: the CLI renders these as a
 * progress bar or JSON lines, the web page as live charts.
 *
 * @module
 */
import type { AdapterReport } from "./backend.ts";

/** One epoch's numbers, as d2l's `train_ch13` reports them. */
export interface EpochMetrics {
  /** 1-based epoch number. */
  epoch: number;
  /** Mean per-example training loss over the epoch. */
  loss: number;
  /** Training accuracy over the epoch (model in train mode, augmented images). */
  train_acc: number;
  /** Test accuracy after the epoch (model in eval mode). */
  test_acc: number;
  /** Training examples per second over the epoch's training batches. */
  examples_per_sec: number;
  /** Wall-clock seconds of the epoch, training and testing. */
  seconds: number;
}

/** Everything a training run tells its listener, in order. */
export type TrainEvent =
  | {
    type: "run-start";
    epochs: number;
    startEpoch: number;
    trainExamples: number;
    testExamples: number;
    adapter?: AdapterReport;
  }
  | { type: "epoch-start"; epoch: number; epochs: number; batches: number }
  | {
    type: "batch-end";
    epoch: number;
    /** 1-based batch index within the epoch. */
    batch: number;
    batches: number;
    /** Mean per-example loss of this batch. */
    loss: number;
    /** Accuracy of this batch. */
    acc: number;
    /** Examples in this batch. */
    examples: number;
    /**
     * The base learning rate this batch trained with (the schedule's factor × `--lr`; the head's
     * is × head-lr-mult). Absent from runs that do not report it.
     */
    lr?: number;
  }
  | {
    /**
     * `--freeze-epochs`: from `epoch` on, only the head (`head`) or every layer with its
     * group's lr (`all`) learns. Sent before that epoch's `epoch-start`.
     */
    type: "freeze";
    epoch: number;
    trainable: "head" | "all";
    /** How many parameter tensors learn from this epoch on. */
    parameters: number;
  }
  | { type: "epoch-end"; metrics: EpochMetrics }
  | { type: "checkpoint"; epoch: number; where: string }
  | { type: "stopped"; epoch: number; batch: number }
  | { type: "run-end"; epochs: EpochMetrics[]; examplesPerSec: number };

/** Receives {@linkcode TrainEvent}s. */
export type TrainListener = (event: TrainEvent) => void;
