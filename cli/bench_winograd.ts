/**
 * The Winograd forward conv (core/kernels/conv2d_winograd.ts) against the direct `texture`
 * variant on ResNet-18's 3×3 stride-1 convs, timed interleaved in one process, and both
 * variants' error against a float64 reference: the numbers behind the variant's place in
 * variants.ts.
 *
 * ```sh
 * deno run -A cli/bench_winograd.ts                  # 64 and 224 px, batch 16
 * deno run -A cli/bench_winograd.ts --sizes 64 --cpu # CPU time of the process, not wall time
 * deno run -A cli/bench_winograd.ts --error-only     # only the float64 comparison
 * deno run -A cli/bench_winograd.ts --dx             # dX: Winograd vs the default texture-fma
 * deno run -A cli/bench_winograd.ts --dw             # dW: Winograd vs the direct texture kernel
 * deno run -A cli/bench_winograd.ts --dw --dw-tiles 16x4,8x4x2 # also Winograd dW with these tiles
 *                                                            # (tk x tc [x tiles per step])
 * ```
 *
 * Timing as in cli/bench_dx.ts: (1 + `--calls` calls, then a readback) minus (1 call, then a
 * readback), divided by `--calls`; rounds alternate the candidates and each keeps its minimum.
 * The error is measured at batch 1 (the float64 reference is a plain JS loop) with x = ReLU of
 * N(0, 1) samples and Kaiming-scaled weights, as a ResNet block's convs see them; `rel` is the largest
 * |error| over the largest |reference|, the measure the parity tests use.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { parseArgs } from "node:util";
import { describeAdapter, setupBackend } from "@webtune/core";
import {
  conv2DBackpropFilterTexture,
  conv2DBackpropFilterWinograd,
  conv2DBackpropInputFma,
  conv2DBackpropInputWinograd,
  conv2DTexture,
  conv2DWinograd,
  conv2DWinograd4,
  winograd4FilterTransform,
} from "@webtune/core/kernels";
import { benchClock, bestOfRounds, perCallRounds, timeKernelCalls } from "./bench_dx.ts";

/** ResNet-18's 3×3 stride-1 convs for an `image`-pixel input: [hw, channels, calls per step]. */
function shapes(image: number): [number, number, number][] {
  const h = image / 4;
  return [[h, 64, 4], [h / 2, 128, 3], [h / 4, 256, 3], [h / 8, 512, 3]];
}

/** y = conv(x, w), 3×3, pad 1, stride 1, NHWC, in float64. */
function reference(x: Float32Array, w: Float32Array, hw: number, c: number): Float64Array {
  const y = new Float64Array(hw * hw * c);
  for (let oy = 0; oy < hw; oy++) {
    for (let ox = 0; ox < hw; ox++) {
      const out = (oy * hw + ox) * c;
      for (let r = 0; r < 3; r++) {
        const iy = oy + r - 1;
        if (iy < 0 || iy >= hw) continue;
        for (let s = 0; s < 3; s++) {
          const ix = ox + s - 1;
          if (ix < 0 || ix >= hw) continue;
          const at = (iy * hw + ix) * c, wAt = (r * 3 + s) * c * c;
          for (let ci = 0; ci < c; ci++) {
            const xv = x[at + ci], wRow = wAt + ci * c;
            for (let co = 0; co < c; co++) y[out + co] += xv * w[wRow + co];
          }
        }
      }
    }
  }
  return y;
}

