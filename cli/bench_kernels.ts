/**
 * Micro-benchmark: stock tfjs-webgpu conv kernels vs core/kernels on ResNet-18 shapes.
 *
 * ```sh
 * deno run -A cli/bench_kernels.ts            # ResNet-18's convs, batch 16, 64 px
 * deno run -A cli/bench_kernels.ts --224      # also the 224 px stem and layer1
 * deno run -A cli/bench_kernels.ts --only-224 # only those
 * deno run -A cli/bench_kernels.ts --stack    # also all 20 convs fwd+bwd (minutes)
 * deno run -A cli/bench_kernels.ts --runs 5   # min over more runs (noisy machines)
 * MESA_SHADER_CACHE_DISABLE=true deno run -A cli/bench_kernels.ts --compile
 *   # cold compile time of the conv pipelines of the 64 px shapes, buffer vs texture operands
 * ```
 *
 * Times are GPU time from timestamp queries (`tf.time().kernelMs`) when the adapter has them,
 * else wall time; each number is the minimum over `--runs` runs after one warm-up run.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { describeAdapter, setupBackend } from "@webtune/core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  conv2DBackpropFilterGemm,
  conv2DBackpropInputGemm,
  conv2DGemm,
  conv2DTextureTile,
  conv2DTile,
  derFilterTextureTile,
  derFilterTile,
  derInputTile,
  registerFastKernels,
  unregisterFastKernels,
} from "@webtune/core/kernels";

/** One conv layer of ResNet-18 (NHWC). */
interface ConvShape {
  name: string;
  n: number;
  hw: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  pad: number;
}

/** The distinct conv shapes of ResNet-18 for an `hw`-pixel input at batch `n`. */
export function resnet18Shapes(n: number, hw: number): ConvShape[] {
  const s = (name: string, h: number, cin: number, cout: number, k: number, st: number) => ({
    name,
    n,
    hw: h,
    cin,
    cout,
    k,
    stride: st,
    pad: (k - 1) >> 1,
  });
  const h1 = hw / 4;
  return [
    s("stem 7x7/2 3->64", hw, 3, 64, 7, 2),
    s("layer1 3x3/1 64", h1, 64, 64, 3, 1),
    s("layer2 3x3/2 64->128", h1, 64, 128, 3, 2),
    s("layer2 1x1/2 64->128", h1, 64, 128, 1, 2),
    s("layer2 3x3/1 128", h1 / 2, 128, 128, 3, 1),
    s("layer3 3x3/1 256", h1 / 4, 256, 256, 3, 1),
    s("layer4 3x3/1 512", h1 / 8, 512, 512, 3, 1),
  ];
}

function outSize(c: ConvShape): number {
  return Math.floor((c.hw + 2 * c.pad - c.k) / c.stride) + 1;
}

function gflop(c: ConvShape): number {
  const ho = outSize(c);
  return 2 * c.n * ho * ho * c.k * c.k * c.cin * c.cout / 1e9;
}

/** Minimum GPU (or wall) milliseconds of `f` over `runs` runs after an optional warm-up. */
async function timeMs(
  f: () => tf.Tensor | tf.Tensor[],
  runs: number,
  warmUp = true,
): Promise<number> {
  if (warmUp) tf.dispose(f());
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = await tf.time(() => tf.dispose(f()));
    const kernelMs = typeof t.kernelMs === "number" ? t.kernelMs : 0;
    best = Math.min(best, kernelMs > 0 ? kernelMs : t.wallMs);
  }
  return best;
}

