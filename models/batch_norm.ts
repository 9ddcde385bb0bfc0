/**
 * `torch.nn.BatchNorm2d` (eps 1e-5, momentum 0.1, affine, tracking running stats) on NHWC
 * tensors.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * How a forward pass treats BatchNorm:
 * - `train`: normalise with the batch statistics and update the running statistics
 *   (`model.train()` in PyTorch);
 * - `eval`: normalise with the running statistics (`model.eval()`);
 * - `frozen`: training for everything else, but BatchNorm normalises with the running statistics
 *   and leaves them alone (fine-tuning with frozen BN). ResNet-18 has no dropout, so `eval` and
 *   `frozen` compute the same numbers; the distinction is for callers and future models.
 */
export type ForwardMode = "train" | "eval" | "frozen";

/** PyTorch's `BatchNorm2d` defaults. */
export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

/** The four float tensors of one BatchNorm layer, 1-D of length C. */
export interface BatchNormVariables {
  weight: tf.Variable;
  bias: tf.Variable;
  runningMean: tf.Variable;
  runningVar: tf.Variable;
}

/** What {@linkcode batchNorm} applies after normalising (ResNet's BN → (+ shortcut) → ReLU). */
export interface BatchNormEpilogue {
  /** Added to the normalised output before the ReLU (a residual block's shortcut). */
  residual?: tf.Tensor4D;
  /** Apply ReLU last. */
  relu?: boolean;
}

/**
 * Normalises `x` [N,H,W,C] per channel, then adds `residual` and applies ReLU if asked. In
 * `train` mode it also moves the running statistics toward the batch's by `Variable.assign`
 * (allowed inside `tf.variableGrads`: the assigned data lives on by reference count after the
 * surrounding tidy disposes the tensor object). The caller counts the batch in
 * `num_batches_tracked`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { batchNorm } from "./batch_norm.ts";
 * const c = 4;
 * const bn = {
 *   weight: tf.variable(tf.ones([c])), bias: tf.variable(tf.zeros([c])),
 *   runningMean: tf.variable(tf.zeros([c]), false), runningVar: tf.variable(tf.ones([c]), false),
 * };
 * const y = batchNorm(tf.randomNormal([2, 3, 3, c]), bn, "train", { relu: true }); // stats updated
 * ```
 */
export function batchNorm(
  x: tf.Tensor4D,
  bn: BatchNormVariables,
  mode: ForwardMode,
  epilogue: BatchNormEpilogue = {},
): tf.Tensor4D {
  if (mode !== "train") {
    // y = x * scale + shift with scale = gamma / sqrt(var + eps), shift = beta - mean * scale:
    // two full-size ops, and differentiable with the gradients models/gradients.ts registers
    // (tf.batchNorm's FusedBatchNorm kernel has no gradient registered in Deno).
    const scale = tf.mul(bn.weight, tf.rsqrt(tf.add(bn.runningVar, BN_EPS)));
    const shift = tf.sub(bn.bias, tf.mul(bn.runningMean, scale));
    let y: tf.Tensor4D = tf.add(tf.mul(x, scale), shift);
    if (epilogue.residual) y = tf.add(y, epilogue.residual);
    return epilogue.relu ? tf.relu(y) : y;
  }

  const [n, h, w, c] = x.shape;
  const count = n * h * w;
  if (count < 2) {
    // PyTorch refuses too: the unbiased variance of one value is undefined.
    throw new Error(
      `batch norm: expected more than 1 value per channel when training, got input shape ` +
        `[${n},${c},${h},${w}] (NCHW)`,
    );
  }
  const inputs: tf.Tensor[] = [x, bn.weight, bn.bias];
  if (epilogue.residual) inputs.push(epilogue.residual);
  const trainOp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xIn, weight, bias, residual] = args as tf.Tensor[];
    const { y, xHat, invStd } = trainForward(xIn as tf.Tensor4D, weight, bias, bn);
    let out: tf.Tensor = y;
    if (residual) out = tf.add(out, residual);
    if (epilogue.relu) out = tf.relu(out);
    save([xHat, invStd, weight, out]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xHatS, invStdS, weightS, outS] = saved;
        return trainBackward(dy, xHatS, invStdS, weightS, epilogue.relu ? outS : undefined, count)
          .slice(0, inputs.length);
      },
    };
  });
  return trainOp(...inputs) as tf.Tensor4D;
}

/**
 * Batch-statistics forward: y = x̂·γ + β with x̂ = (x − mean)/√(var + eps), the biased variance.
 * Also folds the batch statistics into the running ones (PyTorch: unbiased variance).
 */
function trainForward(
  x: tf.Tensor4D,
  weight: tf.Tensor,
  bias: tf.Tensor,
  bn: BatchNormVariables,
): { y: tf.Tensor; xHat: tf.Tensor; invStd: tf.Tensor } {
  const count = x.shape[0] * x.shape[1] * x.shape[2];
  const mean = tf.mean(x, [0, 1, 2]);
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), [0, 1, 2]); // biased, as used to normalise
  const invStd = tf.rsqrt(tf.add(variance, BN_EPS));
  const xHat = tf.mul(centered, invStd);
  const y = tf.add(tf.mul(xHat, weight), bias);
  tf.tidy(() => {
    // running = (1 - momentum) * running + momentum * batch, with the unbiased variance.
    const m = BN_MOMENTUM;
    bn.runningMean.assign(tf.add(tf.mul(bn.runningMean, 1 - m), tf.mul(mean, m)));
    bn.runningVar.assign(
      tf.add(tf.mul(bn.runningVar, 1 - m), tf.mul(variance, (m * count) / (count - 1))),
    );
  });
  return { y, xHat, invStd };
}

/**
 * The gradient of batch-statistics BatchNorm (+ residual, + ReLU) in closed form, as PyTorch's
 * `batch_norm_backward` computes it. Autodiff through the statistics gave the same numbers with
 * three times the full-size ops and a full-size host array uploaded per Mean gradient.
 *
 * With g = dy (masked by out > 0 after a ReLU): dβ = Σg, dγ = Σg·x̂, and
 * dx = γ/σ · (g − Σg/M − x̂·Σ(g·x̂)/M); the residual's gradient is g.
 */
function trainBackward(
  dy: tf.Tensor,
  xHat: tf.Tensor,
  invStd: tf.Tensor,
  weight: tf.Tensor,
  reluOut: tf.Tensor | undefined,
  count: number,
): tf.Tensor[] {
  // tf.relu's own gradient is dy · step(x); out > 0 exactly where its input is.
  const g = reluOut ? tf.mul(dy, tf.step(reluOut)) : dy;
  const sumG = tf.sum(g, [0, 1, 2]);
  const sumGXHat = tf.sum(tf.mul(g, xHat), [0, 1, 2]);
  const k = tf.mul(weight, invStd);
  const dx = tf.mul(
    tf.sub(tf.sub(g, tf.div(sumG, count)), tf.mul(xHat, tf.div(sumGXHat, count))),
    k,
  );
  return [dx, sumGXHat, sumG, g];
}
