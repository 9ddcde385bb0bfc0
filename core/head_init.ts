import * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "@webtune/models";

/**
 * Exercise 4 of the chapter: start the new head from the source classifier's row for a class the
 * source already knows (ImageNet index 934, "hotdog").
 *
 * The target label `targetClass` gets the source row (`fc.weight[sourceClass]`, `fc.bias[sourceClass]`)
 * unchanged. Every other target label ("not-hotdog") gets the mean of the other 999 source rows
 * and biases. Why the mean: "not-hotdog" stands for "any other ImageNet class", and the 2-way
 * softmax then compares the hot-dog logit with the logit of an average other class — so before
 * any training the model already says "hotdog" exactly when the source model scores hot dog above
 * a typical class. A zero row would instead compare against a constant 0, whose scale has nothing
 * to do with the source logits; the negated hot-dog row would double-count the same evidence.
 *
 * @example
 * ```ts
 * initHeadFromSourceClass(model, imagenetStateDict, 934, classNames.indexOf("hotdog"));
 * ```
 */
export function initHeadFromSourceClass(
  model: { variables: Map<string, tf.Variable>; numClasses: number },
  source: StateDict,
  sourceClass: number,
  targetClass: number,
): void {
  const weight = source.get("fc.weight"), bias = source.get("fc.bias");
  if (!weight || !bias) throw new Error("the source weights have no fc.weight/fc.bias");
  const [rows, features] = weight.shape;
  if (sourceClass < 0 || sourceClass >= rows) {
    throw new Error(`source class ${sourceClass} is outside the source fc's ${rows} classes`);
  }
  if (targetClass < 0 || targetClass >= model.numClasses) {
    throw new Error(
      `target class ${targetClass} is outside the model's ${model.numClasses} classes`,
    );
  }
  const w = weight.data as Float32Array, b = bias.data as Float32Array;
  const meanRow = new Float32Array(features);
  let meanBias = 0;
  for (let r = 0; r < rows; r++) {
    if (r === sourceClass) continue;
    for (let f = 0; f < features; f++) meanRow[f] += w[r * features + f] / (rows - 1);
    meanBias += b[r] / (rows - 1);
  }
  // tfjs layout of a Linear weight is [in, out].
  const newWeight = new Float32Array(features * model.numClasses);
  const newBias = new Float32Array(model.numClasses);
  for (let c = 0; c < model.numClasses; c++) {
    const isTarget = c === targetClass;
    for (let f = 0; f < features; f++) {
      newWeight[f * model.numClasses + c] = isTarget ? w[sourceClass * features + f] : meanRow[f];
    }
    newBias[c] = isTarget ? b[sourceClass] : meanBias;
  }
  const fcWeight = model.variables.get("fc.weight")!, fcBias = model.variables.get("fc.bias")!;
  tf.tidy(() => {
    fcWeight.assign(tf.tensor2d(newWeight, [features, model.numClasses]));
    fcBias.assign(tf.tensor1d(newBias));
  });
}
