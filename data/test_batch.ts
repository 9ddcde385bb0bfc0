import type { RgbImage } from "./image.ts";
import { type Normalization, normalizeInto, testCrop } from "./transforms.ts";

/** The test transform's settings: crop size, the resize before it, and the normalisation. */
export interface TestTransform {
  size: number;
  resize: number;
  normalize: Normalization;
}

/**
 * d2l's test transform (`Resize([r, r])`, `CenterCrop(size)`, `ToTensor`, `Normalize`) of
 * decoded images into one NHWC batch — the same code path as the test loader's.
 *
 * @example
 * ```ts
 * import { rgbImage, testTransformBatch } from "@webtune/data";
 * const normalize = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
 * const batch = testTransformBatch([rgbImage(80, 60)], { size: 64, resize: 73, normalize });
 * console.log(batch.shape); // [1, 64, 64, 3]
 * ```
 */
export function testTransformBatch(
  images: readonly RgbImage[],
  transform: TestTransform,
): { x: Float32Array; shape: [number, number, number, 3] } {
  const { size, resize, normalize } = transform;
  const pixels = size * size * 3;
  const x = new Float32Array(images.length * pixels);
  images.forEach((img, i) => normalizeInto(testCrop(img, size, resize), x, i * pixels, normalize));
  return { x, shape: [images.length, size, size, 3] };
}