function backpropFilter(c: ConvShape, x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor {
  const pad = [[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]];
  return tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
    strides: [c.stride, c.stride],
    pad,
    dataFormat: "NHWC",
    filterShape: [c.k, c.k, c.cin, c.cout],
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

function backpropInput(c: ConvShape, dy: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor {
  const pad = [[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]];
  return tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: w }, {
    strides: [c.stride, c.stride],
    pad,
    dataFormat: "NHWC",
    inputShape: [c.n, c.hw, c.hw, c.cin],
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** Stock then fast GPU milliseconds of `f`; stock gets `stockRuns` runs (it can take seconds). */
async function stockVsFast(
  f: () => tf.Tensor,
  runs: number,
  stockRuns = runs,
): Promise<[number, number]> {
  unregisterFastKernels();
  const stock = await timeMs(f, stockRuns);
  registerFastKernels();
  return [stock, await timeMs(f, runs)];
}

async function benchShapes(shapes: ConvShape[], runs: number): Promise<void> {
  console.log(
    "GFLOP/s".padEnd(34) + "GFLOP |  dW stock    new  speedup |  fwd stock    new | " +
      "dX naive  MM(flag off)  new",
  );
  for (const c of shapes) {
    const ho = outSize(c);
    const x = tf.randomNormal([c.n, c.hw, c.hw, c.cin]) as tf.Tensor4D;
    const dy = tf.randomNormal([c.n, ho, ho, c.cout]) as tf.Tensor4D;
    const w = tf.randomNormal([c.k, c.k, c.cin, c.cout]) as tf.Tensor4D;
    const g = gflop(c);
    const rate = (ms: number, width = 8) => (g / (ms / 1e3)).toFixed(2).padStart(width);
    const [dwStock, dwNew] = await stockVsFast(() => backpropFilter(c, x, dy), runs, 1);
    const pad = [[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]] as tf.backend_util.ExplicitPadding;
    const [fwdStock, fwdNew] = await stockVsFast(() => tf.conv2d(x, w, c.stride, pad), runs);
    // dX of the stem is never computed in training (the image needs no gradient), and tfjs's
    // tiled dX takes minutes on it: skip.
    let dx = " (not needed in training)";
    if (c.cin % 4 === 0) {
      const [dxNaive, dxNew] = await stockVsFast(() => backpropInput(c, dy, w), runs);
      unregisterFastKernels();
      tf.env().set("WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE", false);
      const dxMm = await timeMs(() => backpropInput(c, dy, w), runs);
      tf.env().set("WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE", true);
      registerFastKernels();
      dx = rate(dxNaive, 9) + rate(dxMm, 14) + rate(dxNew, 5);
    }
    console.log(
      `${c.name} n${c.n} ${c.hw}px`.padEnd(34) + g.toFixed(3).padStart(5) + " |" +
        rate(dwStock, 10) + rate(dwNew, 7) + `${(dwStock / dwNew).toFixed(1).padStart(8)}x |` +
        rate(fwdStock, 11) + rate(fwdNew, 7) + " |" + dx,
    );
    tf.dispose([x, dy, w]);
  }
}

/**
 * The 20 convs of ResNet-18 (BN and the classifier left out), forward + backward to every filter.
 */
function makeStack(n: number, hw: number): () => tf.Tensor[] {
  const he = (k: number, cin: number, cout: number) =>
    tf.variable(tf.randomNormal([k, k, cin, cout], 0, Math.sqrt(2 / (k * k * cin)))) as tf.Variable<
      tf.Rank.R4
    >;
  const stem = he(7, 3, 64);
  const blocks: {
    w1: tf.Variable<tf.Rank.R4>;
    w2: tf.Variable<tf.Rank.R4>;
    ds?: tf.Variable<tf.Rank.R4>;
    s: number;
  }[] = [];
  let cin = 64;
  for (
    const [cout, s] of [[64, 1], [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2], [
      512,
      1,
    ]]
  ) {
    blocks.push({
      w1: he(3, cin, cout),
      w2: he(3, cout, cout),
      ds: s > 1 ? he(1, cin, cout) : undefined,
      s,
    });
    cin = cout;
  }
  const x = tf.randomNormal([n, hw, hw, 3]) as tf.Tensor4D;
  const p1 = [[0, 0], [1, 1], [1, 1], [0, 0]] as tf.backend_util.ExplicitPadding;
  const p3 = [[0, 0], [3, 3], [3, 3], [0, 0]] as tf.backend_util.ExplicitPadding;
  const loss = () => {
    let h = tf.maxPool(tf.relu(tf.conv2d(x, stem, 2, p3)), 3, 2, "same");
    for (const b of blocks) {
      const y = tf.relu(tf.conv2d(h, b.w1, b.s, p1));
      const z = tf.conv2d(y, b.w2, 1, p1);
      h = tf.relu(tf.add(z, b.ds ? tf.conv2d(h, b.ds, b.s, "valid") : h));
    }
    return tf.mean(h) as tf.Scalar;
  };
  return () => {
    const { grads, value } = tf.variableGrads(loss);
    return [value, ...Object.values(grads)];
  };
}

async function benchStack(n: number, hw: number, runs: number): Promise<void> {
  const step = makeStack(n, hw);
  // The stock step takes minutes on llvmpipe: one run, no warm-up (it includes compiling).
  unregisterFastKernels();
  const stockMs = await timeMs(step, 1, false);
  registerFastKernels();
  const newMs = await timeMs(step, runs);
  console.log(
    `20-conv ResNet-18 stack fwd+bwd n${n} ${hw}px (GPU time): stock ${stockMs.toFixed(0)} ms, ` +
      `fast ${newMs.toFixed(0)} ms (${(stockMs / newMs).toFixed(1)}x)`,
  );
}

/**
 * Cold-compile cost of the conv pipelines of `shapes` (fwd + dX + dW), with storage-buffer and
 * then with texture operands: each set runs twice, and the first pass's extra wall time over the
 * second is its compile time (llvmpipe compiles a pipeline at its first dispatch, so
 * tfjs's compile-only mode would not see it). Run with MESA_SHADER_CACHE_DISABLE=true.
 */
async function benchCompile(shapes: ConvShape[]): Promise<void> {
  const backend = tf.backend() as WebGPUBackend;
  const cache = (backend as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache;
  for (const textures of [false, true]) {
    const before = Object.keys(cache).length;
    const passMs: number[] = [];
    for (let pass = 0; pass < 2; pass++) {
      let ms = 0;
      for (const c of shapes) {
        const ho = outSize(c);
        const x = tf.zeros([c.n, c.hw, c.hw, c.cin]);
        const dy = tf.zeros([c.n, ho, ho, c.cout]);
        const w = tf.zeros([c.k, c.k, c.cin, c.cout]);
        const pad = [[0, 0], [c.pad, c.pad], [c.pad, c.pad], [
          0,
          0,
        ]] as tf.backend_util.ExplicitPadding;
        const strides: [number, number] = [c.stride, c.stride];
        const filterShape: [number, number, number, number] = [c.k, c.k, c.cin, c.cout];
        await backend.read(x.dataId); // inputs uploaded before the clock starts
        await backend.read(w.dataId);
        await backend.read(dy.dataId);
        const calls = [
          () => {
            const tile = textures ? conv2DTextureTile(c.cout) : conv2DTile(c.cout);
            return conv2DGemm(x, w, { strides, pad }, backend, tile, textures);
          },
          () =>
            conv2DBackpropFilterGemm(
              x,
              dy,
              {
                strides,
                pad,
                dataFormat: "NHWC",
                filterShape,
              },
              backend,
              textures ? derFilterTextureTile(filterShape) : derFilterTile(filterShape),
              textures,
            ),
        ];
        if (c.cin % 4 === 0) {
          calls.push(() =>
            conv2DBackpropInputGemm(
              dy,
              w,
              {
                strides,
                pad,
                dataFormat: "NHWC",
                inputShape: [c.n, c.hw, c.hw, c.cin],
              },
              backend,
              derInputTile(c.cin, textures),
              textures,
            )
          );
        }
        for (const call of calls) {
          const t0 = performance.now();
          const out = call();
          await backend.read(out.dataId);
          ms += performance.now() - t0;
          backend.disposeData(out.dataId);
        }
        tf.dispose([x, dy, w]);
      }
      passMs.push(ms);
    }
    console.log(
      `${textures ? "texture" : "buffer"} operands: ${Object.keys(cache).length - before} ` +
        `pipelines, first pass ${passMs[0].toFixed(0)} ms, second ${passMs[1].toFixed(0)} ms: ` +
        `compile ≈ ${(passMs[0] - passMs[1]).toFixed(0)} ms`,
    );
  }
}

if (import.meta.main) {
  const args = Deno.args;
  const runsAt = args.indexOf("--runs");
  const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
  console.log(describeAdapter(await setupBackend({ backend: "webgpu", env: Deno.env })));
  if (args.includes("--compile")) {
    await benchCompile(resnet18Shapes(16, 64));
    Deno.exit(0);
  }
  if (!args.includes("--only-224")) await benchShapes(resnet18Shapes(16, 64), runs);
  if (args.includes("--224") || args.includes("--only-224")) {
    await benchShapes(resnet18Shapes(16, 224).slice(0, 2), 1);
  }
  if (args.includes("--stack")) await benchStack(16, 64, runs);
}
