import * as tf from "@tensorflow/tfjs-core";
import { type RgbImage, testTransformBatch } from "@webtune/data";
import type { ResNet18 } from "@webtune/models";
import type { ModelConfig } from "./run_dir.ts";

/**
 * Softmax class probabilities of each image (eval mode), one array per image, with the test
 * transform `config` (a run's `config.json`) describes: its size, test resize and mean/std.
 *
 * @example
 * ```ts ignore
 * const { model, config } = await new RunDir(denoFs, "runs/x").readModel();
 * const [p] = await predictProbabilities(model, [image], config);
 * ```
 */
export async function predictProbabilities(
  model: ResNet18,
  images: RgbImage[],
  config: Pick<ModelConfig, "image_size" | "test_resize" | "mean" | "std">,
): Promise<Float32Array[]> {
  const batch = testTransformBatch(images, {
    size: config.image_size,
    resize: config.test_resize,
    normalize: { mean: config.mean, std: config.std },
  });
  const probs = tf.tidy(() =>
    tf.softmax(model.forward(tf.tensor4d(batch.x, batch.shape), "eval").logits)
  );
  model.releaseEvalCache();
  const flat = await probs.data() as Float32Array;
  probs.dispose();
  const k = model.numClasses;
  return images.map((_, i) => flat.slice(i * k, (i + 1) * k));
}
