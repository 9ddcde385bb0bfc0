import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals } from "@std/assert";
import { assertClose, hostInput, useWebGPU } from "./kernel_test_util.ts";
import {
  configureKernelChoice,
  describeVariant,
  kernelChoices,
  memoryKernelStore,
  registerFastKernels,
  setKernelMode,
  tunePendingKernels,
  unregisterFastKernels,
} from "./mod.ts";
import { FIRST_USE_VARIANT, KERNEL_FAMILIES, type KernelVariant } from "./variants.ts";

/** A small conv stack's output and weight gradients (all three tuned families run). */
async function convStack(): Promise<Float32Array[]> {
  const x = hostInput([2, 12, 12, 3], 21);
  // A separate pair of 3×3 stride-1 convs the Winograd variants take (conv2d_winograd.ts): the
  // first's forward (Cout 128, 256 output tiles), the second's dX (Cin 128); and one whose dW
  // they take (conv2d_backprop_filter_winograd.ts: Cin and Cout 128, 64 tiles).
  const x2 = hostInput([1, 32, 32, 8], 22);
  const x3 = hostInput([1, 16, 16, 128], 23);
  const shapes = [
    [7, 7, 3, 16],
    [3, 3, 16, 16],
    [3, 3, 16, 32],
    [1, 1, 16, 32],
    [3, 3, 8, 128],
    [3, 3, 128, 8],
    [3, 3, 128, 128],
  ];
  const vars = shapes.map((s, i) => {
    const w = hostInput(s, 30 + i);
    return tf.variable(tf.tensor(w.data, w.shape));
  });
  const input = tf.tensor4d(x.data, x.shape as [number, number, number, number]);
  const input2 = tf.tensor4d(x2.data, x2.shape as [number, number, number, number]);
  const input3 = tf.tensor4d(x3.data, x3.shape as [number, number, number, number]);
  let y: tf.Tensor | undefined, y2: tf.Tensor | undefined;
  const f = () => {
    const [stem, a, b, ds, wideIn, wideOut, wide] = vars as tf.Variable<tf.Rank.R4>[];
    const h = tf.relu(tf.conv2d(input, stem, 2, 3));
    const out = tf.add(tf.conv2d(tf.relu(tf.conv2d(h, a, 1, 1)), b, 2, 1), tf.conv2d(h, ds, 2, 0));
    const out2 = tf.conv2d(tf.conv2d(input2, wideIn, 1, 1), wideOut, 1, 1);
    y = tf.keep(out);
    y2 = tf.keep(out2);
    const out3 = tf.conv2d(input3, wide, 1, 1);
    return tf.addN([out, out2, out3].map((o) => tf.sum(tf.mul(o, 0.01)))) as tf.Scalar;
  };
  const { value, grads } = tf.variableGrads(f, vars);
  const out = await Promise.all(
    [y!, y2!, ...vars.map((v) => grads[v.name])].map((t) => t.data() as Promise<Float32Array>),
  );
  tf.dispose([value, input, input2, input3, y!, y2!, ...vars, ...Object.values(grads)]);
  return out;
}

Deno.test("auto: the tuner measures the shapes a step met, and its choices compute what fast and stock do", async () => {
  await useWebGPU();
  const store = memoryKernelStore();
  try {
    await configureKernelChoice({ mode: "auto", adapter: "test adapter", store });
    const first = await convStack(); // unmeasured shapes: the first-use (low-unroll) variants
    const report = await tunePendingKernels({ budgetMs: 120_000 });
    assertEquals(report.pending, 0);
    const families = new Set(report.decided.map((d) => d.family));
    assertEquals(families, new Set(["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"]));
    for (const d of report.decided) {
      assert(Object.keys(d.ms!).includes("stock"), `${d.label}: stock was not timed`);
    }
    assertEquals(Object.keys(store.saved).length, report.decided.length);
    const auto = await convStack(); // measured choices
    assertEquals((await tunePendingKernels()).decided.length, 0, "no new shapes");

    setKernelMode("fast");
    const fast = await convStack();
    unregisterFastKernels();
    const stock = await convStack();
    registerFastKernels();
    for (let i = 0; i < auto.length; i++) {
      assertClose(first[i], fast[i]);
      assertClose(auto[i], fast[i]);
      assertClose(auto[i], stock[i]);
    }

    // A second process on the same adapter: the choices come from the store, nothing is timed.
    await configureKernelChoice({ mode: "auto", adapter: "test adapter", store });
    assertEquals(kernelChoices().length, report.decided.length);
    assert(kernelChoices().every((c) => c.cached));
    await convStack();
    assertEquals(await tunePendingKernels(), { ms: 0, decided: [], pending: 0 });
    // Another adapter measures for itself.
    await configureKernelChoice({ mode: "auto", adapter: "another adapter", store });
    await convStack();
    assert((await tunePendingKernels({ budgetMs: 0 })).pending > 0);
  } finally {
    registerFastKernels();
    await configureKernelChoice({ mode: "fast", adapter: "" });
  }
});