/** dX of that conv, in float64: dx[iy, ix, ci] = Σ dy[iy − r + 1, ix − s + 1, co] · w[r, s, ci, co]. */
function referenceDx(dy: Float32Array, w: Float32Array, hw: number, c: number): Float64Array {
  const dx = new Float64Array(hw * hw * c);
  for (let iy = 0; iy < hw; iy++) {
    for (let ix = 0; ix < hw; ix++) {
      const out = (iy * hw + ix) * c;
      for (let r = 0; r < 3; r++) {
        const oy = iy - r + 1;
        if (oy < 0 || oy >= hw) continue;
        for (let s = 0; s < 3; s++) {
          const ox = ix - s + 1;
          if (ox < 0 || ox >= hw) continue;
          const at = (oy * hw + ox) * c, wAt = (r * 3 + s) * c * c;
          for (let ci = 0; ci < c; ci++) {
            let sum = 0;
            for (let co = 0; co < c; co++) sum += dy[at + co] * w[wAt + ci * c + co];
            dx[out + ci] += sum;
          }
        }
      }
    }
  }
  return dx;
}

/** dW of that conv, in float64: dw[r, s, ci, co] = Σ x[oy + r − 1, ox + s − 1, ci] · dy[oy, ox, co]. */
function referenceDw(x: Float32Array, dy: Float32Array, hw: number, c: number): Float64Array {
  const dw = new Float64Array(9 * c * c);
  for (let oy = 0; oy < hw; oy++) {
    for (let ox = 0; ox < hw; ox++) {
      const at = (oy * hw + ox) * c;
      for (let r = 0; r < 3; r++) {
        const iy = oy + r - 1;
        if (iy < 0 || iy >= hw) continue;
        for (let s = 0; s < 3; s++) {
          const ix = ox + s - 1;
          if (ix < 0 || ix >= hw) continue;
          const xAt = (iy * hw + ix) * c, wAt = (r * 3 + s) * c * c;
          for (let ci = 0; ci < c; ci++) {
            const xv = x[xAt + ci], wRow = wAt + ci * c;
            for (let co = 0; co < c; co++) dw[wRow + co] += xv * dy[at + co];
          }
        }
      }
    }
  }
  return dw;
}

