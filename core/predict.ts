import * as tf from "@tensorflow/tfjs-core";
import { normalizeInto, type RgbImage, testCrop } from "@webtune/data";
import { createResNet18, loadStateDict, readSafetensors, type ResNet18 } from "@webtune/models";
import type { HostBatch } from "./batches.ts";
import type { ModelConfig } from "./run.ts";

/** A trained model and the `config.json` that says how to feed it. */
export interface TrainedModel {
  model: ResNet18;
  config: ModelConfig;
}

/**
 * Rebuilds a model from a run's `model.safetensors` and `config.json` (the files the CLI writes
 * and the web page downloads). Both readers are bytes-in, so this works in Deno and browsers.
 *
 * @example
 * ```ts ignore
 * const trained = loadTrainedModel(await Deno.readTextFile("run/config.json"),
 *   await Deno.readFile("run/model.safetensors"), "run/model.safetensors");
 * ```
 */
export function loadTrainedModel(
  configJson: string,
  weights: Uint8Array,
  weightsName: string,
  configName = "config.json",
): TrainedModel {
  let config: ModelConfig;
  try {
    config = JSON.parse(configJson);
  } catch (e) {
    throw new Error(`${configName}: not valid JSON (${(e as Error).message})`);
  }
  if (
    config?.architecture !== "resnet18" || !Array.isArray(config.class_names) ||
    !Number.isInteger(config.image_size)
  ) {
    throw new Error(
      `${configName}: not a webtune model config (architecture, class_names, image_size)`,
    );
  }
  const { tensors } = readSafetensors(weights, weightsName);
  // The initial values are overwritten by the checkpoint; the generator only fills the shapes.
  const model = createResNet18({ numClasses: config.class_names.length, random: () => 0.5 });
  try {
    loadStateDict(model, tensors);
  } catch (e) {
    model.dispose();
    throw new Error(`${weightsName}: ${(e as Error).message}`);
  }
  return { model, config };
}

/**
 * d2l's test transform (`Resize([r, r])`, `CenterCrop(size)`, `ToTensor`, `Normalize`) of
 * decoded images into one batch — the same code path as the test loader's.
 */
export function testTransformBatch(images: RgbImage[], size: number): HostBatch {
  const pixels = size * size * 3;
  const x = new Float32Array(images.length * pixels);
  images.forEach((img, i) => normalizeInto(testCrop(img, size), x, i * pixels));
  return { x, shape: [images.length, size, size, 3], labels: new Int32Array(images.length) };
}

/** Softmax class probabilities of each image (eval mode), one array per image. */
export async function predictProbabilities(
  model: ResNet18,
  images: RgbImage[],
  size: number,
): Promise<Float32Array[]> {
  const batch = testTransformBatch(images, size);
  const probs = tf.tidy(() =>
    tf.softmax(model.forward(tf.tensor4d(batch.x, batch.shape), "eval").logits)
  );
  const flat = await probs.data() as Float32Array;
  probs.dispose();
  const k = model.numClasses;
  return images.map((_, i) => flat.slice(i * k, (i + 1) * k));
}
