import * as tf from "@tensorflow/tfjs-core";
import { buildParamGroups, disposeBatch, Sgd, toDevice, trainStep } from "@webtune/core";
import { createRng } from "@webtune/data";
import { createResNet } from "@webtune/models";
import { setupCommandBackend } from "./flags.ts";
import { formatProfile, profileStep } from "./bench_profile.ts";
const size = Number(Deno.args[0] ?? 64), batch = 16;
const kernels = Deno.args[1] ?? "auto";
await setupCommandBackend("webgpu", kernels);
const rng = createRng(0);
const model = createResNet("resnet18", { numClasses: 2, random: () => rng.float() });
const sgd = new Sgd(buildParamGroups(model.parameters(), { lr: 1e-5 }), { weightDecay: 1e-3 });
const device = toDevice({
  x: Float32Array.from({ length: batch * size * size * 3 }, () => rng.float() * 2 - 1),
  shape: [batch, size, size, 3] as [number, number, number, number],
  labels: Int32Array.from({ length: batch }, (_, i) => i % 2),
});
await trainStep(model, device, sgd);
await trainStep(model, device, sgd);
let t0 = performance.now();
for (let i = 0; i < 2; i++) await trainStep(model, device, sgd);
console.log(`step ${((performance.now() - t0) / 2).toFixed(0)} ms`);
// timing of phases in a real step
{
  const t1 = performance.now();
  const out = tf.tidy(() => model.forward(device.x, "train").logits);
  const t2 = performance.now();
  await out.data();
  const t3 = performance.now();
  out.dispose();
  console.log(`forward record ${(t2 - t1).toFixed(0)} ms, wait ${(t3 - t2).toFixed(0)} ms`);
  const t4 = performance.now();
  await trainStep(model, device, sgd);
  console.log(`step ${(performance.now() - t4).toFixed(0)}`);
}

const p = await profileStep(() => trainStep(model, device, sgd));
console.log(formatProfile(p));
const top = [...p.calls].sort((a, b) => b.count * b.ms - a.count * a.ms).slice(0, 25);
for (const c of top) {
  console.log(
    `${(c.count * c.ms).toFixed(1).padStart(8)} ${c.count}× ${c.kernel} ${
      JSON.stringify(c.inputShapes)
    } ${c.attrs.slice(0, 80)}`,
  );
}
disposeBatch(device);
