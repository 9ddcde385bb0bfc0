import * as tf from "@tensorflow/tfjs-core";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { setupBackend } from "@webtune/core";
import { WebtuneProgram, uniformBlock, flatMain, dispatch2D } from "../core/kernels/kernel_util.ts";
import { runWithOperands } from "../core/kernels/texture_operands.ts";
import { cpuMs } from "./bench_dx.ts";
await setupBackend({ backend: "webgpu", env: Deno.env });
const backend = tf.backend() as WebGPUBackend;
const U = uniformBlock({ n: "i32", a: "i32", b: "i32", c: "i32" });
class P extends WebtuneProgram {
  variableNames = ["x"];
  uniforms = U.wgsl;
  override workgroupSize: [number, number, number] = [64, 1, 1];
  constructor(private body: string, key: string) {
    super([4096], { x: [0] }, dispatch2D(16), key);
  }
  getUserCode() { return `${flatMain(true, 64)}
    let j = min(i, uniforms.n - 1);
    ${this.body}
  }`; }
}
const bodies: Record<string, string> = {
  trivial: "result[j] = ld_x(j);",
  div4: "let q = j / uniforms.a; let r = j % uniforms.b; let s = q / uniforms.c; let t = r % uniforms.c; result[j] = ld_x(q + r + s + t);",
  div8: "let q = j / uniforms.a; let r = j % uniforms.b; let s = q / uniforms.c; let t = r % uniforms.c; let q2 = s / uniforms.a; let r2 = t % uniforms.b; let s2 = q2 / uniforms.c; let t2 = r2 % uniforms.c; result[j] = ld_x(q + r + s + t + q2 + r2 + s2 + t2);",
  loads4: "result[j] = ld_x(j) + ld_x(j + uniforms.a) + ld_x(j + uniforms.b) + ld_x(j + uniforms.c);",
  loads8: "result[j] = ld_x(j) + ld_x(j + uniforms.a) + ld_x(j + uniforms.b) + ld_x(j + uniforms.c) + ld_x(j+1) + ld_x(j + uniforms.a+1) + ld_x(j + uniforms.b+1) + ld_x(j + uniforms.c+1);",
};
const x = tf.randomNormal([4096]);
const pipelines = (backend as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache;
const kinds = (Deno.args[0] ?? "storage,buffer").split(",");
const res: Record<string, number[]> = {};
for (let round = 0; round < 5; round++) {
  for (const kind of kinds) for (const [name, body] of Object.entries(bodies)) {
    for (const k of Object.keys(pipelines)) delete pipelines[k];
    const run = () => runWithOperands(backend, new P(body, `probe_${name}`), [x], U.data({ n: 4096, a: 3, b: 5, c: 7 }), kind as "buffer");
    const t0 = cpuMs(); let o = run(); await backend.read(o.dataId); backend.disposeData(o.dataId);
    const t1 = cpuMs(); o = run(); await backend.read(o.dataId); backend.disposeData(o.dataId);
    const t2 = cpuMs();
    (res[`${kind} ${name}`] ??= []).push((t1 - t0) - (t2 - t1));
  }
}
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(20), v.sort((a, b) => a - b)[2].toFixed(0), v.map((t) => t.toFixed(0)).join(" "));
