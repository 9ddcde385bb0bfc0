import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { resolveDataSource } from "@webtune/data";
import { createResNet, type ResNet18 } from "@webtune/models";
import { setupBackend } from "./backend.ts";
import { disposeBatch, toDevice } from "./batches.ts";
import { buildParamGroups } from "./param_groups.ts";
import { precompile } from "./precompile.ts";
import { prepareRun, runTraining } from "./run.ts";
import { defaultRunConfig } from "./run_config.ts";
import { Sgd } from "./sgd.ts";
import { lcg, TinyModel } from "./test_util.ts";
import { trainStep } from "./train_step.ts";

await setupBackend();

const SIZE = 32, BATCH = 4;

function seededResNet(): ResNet18 {
  return createResNet("resnet18", { numClasses: 2, random: lcg(3) });
}

function hostBatch(seed: number) {
  const random = lcg(seed);
  return {
    x: Float32Array.from({ length: BATCH * SIZE * SIZE * 3 }, () => random() * 2 - 1),
    shape: [BATCH, SIZE, SIZE, 3] as [number, number, number, number],
    labels: Int32Array.from({ length: BATCH }, (_, i) => i % 2),
  };
}

/** Every float tensor of the model and the optimizer's buffers, read back, by name. */
async function trainingState(model: ResNet18, sgd: Sgd): Promise<Map<string, Float32Array>> {
  const state = new Map<string, Float32Array>();
  for (const [name, v] of model.variables) state.set(name, (await v.data()) as Float32Array);
  for (const [name, b] of sgd.momentumBuffers) {
    state.set(`momentum:${name}`, (await b.data()) as Float32Array);
  }
  return state;
}

function assertBitIdentical(a: Map<string, Float32Array>, b: Map<string, Float32Array>) {
  assertEquals([...a.keys()], [...b.keys()]);
  for (const [name, x] of a) {
    const y = b.get(name)!;
    const differing = x.findIndex((v, i) => !Object.is(v, y[i]));
    assertEquals(
      differing,
      -1,
      `${name} differs at ${differing}: ${x[differing]} vs ${y[differing]}`,
    );
  }
}

Deno.test("precompile compiles the step's pipelines and leaves weights, running statistics, counters and momentum bit-identical", async () => {
  const model = seededResNet();
  const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 0.01 }), { momentum: 0.9 });
  const batch = toDevice(hostBatch(1));
  // One real step first: running statistics, counters and momentum buffers are no longer their
  // initial values, so a pass that overwrote them with anything would show.
  await trainStep(model, batch, sgd);
  const before = await trainingState(model, sgd);
  const countersBefore = new Map(model.numBatchesTracked);
  const variablesBefore = tf.memory().numTensors;

  const report = await precompile(model, { size: SIZE, trainBatch: BATCH, evalBatch: 3 });

  assert(report.compiled);
  // Batch 3 in eval mode is a new shape set: at least its BatchNorm pipelines are new.
  assert(report.pipelines > 0, `expected new pipelines, got ${report.pipelines}`);
  assertEquals(tf.env().getBool("WEBGPU_ENGINE_COMPILE_ONLY"), false);
  assertEquals(model.numBatchesTracked, countersBefore);
  assertEquals(tf.memory().numTensors, variablesBefore, "the pass leaks no tensors");
  assertBitIdentical(await trainingState(model, sgd), before);
  disposeBatch(batch);
  sgd.dispose();
  model.dispose();
});

Deno.test("a training step after precompile gives bit-identical weights to one without it", async () => {
  const batch = toDevice(hostBatch(2));
  const results: Map<string, Float32Array>[] = [];
  for (const warm of [false, true]) {
    const model = seededResNet();
    const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 0.05 }), { weightDecay: 1e-3 });
    if (warm) await precompile(model, { size: SIZE, trainBatch: BATCH, evalBatch: BATCH });
    const step = await trainStep(model, batch, sgd);
    assert(Number.isFinite(step.lossSum));
    results.push(await trainingState(model, sgd));
    assertEquals(model.numBatchesTracked.get("bn1.num_batches_tracked"), 1);
    sgd.dispose();
    model.dispose();
  }
  assertBitIdentical(results[1], results[0]);
  disposeBatch(batch);
});

/** A model whose training forward pass re-assigns a buffer variable, then fails. */
class FailingModel extends TinyModel {
  readonly running = tf.variable(tf.tensor1d([1, 2, 3]), false);
  override forward(x: tf.Tensor4D): { logits: tf.Tensor2D } {
    this.running.assign(tf.tensor1d([7, 8, 9]));
    if (x.shape[0] > 0) throw new Error("forward failed");
    return super.forward(x);
  }
  override dispose(): void {
    super.dispose();
    this.running.dispose();
  }
}

/** tfjs-webgpu pipelines still compiling (promises in its cache). */
function pendingPipelines(): number {
  const cache = (tf.backend() as unknown as { pipelineCache: Record<string, unknown> })
    .pipelineCache;
  return Object.values(cache).filter((p) => p instanceof Promise).length;
}

Deno.test("precompile puts the state back and leaves compile-only mode when the pass throws", async () => {
  const model = new FailingModel(2, lcg(5));
  await assertRejects(
    () => precompile(model, { size: 4, trainBatch: 2 }),
    Error,
    "forward failed",
  );
  assertEquals(tf.env().getBool("WEBGPU_ENGINE_COMPILE_ONLY"), false);
  // Left pending, a pipeline would make the next real dispatch of its program throw.
  assertEquals(pendingPipelines(), 0);
  assertEquals(Array.from(await model.running.data()), [1, 2, 3]);
  model.dispose();
});

/** A model whose forward pass makes a variable from its (unwritten) outputs. */
class CreatingModel extends TinyModel {
  made?: tf.Variable;
  override forward(x: tf.Tensor4D): { logits: tf.Tensor2D } {
    const out = super.forward(x);
    this.made ??= tf.variable(tf.mul(out.logits, 2), false);
    return out;
  }
}

Deno.test("precompile refuses a pass that creates variables, and frees them", async () => {
  const model = new CreatingModel(2, lcg(6));
  await assertRejects(
    () => precompile(model, { size: 4, trainBatch: 2 }),
    Error,
    "created variables",
  );
  assert(model.made?.isDisposed);
  assertEquals(tf.env().getBool("WEBGPU_ENGINE_COMPILE_ONLY"), false);
  assertEquals(pendingPipelines(), 0);
  model.dispose();
});

Deno.test("a run prepared with precompile trains exactly as one without it", async () => {
  const data = await resolveDataSource("synthetic", { synthetic: { perClass: 3, imageSize: 40 } });
  const config = {
    ...defaultRunConfig("scratch"),
    imageSize: SIZE,
    batchSize: BATCH,
    epochs: 1,
    lr: 0.05,
  };
  const outcomes = [];
  for (const ahead of [false, true]) {
    const run = await prepareRun(config, data, { precompile: ahead });
    assertEquals(run.precompiled?.compiled ?? false, ahead);
    const result = await runTraining(run);
    const weights = new Map<string, Float32Array>();
    for (const [name, v] of run.model.variables) {
      weights.set(name, (await v.data()) as Float32Array);
    }
    outcomes.push({
      metrics: result.epochs.map(({ seconds: _, examples_per_sec: __, ...m }) => m),
      weights,
    });
    run.dispose();
  }
  assertEquals(outcomes[1].metrics, outcomes[0].metrics);
  assertBitIdentical(outcomes[1].weights, outcomes[0].weights);
});
