/**
 * A whole ResNet-18 `eval` forward (inference step) with and without the fold's prepared
 * Winograd F(4×4, 3×3) filters (conv2d_winograd4.ts), and a training step, interleaved in one
 * process under `--kernels fast`: the step-level numbers behind F(4×4) in `eval` and the
 * inference ÷ training ratio, steadier on the shared machine than two `deno task bench` runs.
 *
 * ```sh
 * deno run -A cli/bench_infer_step.ts --size 224 --rounds 3
 * ```
 *
 * `f4`: the fold prepares U (CONV_PREPARE_FILTER_KERNEL), so the 3×3 stride-1 convs run F(4×4)
 * where it is offered; `no-prepare`: that kernel unregistered, so they run what a training
 * forward would (F(2×2) from 128 channels and 256 tiles, its filter transform made per call;
 * else the direct `texture` kernel). Each round refolds (releaseEvalCache, one untimed forward),
 * then times `--steps` forwards per configuration, and `--steps` training steps; CPU time of
 * all the process's threads (cli/bench_dx.ts `cpuMs`) and wall time, best of the rounds.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { parseArgs } from "node:util";
import { describeAdapter, disposeBatch, setupBackend, trainStep } from "@webtune/core";
import { CONV_PREPARE_FILTER_KERNEL } from "@webtune/models";
import { cpuMs } from "./bench_dx.ts";
import { evalForward, setupStep } from "./bench_setup.ts";

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "224" },
      batch: { type: "string", default: "16" },
      rounds: { type: "string", default: "3" },
      steps: { type: "string", default: "2" },
    },
  });
  const size = Number(values.size), batch = Number(values.batch), steps = Number(values.steps);
  console.log(describeAdapter(await setupBackend({ backend: "webgpu", kernels: "fast" })));
  const { model, sgd, device } = setupStep("resnet18", size, batch);
  const prepare = tf.getKernel(CONV_PREPARE_FILTER_KERNEL, "webgpu");
  if (!prepare) throw new Error("bench_infer_step: webtune's kernels are not registered");
  const infer = () => evalForward(model, device.x);
  const timed = async (f: () => Promise<unknown>) => {
    const [c0, w0] = [cpuMs(), performance.now()];
    for (let i = 0; i < steps; i++) await f();
    return { cpu: (cpuMs() - c0) / steps, wall: (performance.now() - w0) / steps };
  };
  const configs: Record<string, (on: boolean) => void> = {
    f4: () => {},
    "no-prepare": (on) => {
      if (on) tf.unregisterKernel(CONV_PREPARE_FILTER_KERNEL, "webgpu");
      else tf.registerKernel(prepare);
    },
  };
  const best: Record<string, { cpu: number; wall: number }> = {};
  const keep = (name: string, t: { cpu: number; wall: number }) => {
    const b = best[name] ?? { cpu: Infinity, wall: Infinity };
    best[name] = { cpu: Math.min(b.cpu, t.cpu), wall: Math.min(b.wall, t.wall) };
  };
  await trainStep(model, device, sgd); // compiles the training pipelines
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [name, toggle] of Object.entries(configs)) {
      toggle(true);
      try {
        model.releaseEvalCache();
        await infer(); // folds (and compiles, in the first round)
        keep(name, await timed(infer));
      } finally {
        toggle(false);
      }
    }
    await trainStep(model, device, sgd); // the eval forward above released nothing it needs
    keep("train", await timed(() => trainStep(model, device, sgd)));
  }
  const perSec = (ms: number) => (batch * 1000 / ms).toFixed(2);
  for (const [name, t] of Object.entries(best)) {
    console.log(
      `${size}px batch ${batch} ${name}: ${t.wall.toFixed(0)} ms wall (${perSec(t.wall)} img/s), ` +
        `${t.cpu.toFixed(0)} ms CPU`,
    );
  }
  const train = best.train.wall;
  console.log(
    `inference ÷ training (wall): f4 ${(train / best.f4.wall).toFixed(2)}, no-prepare ` +
      `${(train / best["no-prepare"].wall).toFixed(2)}; f4 over no-prepare: ` +
      `${(best["no-prepare"].wall / best.f4.wall).toFixed(2)}× wall, ` +
      `${(best["no-prepare"].cpu / best.f4.cpu).toFixed(2)}× CPU`,
  );
  disposeBatch(device);
  sgd.dispose();
  model.dispose();
}

if (import.meta.main) await main();
