/**
 * Facts derived from a {@linkcode PretrainedConfig} (declared beside each architecture, e.g.
 * `RESNET18_IMAGENET`), and ResNet geometry that memory checks need.
 *
 * @module
 */
import type { PretrainedConfig } from "./resnet18.ts";

/**
 * The side of the test transform's `Resize([r, r])` for a crop of `imageSize`: the config's
 * `testResize` scaled like the crop (256 at 224, 73 at 64), as d2l scales it.
 *
 * @example
 * ```ts
 * import { RESNET18_IMAGENET, testResizeFor } from "@webtune/models";
 * console.log(testResizeFor(RESNET18_IMAGENET, 64)); // 73
 * ```
 */
export function testResizeFor(config: PretrainedConfig, imageSize: number): number {
  return Math.floor((config.testResize * imageSize) / config.inputSize);
}

/**
 * Bytes of a ResNet's largest tensor for a batch: the stem's output (`conv1`/`bn1`/`relu`,
 * N × S/2 × S/2 × 64 float32), which every forward and backward pass holds in one buffer.
 *
 * @example
 * ```ts
 * import { largestActivationBytes } from "@webtune/models";
 * console.log(largestActivationBytes(1, 224) / 2 ** 20); // 3.0625
 * ```
 */
export function largestActivationBytes(batchSize: number, imageSize: number): number {
  const side = Math.ceil(imageSize / 2);
  return batchSize * side * side * 64 * 4;
}
