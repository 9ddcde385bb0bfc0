import * as tf from "@tensorflow/tfjs-core";
import type { DeviceBatch } from "./train_step.ts";

/** A batch in host memory, as the data package yields it: NHWC normalised floats + labels. */
export interface HostBatch {
  x: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  /**
   * Hands `x`'s buffer back to the loader for reuse. Call only after the step that used it has
   * finished (tfjs may read `x` until the upload happens).
   */
  release?: () => void;
}

/** Uploads a host batch. The caller disposes the result ({@linkcode disposeBatch}). */
export function toDevice(batch: HostBatch): DeviceBatch {
  return {
    x: tf.tensor4d(batch.x, batch.shape, "float32"),
    labels: tf.tensor1d(batch.labels, "int32"),
  };
}

/** Frees a device batch. */
export function disposeBatch(batch: DeviceBatch): void {
  batch.x.dispose();
  batch.labels.dispose();
}
