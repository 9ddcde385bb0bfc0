import { assertEquals, assertThrows } from "@std/assert";
import { DeviceError, throwIfDeviceError, watchDeviceErrors } from "./device_errors.ts";

Deno.test("throwIfDeviceError reports an uncaught validation error once, then nothing", async () => {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("no WebGPU adapter (install mesa-vulkan-drivers)");
  const device = await adapter.requestDevice();
  watchDeviceErrors(device);
  watchDeviceErrors(device); // idempotent: one listener
  throwIfDeviceError(device); // nothing yet
  const reported = new Promise((resolve) =>
    device.addEventListener("uncapturederror", resolve, { once: true })
  );
  // Invalid: a buffer with no usage.
  device.createBuffer({ size: 16, usage: 0 });
  await reported;
  const error = assertThrows(() => throwIfDeviceError(device), DeviceError);
  assertEquals(error.message.startsWith("the GPU rejected work (results would be wrong): "), true);
  throwIfDeviceError(device); // reported once
  throwIfDeviceError(undefined); // no device (cpu, webgl): nothing to check
  device.destroy();
});
