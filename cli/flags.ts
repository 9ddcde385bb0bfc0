/**
 * Flags that several commands share, declared once.
 *
 * @module
 */
import { RESNET18_IMAGENET } from "@webtune/models";

/** `--backend`, shared by every command that computes. */
export const BACKEND_FLAG = {
  kind: "enum",
  choices: ["webgpu", "cpu"],
  default: "webgpu",
  help: "where to compute (cpu is slow and never chosen silently)",
} as const;

/** `--data` of the training commands. */
export const DATA_FLAG = {
  kind: "string",
  default: "hotdog",
  placeholder: "SRC",
  help: "DIR | ZIP | URL | synthetic | hotdog (d2l's hotdog.zip, downloaded and cached)",
} as const;

/** `--weights` of `finetune` (and `compare`). */
export const WEIGHTS_FLAG = {
  kind: "string",
  default: RESNET18_IMAGENET.url,
  placeholder: "FILE|URL",
  help: "source model: .pth or .safetensors file, or URL (downloaded into the cache)",
} as const;

/** `--model` of `predict` and `eval`: a finished run directory. */
export const MODEL_FLAG = {
  kind: "path",
  what: "directory",
  required: true,
  help: "run directory with model.safetensors and config.json",
} as const;