Deno.test("fast mode runs the default variants and records nothing to tune", async () => {
  await useWebGPU();
  try {
    await configureKernelChoice({ mode: "auto", adapter: "fast-mode test" });
    setKernelMode("fast");
    await convStack();
    setKernelMode("auto");
    assertEquals((await tunePendingKernels({ budgetMs: 0 })).pending, 0);
  } finally {
    await configureKernelChoice({ mode: "fast", adapter: "" });
  }
});

Deno.test("auto runs the first-use variant for unmeasured shapes, the default under fast", async () => {
  await useWebGPU();
  const ran = new Map<string, number>();
  const spied: [KernelVariant, KernelVariant["run"]][] = [];
  for (const family of Object.values(KERNEL_FAMILIES)) {
    for (const variant of family.variants) {
      const run = variant.run;
      if (!run) continue;
      spied.push([variant, run]);
      (variant as { run: KernelVariant["run"] }).run = (args) => {
        const key = `${family.name} ${variant.name}`;
        ran.set(key, (ran.get(key) ?? 0) + 1);
        return run(args);
      };
    }
  }
  try {
    await configureKernelChoice({ mode: "auto", adapter: `first-use test ${Math.random()}` });
    await convStack();
    const firstUse = Object.keys(KERNEL_FAMILIES).map((family) => `${family} ${FIRST_USE_VARIANT}`);
    assertEquals([...ran.keys()].sort(), firstUse.sort());
    ran.clear();
    setKernelMode("fast");
    await convStack();
    // Where a default does not take a call (winograd: only some 3×3 stride-1 convs), fast runs
    // the family's first webtune variant.
    const families = Object.values(KERNEL_FAMILIES);
    const defaults = families.map((f) => `${f.name} ${f.defaultVariant}`);
    const fallbacks = families.map((f) => `${f.name} ${f.variants[1].name}`);
    assertEquals([...ran.keys()].sort(), [...new Set([...defaults, ...fallbacks])].sort());
  } finally {
    for (const [variant, run] of spied) (variant as { run: KernelVariant["run"] }).run = run;
    await configureKernelChoice({ mode: "fast", adapter: "" });
  }
});

Deno.test("auto times a variant with a per-call cost (winograd) at the call's batch, the others at a reduced one", async () => {
  await useWebGPU();
  const forward = KERNEL_FAMILIES.Conv2D;
  const batches = new Map<string, Set<number>>();
  const spied: [KernelVariant, KernelVariant["run"]][] = [];
  for (const variant of forward.variants) {
    const run = variant.run;
    if (!run) continue;
    spied.push([variant, run]);
    (variant as { run: KernelVariant["run"] }).run = (args) => {
      const n = (args.inputs.x as tf.TensorInfo).shape[0];
      batches.set(variant.name, (batches.get(variant.name) ?? new Set()).add(n));
      return run(args);
    };
  }
  // 4 images of 16×16×128 through a 3×3 conv to 128 channels: 256 Winograd tiles at batch 4,
  // 75 MFLOP per image, so the others are timed at batch 1 (timingBatch).
  const x = hostInput([4, 16, 16, 128], 41);
  const w = hostInput([3, 3, 128, 128], 42);
  const input = tf.tensor4d(x.data, x.shape as [number, number, number, number]);
  const filter = tf.tensor4d(w.data, w.shape as [number, number, number, number]);
  try {
    await configureKernelChoice({ mode: "auto", adapter: `call-batch test ${Math.random()}` });
    tf.dispose(tf.conv2d(input, filter, 1, 1));
    batches.clear();
    const report = await tunePendingKernels({ budgetMs: 120_000 });
    assertEquals(report.decided.map((d) => d.family), ["Conv2D"]);
    assertEquals(
      Object.keys(report.decided[0].ms!).sort(),
      forward.variants.map((v) => v.name).sort(),
    );
    assertEquals(batches.get("winograd"), new Set([4]));
    assertEquals(batches.get("texture"), new Set([1]));
  } finally {
    for (const [variant, run] of spied) (variant as { run: KernelVariant["run"] }).run = run;
    tf.dispose([input, filter]);
    await configureKernelChoice({ mode: "fast", adapter: "" });
  }
});

Deno.test("describeVariant labels a folded eval conv's F(4×4) Winograd choice without a backend", () => {
  // The report of `bench` has no backend at hand: its label must come from shapes alone (it
  // once read the device's texture limit through an undefined backend and threw).
  const choice = (transformed: boolean) => ({
    family: "Conv2D",
    key: "k",
    label: "l",
    variant: "winograd",
    cached: false,
    spec: {
      inputs: {
        x: [16, 56, 56, 64],
        filter: [3, 3, 64, 64],
        ...(transformed ? { transformedFilter: [36, 64, 64] } : {}),
      },
      attrs: {
        strides: [1, 1],
        pad: "same",
        dataFormat: "NHWC",
        dilations: [1, 1],
        dimRoundingMode: undefined,
      } as unknown as tf.NamedAttrMap,
    },
  });
  assert(describeVariant(choice(true)).startsWith("winograd F4 "), describeVariant(choice(true)));
  assert(!describeVariant(choice(false)).includes("F4"), describeVariant(choice(false)));
});
