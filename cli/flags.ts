/**
 * Flags that several commands share, declared once.
 *
 * @module
 */
import { type Arch, pretrainedConfig } from "@webtune/models";
import { type BackendName, KERNEL_CHOICES, type KernelChoice, setupBackend } from "@webtune/core";
import { defaultKernelStore } from "./kernel_store.ts";

/** `--backend`, shared by every command that computes. */
export const BACKEND_FLAG = {
  kind: "enum",
  choices: ["webgpu", "cpu"],
  default: "webgpu",
  help: "where to compute (cpu is slow and never chosen silently)",
} as const;

/** `--kernels`, of every command that computes on webgpu. */
export const KERNELS_FLAG = {
  kind: "enum",
  choices: KERNEL_CHOICES,
  default: "auto",
  help:
    "webgpu kernels: auto (webtune's where they are faster) | fast (webtune's) | stock (tfjs's)",
} as const;

/** `--data` of the training commands. */
export const DATA_FLAG = {
  kind: "string",
  default: "hotdog",
  placeholder: "SRC",
  help: "DIR | ZIP | URL | synthetic | hotdog (d2l's hotdog.zip, downloaded and cached)",
} as const;

/** `--weights` of `finetune` (and `compare`); see {@linkcode sourceWeights} for the default. */
export const WEIGHTS_FLAG = {
  kind: "string",
  placeholder: "FILE|URL",
  help: "source model: .pth or .safetensors file, or URL (downloaded into the cache); " +
    "default: torchvision's ImageNet weights of --arch (resnet18)",
} as const;

/** `--weights` as given, else torchvision's ImageNet checkpoint of `arch` (ResNet-18 default). */
export function sourceWeights(weights: unknown, arch: Arch | undefined): string {
  return weights === undefined ? pretrainedConfig(arch ?? "resnet18").url : String(weights);
}

/**
 * The backend for a command. The process environment goes along so that a headless Mesa stays
 * quiet (see core's `quietMesaDeviceSelect`); `--kernels auto` keeps its measured choices in the
 * cache directory (cli/kernel_store.ts). `retuneKernels` measures them again (`bench`).
 */
export function setupCommandBackend(
  backend: unknown,
  kernels?: unknown,
  { retuneKernels = false } = {},
) {
  return setupBackend({
    backend: backend as BackendName,
    kernels: kernels as KernelChoice | undefined,
    env: Deno.env,
    kernelStore: defaultKernelStore(),
    retuneKernels,
  });
}

/** `--model` of `predict` and `eval`: a finished run directory. */
export const MODEL_FLAG = {
  kind: "path",
  what: "directory",
  required: true,
  help: "run directory with model.safetensors and config.json",
} as const;