function errors(got: Float32Array, want: Float64Array): string {
  let maxAbs = 0, maxErr = 0;
  for (let i = 0; i < want.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(want[i]));
    maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]));
  }
  return `abs ${maxErr.toExponential(2)} rel ${(maxErr / maxAbs).toExponential(2)}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: "64,224" },
      batch: { type: "string", default: "16" },
      rounds: { type: "string", default: "3" },
      calls: { type: "string", default: "3" },
      cpu: { type: "boolean", default: false },
      "error-only": { type: "boolean", default: false },
      dx: { type: "boolean", default: false },
      dw: { type: "boolean", default: false },
      "dw-tiles": { type: "string", default: "" },
    },
  });
  const n = Number(values.batch), calls = Number(values.calls);
  const now = benchClock(values.cpu);
  console.log(describeAdapter(await setupBackend({ backend: "webgpu", env: Deno.env })));
  const backend = tf.backend() as WebGPUBackend;
  const attrs = {
    strides: [1, 1] as [number, number],
    pad: [[0, 0], [1, 1], [1, 1], [0, 0]] as tf.backend_util.ExplicitPadding,
    dataFormat: "NHWC" as const,
  };
  const dxAttrs = (x: tf.Tensor) => ({
    ...attrs,
    inputShape: x.shape as [number, number, number, number],
  });
  const dwAttrs = (x: tf.Tensor) => ({
    ...attrs,
    filterShape: [3, 3, x.shape[3], x.shape[3]] as [number, number, number, number],
  });
  // For dX, `x` stands for dy (the same shape: 3×3 stride 1, pad 1, Cin = Cout); for dW, `w`
  // stands for dy (the shape of x).
  const dwTiles = values["dw-tiles"].split(",").filter((t) => t).map((t) => {
    const [tk, tc, tt] = t.split("x").map(Number);
    return { tk, tc, tt };
  });
  const variants: Record<string, (x: tf.Tensor, w: tf.Tensor) => tf.TensorInfo> = values.dw
    ? {
      direct: (x, dy) => conv2DBackpropFilterTexture(x, dy, dwAttrs(x), backend),
      winograd: (x, dy) => conv2DBackpropFilterWinograd(x, dy, dwAttrs(x), backend),
      ...Object.fromEntries(dwTiles.map((tile) => [
        `winograd ${tile.tk}x${tile.tc}x${tile.tt ?? 1}`,
        (x: tf.Tensor, dy: tf.Tensor) =>
          conv2DBackpropFilterWinograd(x, dy, dwAttrs(x), backend, tile),
      ])),
    }
    : values.dx
    ? {
      direct: (x: tf.Tensor, w: tf.Tensor) => conv2DBackpropInputFma(x, w, dxAttrs(x), backend),
      winograd: (x: tf.Tensor, w: tf.Tensor) =>
        conv2DBackpropInputWinograd(x, w, dxAttrs(x), backend),
    }
    : {
      direct: (x: tf.Tensor, w: tf.Tensor) => conv2DTexture(x, w, attrs, backend),
      winograd: (x: tf.Tensor, w: tf.Tensor) => conv2DWinograd(x, w, attrs, backend),
      // F(4×4, 3×3) with its filter transform made per call (a fold makes it once).
      winograd4: (x: tf.Tensor, w: tf.Tensor) => {
        const u = winograd4FilterTransform(w, backend);
        const y = conv2DWinograd4(x, u, attrs, backend);
        backend.disposeData(u.dataId);
        return y;
      },
    };
  const names = Object.keys(variants);
  const timeCalls = (f: () => tf.TensorInfo, times: number) =>
    timeKernelCalls(backend, now, f, times);
  for (const size of values.sizes.split(",").map(Number)) {
    const totals = names.map(() => 0);
    for (const [hw, c, count] of shapes(size)) {
      // dW's second operand is dy at batch 1 (errors), and at batch n (timing, below).
      const w = values.dw
        ? tf.randomNormal([1, hw, hw, c], 0, 1, "float32", 2)
        : tf.mul(tf.randomNormal([3, 3, c, c], 0, 1, "float32", 2), Math.sqrt(2 / (9 * c)));
      const x1 = tf.relu(tf.randomNormal([1, hw, hw, c], 0, 1, "float32", 1));
      const want = (values.dw ? referenceDw : values.dx ? referenceDx : reference)(
        await x1.data() as Float32Array,
        await w.data() as Float32Array,
        hw,
        c,
      );
      const errs: string[] = [];
      for (const name of names) {
        const y = variants[name](x1, w);
        errs.push(`${name} ${errors(await backend.read(y.dataId) as Float32Array, want)}`);
        backend.disposeData(y.dataId);
      }
      const label = `${size}px [${n},${hw},${hw},${c}]x[3,3,${c},${c}] ×${count}`;
      if (values["error-only"]) {
        console.log(`${label}: ${errs.join(" | ")}`);
        tf.dispose([w, x1]);
        continue;
      }
      const x = tf.randomNormal([n, hw, hw, c], 0, 1, "float32", 3);
      const second = values.dw ? tf.randomNormal([n, hw, hw, c], 0, 1, "float32", 4) : w;
      const candidates = names.map((name) => () => variants[name](x, second));
      for (const f of candidates) await timeCalls(f, 1); // compile and warm up
      const best = bestOfRounds(
        await perCallRounds(candidates, timeCalls, calls, Number(values.rounds)),
        candidates.length,
      );
      best.forEach((ms, i) => totals[i] += ms * count);
      const cells = names.map((name, i) =>
        `${name} ${best[i].toFixed(1)} ms (${(best[0] / best[i]).toFixed(2)}×)`
      );
      console.log(`${label}: ${cells.join(" | ")} | error: ${errs.join(", ")}`);
      tf.dispose([w, x1, x, second]);
    }
    if (!values["error-only"]) {
      const sums = names.map((name, i) => `${name} ${totals[i].toFixed(0)} ms`).join(" | ");
      console.log(
        `${size}px, a step's 3x3/1 ${values.dw ? "dW" : values.dx ? "dX" : "forward"} (${
          values.cpu ? "CPU" : "wall"
        }): ` +
          sums,
      );
    }
  }
}

if (import.meta.main) await main();
