/**
 * WebGPU errors that nothing caught, turned into a failed run.
 *
 * Why: a WebGPU validation error (an invalid pipeline, a binding past a device limit) throws
 * nothing. The command buffer it is in is dropped whole, so a training step "runs" without doing
 * its work and the weights go silently wrong; only the device's `uncapturederror` event says so.
 * (Seen here: storage-texture bindings past `maxStorageTexturesPerShaderStage` made a step run at
 * 7× its real speed, doing nothing.) {@linkcode watchDeviceErrors} records the first such error of
 * a device; the training loop calls {@linkcode throwIfBackendDeviceError} after every step.
 *
 * @example
 * ```ts ignore
 * watchDeviceErrors(device);
 * // … a step …
 * throwIfDeviceError(device); // throws DeviceError if the GPU dropped work
 * ```
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** The GPU reported an error no error scope caught: the work around it was not done. */
export class DeviceError extends Error {
  override name = "DeviceError";
  constructor(readonly gpuMessage: string) {
    super(`the GPU rejected work (results would be wrong): ${gpuMessage.split("\n")[0]}`);
  }
}

const firstErrors = new WeakMap<GPUDevice, string>();
const watched = new WeakSet<GPUDevice>();

/** Starts recording `device`'s uncaught errors (idempotent). */
export function watchDeviceErrors(device: GPUDevice): void {
  if (watched.has(device)) return;
  watched.add(device);
  device.addEventListener("uncapturederror", (event) => {
    if (!firstErrors.has(device)) {
      firstErrors.set(device, (event as GPUUncapturedErrorEvent).error.message);
    }
  });
}

/**
 * Throws a {@linkcode DeviceError} for the first uncaught error `device` reported since the last
 * call (the error is reported once). The event arrives asynchronously: call this after awaiting
 * the work's results (a readback), as the training loop does.
 */
export function throwIfDeviceError(device: GPUDevice | undefined): void {
  if (!device) return;
  const message = firstErrors.get(device);
  if (message === undefined) return;
  firstErrors.delete(device);
  throw new DeviceError(message);
}

/** {@linkcode throwIfDeviceError} for the active tfjs backend's device (none but on webgpu). */
export function throwIfBackendDeviceError(): void {
  if (tf.getBackend() !== "webgpu") return;
  throwIfDeviceError((tf.backend() as WebGPUBackend).device);
}
