/**
 * Compiles a run's GPU pipelines before its first step, without computing anything: a forward
 * and backward pass (and an eval forward pass) with the run's real shapes in tfjs-webgpu's
 * compile-only mode (`WEBGPU_ENGINE_COMPILE_ONLY`), which creates every pipeline with
 * `createComputePipelineAsync` and dispatches nothing.
 *
 * Where pipeline creation is truly asynchronous (Chromium: the GPU process compiles), the run's
 * pipelines compile in parallel instead of one by one at their first dispatch. Where it is not
 * (Deno 2.9's wgpu compiles on the calling thread inside `createShaderModule` and
 * `createComputePipelineAsync`, measured), the work only moves ahead of the first step; the
 * step's numerics are the same either way. Nor does it reach llvmpipe's own code generation,
 * which happens at a pipeline's first dispatch (measured: after this pass a ResNet-18 step still
 * spends most of a cold start there; Mesa's shader cache keeps the result).
 *
 * **No other GPU work may run until the returned promise resolves**: tfjs-webgpu throws ("Please
 * call checkCompileCompletionAsync") when a real dispatch meets a pipeline still compiling. So
 * `prepareRun` awaits it before decoding (decoding dispatches tf ops on the same backend); the
 * first version overlapped the two and failed that way in CI.
 *
 * Nothing the pass computes is real (outputs are never written), so it must not leave any trace
 * in the training state: every registered variable that the pass re-assigns (BatchNorm running
 * statistics in `train` mode) gets its previous buffer back, and host-side counters
 * (`numBatchesTracked`) are restored. No optimizer runs: applying gradients in this mode would
 * overwrite the weights with unwritten buffers.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { TrainableModel } from "./model.ts";
import { type BnMode, computeGradients, disposeGradients } from "./train_step.ts";

/** The tfjs flag that turns dispatches into pipeline compiles only. */
const COMPILE_ONLY = "WEBGPU_ENGINE_COMPILE_ONLY";

/** The shapes a run will use; one pipeline set is compiled per distinct batch size. */
export interface PrecompileShapes {
  /** Image side in pixels (train and test crops share it). */
  size: number;
  /** Examples per forward/backward pass in training (the micro-batch). */
  trainBatch: number;
  /** Examples per eval forward pass; none when omitted. */
  evalBatch?: number;
  /** BatchNorm mode of the training step. */
  mode?: BnMode;
  /** The loss's label smoothing (a different loss graph when non-zero). */
  labelSmoothing?: number;
}

/** What {@linkcode precompile} did. */
export interface PrecompileReport {
  /** False when the backend is not webgpu (nothing to compile ahead). */
  compiled: boolean;
  /** Pipelines the pass created (new to the backend's cache). */
  pipelines: number;
  /** Milliseconds the pass held the calling thread (issuing the compiles). */
  issueMs: number;
  /** Milliseconds from the start until every pipeline was ready. */
  totalMs: number;
}

/** The parts of tfjs-webgpu's backend the pass uses. */
interface CompilingBackend {
  pipelineCache: Record<string, unknown>;
  checkCompileCompletionAsync(): Promise<void>;
}

/** The model's host-side state that a training-mode forward pass changes, if it has any. */
interface HostCounters {
  numBatchesTracked?: Map<string, number>;
}

/**
 * Compiles the pipelines of `model`'s training step (and eval pass) for `shapes`, leaving every
 * weight, BatchNorm running statistic and counter as it was. Resolves when the pipelines are
 * ready; the calling thread is busy only while the compiles are issued. A no-op off webgpu.
 *
 * @example
 * ```ts ignore
 * await precompile(model, { size: 224, trainBatch: 128, evalBatch: 128 });
 * await decodeImages(); // only now: a dispatch must not meet a pipeline still compiling
 * ```
 */
export async function precompile(
  model: TrainableModel,
  shapes: PrecompileShapes,
): Promise<PrecompileReport> {
  const started = performance.now();
  if (tf.getBackend() !== "webgpu") {
    return { compiled: false, pipelines: 0, issueMs: 0, totalMs: 0 };
  }
  const backend = tf.backend() as unknown as CompilingBackend;
  const before = Object.keys(backend.pipelineCache).length;
  try {
    compileOnlyPass(model, shapes);
  } catch (error) {
    // The pipelines issued before the throw sit in tfjs's cache as promises until this settles
    // them; left there, the next real dispatch of one of those programs would throw.
    await backend.checkCompileCompletionAsync().catch(() => {});
    throw error;
  }
  const issueMs = performance.now() - started;
  await backend.checkCompileCompletionAsync();
  return {
    compiled: true,
    pipelines: Object.keys(backend.pipelineCache).length - before,
    issueMs,
    totalMs: performance.now() - started,
  };
}

/** The passes in compile-only mode, with the training state put back afterwards. */
function compileOnlyPass(model: TrainableModel, shapes: PrecompileShapes): void {
  const restore = snapshotState(model);
  const { size, trainBatch, evalBatch, mode = "train", labelSmoothing = 0 } = shapes;
  const env = tf.env();
  const wasCompileOnly = env.getBool(COMPILE_ONLY);
  // Zeros are created while dispatches still run, so that they hold real (zero) data.
  const inputs = tf.tidy(() => ({
    x: tf.zeros([trainBatch, size, size, 3]) as tf.Tensor4D,
    labels: tf.zeros([trainBatch], "int32") as tf.Tensor1D,
    evalX: evalBatch ? tf.zeros([evalBatch, size, size, 3]) as tf.Tensor4D : undefined,
  }));
  env.set(COMPILE_ONLY, true);
  try {
    const g = computeGradients(model, inputs, model.parameters(), mode, labelSmoothing);
    disposeGradients(g);
    if (inputs.evalX) {
      const evalX = inputs.evalX;
      tf.tidy(() => {
        const { logits } = model.forward(evalX, "eval");
        // evaluate() reads the softmax and the argmax.
        tf.softmax(logits);
        tf.argMax(logits, 1);
      });
    }
  } finally {
    env.set(COMPILE_ONLY, wasCompileOnly);
    tf.dispose([inputs.x, inputs.labels, ...(inputs.evalX ? [inputs.evalX] : [])]);
    restore();
  }
}

/**
 * Remembers every registered variable's buffer (holding a reference, so a re-assignment cannot
 * free it) and the model's host counters; the returned function puts back what changed.
 */
function snapshotState(model: TrainableModel): () => void {
  const registered = () => Object.values(tf.engine().state.registeredVariables) as tf.Variable[];
  const held = registered().map((variable) => ({
    variable,
    dataId: variable.dataId,
    value: tf.keep(tf.clone(variable)),
  }));
  const known = new Set(held.map((h) => h.variable));
  const counters = (model as HostCounters).numBatchesTracked;
  const countersBefore = counters ? new Map(counters) : undefined;
  return () => {
    for (const { variable, dataId, value } of held) {
      if (!variable.isDisposed && variable.dataId !== dataId) variable.assign(value);
      value.dispose();
    }
    if (counters && countersBefore) {
      counters.clear();
      for (const [name, count] of countersBefore) counters.set(name, count);
    }
    const created = registered().filter((v) => !known.has(v));
    if (created.length > 0) {
      // A variable made from unwritten buffers must not live on.
      for (const v of created) v.dispose();
      throw new Error(
        `precompile: the compile-only pass created variables (${
          created.map((v) => v.name).join(", ")
        }); nothing may be created from its outputs`,
      );
    }
  };
}
