/**
 * Training-mode BatchNorm (+ ReLU) forward and backward on a ResNet-18 step's BN shapes, timed in
 * one process with and without this session's two changes, interleaved: the numbers behind the
 * copy reuse of shared texture slots (texture_operands.ts `sharedSlots`) and the `invStd` and
 * `runningAverage` kernels (`BATCH_NORM_KERNELS` in @webtune/models).
 *
 * ```sh
 * deno run -A cli/bench_bn.ts              # 64 px, batch 16, wall time
 * deno run -A cli/bench_bn.ts --size 224 --cpu
 * ```
 *
 * `before`: every input copied into its texture, invStd and the running statistics as tfjs ops;
 * `after`: both changes. One sequence is `tf.grads` of `batchNorm(x)` seeded with a fixed dy,
 * alternating two inputs (so a slot never holds the first input already, as in a step). Its time
 * is (1 + `--calls` sequences, then a readback) minus (1 sequence, then a readback), divided by
 * `--calls`; rounds alternate the variants and each keeps its minimum (see cli/bench_dx.ts).
 * `--cpu` reads the CPU time of all the process's threads instead of wall time.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { parseArgs } from "node:util";
import { describeAdapter, setupBackend } from "@webtune/core";
import { operandCopyCount, registerFastKernels, setOperandCopyReuse } from "@webtune/core/kernels";
import { BATCH_NORM_KERNELS, batchNorm } from "@webtune/models";
import { benchClock, kernelBenchOptions } from "./bench_dx.ts";

/** ResNet-18's BatchNorm inputs (NHWC, without the batch) and how many a step has of each. */
function resnet18BnShapes(image: number): { hw: number; c: number; count: number }[] {
  const h = image / 4;
  return [
    { hw: image / 2, c: 64, count: 1 },
    { hw: h, c: 64, count: 4 },
    { hw: h / 2, c: 128, count: 5 },
    { hw: h / 4, c: 256, count: 5 },
    { hw: h / 8, c: 512, count: 5 },
  ];
}

const VARIANTS = ["before", "after"] as const;

/** Switches between the code without (`before`) and with (`after`) the two changes. */
function useVariant(variant: (typeof VARIANTS)[number]): void {
  setOperandCopyReuse(variant === "after");
  if (variant === "after") {
    registerFastKernels();
    return;
  }
  for (const name of [BATCH_NORM_KERNELS.invStd, BATCH_NORM_KERNELS.runningAverage]) {
    if (tf.getKernel(name, "webgpu")) tf.unregisterKernel(name, "webgpu");
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      ...kernelBenchOptions("64", "5"),
    },
  });
  const n = Number(values.batch), calls = Number(values.calls);
  const now = benchClock(values.cpu);
  console.log(describeAdapter(await setupBackend({ backend: "webgpu", env: Deno.env })));
  const totals = { before: 0, after: 0 };
  for (const { hw, c, count } of resnet18BnShapes(Number(values.size))) {
    const shape: [number, number, number, number] = [n, hw, hw, c];
    const bn = {
      weight: tf.variable(tf.randomUniform([c], 0.5, 1.5)),
      bias: tf.variable(tf.randomUniform([c], -0.5, 0.5)),
      runningMean: tf.variable(tf.zeros([c]), false),
      runningVar: tf.variable(tf.ones([c]), false),
    };
    const inputs = [0, 1].map(() => tf.randomUniform(shape, -1, 1));
    const dy = tf.randomUniform(shape, -1, 1);
    const forwardBackward = (x: tf.Tensor) =>
      tf.grads((input: tf.Tensor) => batchNorm(input as tf.Tensor4D, bn, "train", { relu: true }))(
        [x],
        dy,
      );
    const time = async (times: number) => {
      const t0 = now();
      let last: tf.Tensor[] = [];
      for (let i = 0; i < times; i++) {
        tf.dispose(last);
        last = forwardBackward(inputs[i % 2]);
      }
      await last[0].data();
      tf.dispose(last);
      return now() - t0;
    };
    const best = { before: Infinity, after: Infinity };
    const copies = { before: 0, after: 0 };
    for (const v of VARIANTS) {
      useVariant(v);
      await time(2); // compile and warm up
    }
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const v of VARIANTS) {
        useVariant(v);
        const copiesBefore = operandCopyCount();
        const one = await time(1);
        const more = await time(1 + calls);
        copies[v] = (operandCopyCount() - copiesBefore) / (2 + calls);
        best[v] = Math.min(best[v], Math.max(0, more - one) / calls);
      }
    }
    for (const v of VARIANTS) totals[v] += best[v] * count;
    console.log(
      `[${shape}] ×${count}: before ${best.before.toFixed(1)} ms (${copies.before} copies), ` +
        `after ${best.after.toFixed(1)} ms (${copies.after} copies): ` +
        `${(best.before / best.after).toFixed(2)}×`,
    );
    tf.dispose([...inputs, dy, ...Object.values(bn)]);
  }
  useVariant("after");
  console.log(
    `a step's BatchNorms (${values.cpu ? "CPU" : "wall"} time): before ${
      totals.before.toFixed(0)
    } ms, after ${totals.after.toFixed(0)} ms (${(totals.before / totals.after).toFixed(2)}×)`,
  );
}

if (import.meta.main) await main();
