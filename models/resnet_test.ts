import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals, assertLess, assertThrows } from "@std/assert";
import { createResNet } from "./create.ts";
import { fromSourceModel } from "./from_source.ts";
import { archMismatchError, inferArch, resolveArch } from "./infer_arch.ts";
import { readPth } from "./pth.ts";
import {
  type Arch,
  ARCHITECTURES,
  ARCHS,
  type EntrySpec,
  PRETRAINED_CONFIGS,
  pretrainedConfig,
  ResNet,
  resnetSpec,
} from "./resnet.ts";
import { FEATURES, ResNet18, RESNET18_IMAGENET, resnet18Spec } from "./resnet18.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";
import { loadStateDict, stateDictOf } from "./state_dict.ts";
import { countParameters, describeArchitecture, describeClassifier } from "./summary.ts";
import { formatShape, numel, type StateDict } from "./types.ts";
import { noFixtures, readFixture, sameBytes, seeded, useWebgpu } from "./_test_util.ts";

/**
 * torchvision's `state_dict()` names and shapes, written out independently of `resnetSpec`:
 * `ResNet._make_layer` as torchvision's source reads, for the block counts and block type given.
 */
function torchvisionKeys(
  block: "basic" | "bottleneck",
  layers: number[],
  numClasses: number,
): [string, number[]][] {
  const keys: [string, number[]][] = [];
  const bn = (p: string, c: number) => {
    for (const s of ["weight", "bias", "running_mean", "running_var"]) {
      keys.push([`${p}.${s}`, [c]]);
    }
    keys.push([`${p}.num_batches_tracked`, []]);
  };
  keys.push(["conv1.weight", [64, 3, 7, 7]]);
  bn("bn1", 64);
  const expansion = block === "basic" ? 1 : 4;
  let inplanes = 64;
  for (const [i, planes] of [64, 128, 256, 512].entries()) {
    for (let b = 0; b < layers[i]; b++) {
      const p = `layer${i + 1}.${b}`;
      if (block === "basic") {
        keys.push([`${p}.conv1.weight`, [planes, inplanes, 3, 3]]);
        bn(`${p}.bn1`, planes);
        keys.push([`${p}.conv2.weight`, [planes, planes, 3, 3]]);
        bn(`${p}.bn2`, planes);
      } else {
        keys.push([`${p}.conv1.weight`, [planes, inplanes, 1, 1]]);
        bn(`${p}.bn1`, planes);
        keys.push([`${p}.conv2.weight`, [planes, planes, 3, 3]]);
        bn(`${p}.bn2`, planes);
        keys.push([`${p}.conv3.weight`, [planes * 4, planes, 1, 1]]);
        bn(`${p}.bn3`, planes * 4);
      }
      const stride = b === 0 && i > 0 ? 2 : 1;
      if (b === 0 && (stride !== 1 || inplanes !== planes * expansion)) {
        keys.push([`${p}.downsample.0.weight`, [planes * expansion, inplanes, 1, 1]]);
        bn(`${p}.downsample.1`, planes * expansion);
      }
      inplanes = planes * expansion;
    }
  }
  keys.push(["fc.weight", [numClasses, 512 * expansion]], ["fc.bias", [numClasses]]);
  return keys;
}

const TORCHVISION: Record<Arch, Parameters<typeof torchvisionKeys>> = {
  resnet18: ["basic", [2, 2, 2, 2], 1000],
  resnet34: ["basic", [3, 4, 6, 3], 1000],
  resnet50: ["bottleneck", [3, 4, 6, 3], 1000],
};

/** A state dict with `spec`'s names and shapes and no data (enough for shape-only functions). */
function shapesOnly(spec: EntrySpec[]): StateDict {
  return new Map(spec.map(({ name, shape, kind }) => [
    name,
    kind === "counter"
      ? { dtype: "int64", shape, data: new BigInt64Array(1) }
      : { dtype: "float32", shape, data: new Float32Array(0) },
  ]));
}

const describe = (entries: [string, number[]][]) =>
  entries.map(([n, s]) => `${n} ${formatShape(s)}`);

Deno.test("PRETRAINED_CONFIGS are torchvision's IMAGENET1K_V1 weights", () => {
  const files = {
    resnet18: "resnet18-f37072fd.pth",
    resnet34: "resnet34-b627a593.pth",
    resnet50: "resnet50-0676ba61.pth",
  };
  for (const arch of ARCHS) {
    const config = pretrainedConfig(arch);
    assertEquals(config.arch, arch);
    assertEquals(config.url, `https://download.pytorch.org/models/${files[arch]}`);
    assertEquals(config.hashPrefix, files[arch].slice(arch.length + 1, -4));
    assertEquals([config.inputSize, config.testResize, config.numClasses], [224, 256, 1000]);
    assertEquals([config.mean, config.std], [[0.485, 0.456, 0.406], [0.229, 0.224, 0.225]]);
    assertEquals([config.classifier, config.hotdogIndex], ["fc", 934]);
  }
  // The ResNet-18 names stay what they were.
  assertEquals(RESNET18_IMAGENET, PRETRAINED_CONFIGS.resnet18);
  assertEquals(FEATURES, 512);
  assertEquals(resnet18Spec(7), resnetSpec("resnet18", 7));
});

Deno.test("resnetSpec is torchvision's state_dict: names, order, shapes, parameter counts", () => {
  // torchvision's documented parameter counts (ResNet*_Weights.IMAGENET1K_V1.meta["num_params"]).
  const params = { resnet18: 11_689_512, resnet34: 21_797_672, resnet50: 25_557_032 };
  const sizes = { resnet18: 122, resnet34: 218, resnet50: 320 };
  for (const arch of ARCHS) {
    const spec = resnetSpec(arch, 1000);
    assertEquals(
      describe(spec.map((e) => [e.name, e.shape])),
      describe(torchvisionKeys(...TORCHVISION[arch])),
      arch,
    );
    assertEquals(spec.length, sizes[arch]);
    assertEquals(countParameters(shapesOnly(spec)), params[arch], arch);
    assertEquals(
      describeClassifier(shapesOnly(spec)),
      `fc: Linear(in_features=${ARCHITECTURES[arch].features}, out_features=1000, bias=True)`,
    );
  }
  // torchvision's ResNet V1.5: the Bottleneck's stride sits on the 3×3 conv, so its 1×1 conv1
  // takes the full input (the shape does not show the stride; the forward tests below do).
  const r50 = new Map(resnetSpec("resnet50", 2).map((e) => [e.name, e.shape]));
  assertEquals(r50.get("layer2.0.conv1.weight"), [128, 256, 1, 1]);
  assertEquals(r50.get("layer1.0.downsample.0.weight"), [256, 64, 1, 1]);
  assertEquals(r50.has("layer1.1.downsample.0.weight"), false);
});

Deno.test("inferArch reads the architecture from keys and shapes, whatever the head", () => {
  for (const arch of ARCHS) {
    assertEquals(inferArch(shapesOnly(resnetSpec(arch, 1000))), arch);
    assertEquals(inferArch(shapesOnly(resnetSpec(arch, 2))), arch); // a fine-tuned checkpoint
    assertEquals(describeArchitecture(shapesOnly(resnetSpec(arch, 5))), `architecture: ${arch}`);
  }
  // resnet101: Bottleneck [3,4,23,3].
  const r101 = shapesOnly(
    torchvisionKeys("bottleneck", [3, 4, 23, 3], 1000).map(([name, shape]) => ({
      name,
      shape,
      kind: shape.length === 0 ? "counter" : "parameter",
    })),
  );
  assertThrows(
    () => inferArch(r101, "r101.pth"),
    Error,
    "r101.pth: not a torchvision resnet18, resnet34, resnet50 state_dict (found Bottleneck " +
      "blocks [3,4,23,3], layer1 width 64; expected resnet18 BasicBlock [2,2,2,2], resnet34 " +
      "BasicBlock [3,4,6,3], resnet50 Bottleneck [3,4,6,3])",
  );
  // wide_resnet50_2: resnet50's keys, twice the inner width.
  const wide = shapesOnly(resnetSpec("resnet50", 1000));
  wide.set("layer1.0.conv1.weight", {
    dtype: "float32",
    shape: [128, 64, 1, 1],
    data: new Float32Array(0),
  });
  assertThrows(
    () => inferArch(wide, "wide.pth"),
    Error,
    "found Bottleneck blocks [3,4,6,3], layer1 width 128",
  );
  assertThrows(
    () => inferArch(new Map(), "x.safetensors"),
    Error,
    "x.safetensors: not a torchvision",
  );
  assertEquals(
    describeArchitecture(new Map()).startsWith("architecture: unknown, not a torchvision"),
    true,
  );

  // An --arch that contradicts the weights names both.
  const r34 = shapesOnly(resnetSpec("resnet34", 1000));
  assertEquals(resolveArch(r34, undefined, "w.pth"), "resnet34");
  assertEquals(resolveArch(r34, "resnet34", "w.pth"), "resnet34");
  assertThrows(
    () => resolveArch(r34, "resnet50", "w.pth"),
    Error,
    "w.pth: holds resnet34 weights, but the architecture asked for is resnet50",
  );
  assertEquals(
    archMismatchError("resnet18", "resnet50").message,
    "the weights: holds resnet50 weights, but the architecture asked for is resnet18",
  );
});

Deno.test("createResNet('resnet50'): torchvision's init; every mode runs at 32 px; only train moves BN stats", async () => {
  await useWebgpu();
  const before = tf.memory().numTensors;
  const model = createResNet("resnet50", { numClasses: 3, random: seeded(1) });
  assertEquals([model.arch, model.features, model.parameters().length], ["resnet50", 2048, 161]);
  assertEquals(model.variables.get("layer2.0.conv2.weight")?.shape, [3, 3, 128, 128]); // HWIO

  // kaiming_normal_(mode="fan_out", nonlinearity="relu"), nn.Linear's default with fan_in 2048,
  // and zero_init_residual=False: the last BN of each block starts at weight 1 like every other.
  const sd = await stateDictOf(model);
  const std = (data: Float32Array) => {
    let s = 0, s2 = 0;
    for (const v of data) (s += v), (s2 += v * v);
    return Math.sqrt(s2 / data.length - (s / data.length) ** 2);
  };
  for (
    const [name, fanOut] of [
      ["layer1.0.conv1.weight", 64],
      ["layer3.2.conv2.weight", 256 * 9],
      ["layer4.2.conv3.weight", 2048],
    ] as const
  ) {
    const got = std(sd.get(name)!.data as Float32Array), want = Math.sqrt(2 / fanOut);
    assertLess(Math.abs(got / want - 1), 0.03, `${name}: std ${got}, expected ${want}`);
  }
  const bound = 1 / Math.sqrt(2048);
  for (const name of ["fc.weight", "fc.bias"]) {
    const data = sd.get(name)!.data as Float32Array;
    const m = data.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    assert(m <= bound && m > 0.8 * bound, `${name}: max |w| ${m}, bound ${bound}`);
  }
  assertEquals([...sd.get("layer2.3.bn3.weight")!.data].every((v) => v === 1), true);
  assertEquals([...sd.get("layer2.3.bn3.bias")!.data].every((v) => v === 0), true);

  const x = tf.randomUniform([2, 32, 32, 3], -1, 1, "float32", 7) as tf.Tensor4D;
  const stats = async () => await model.variables.get("layer4.2.bn3.running_mean")!.data();
  const outputs: Record<string, Float32Array> = {};
  for (const mode of ["eval", "frozen", "train"] as const) {
    const previous = await stats();
    const { logits, features } = model.forward(x, mode);
    assertEquals([logits.shape, features.shape], [[2, 3], [2, 2048]]);
    outputs[mode] = await logits.data() as Float32Array;
    assert(outputs[mode].every(Number.isFinite), `${mode}: non-finite logits`);
    assertEquals(!sameBytes(await stats(), previous), mode === "train", mode);
    tf.dispose([logits, features]);
  }
  // Same numbers up to float rounding: tfjs-webgpu's forward pass is not bit-deterministic here
  // (three identical eval passes of this input differed by up to 1.1e-6, split-K matmuls sum in
  // whatever order the workgroups finish), so equality is checked to 1e-5 of the largest logit.
  const scale = Math.max(...outputs.eval.map(Math.abs));
  const gap = Math.max(...outputs.frozen.map((v, i) => Math.abs(v - outputs.eval[i])));
  assert(gap <= 1e-5 * scale, `frozen vs eval: max difference ${gap} (largest logit ${scale})`);
  assertEquals([...model.numBatchesTracked.values()].every((n) => n === 1), true);
  model.dispose();
  x.dispose();
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("fromSourceModel builds the source's architecture; loading another's weights names both", async () => {
  await useWebgpu();
  const source = shapesOnly(resnetSpec("resnet34", 1000));
  for (const t of source.values()) {
    if (t.dtype === "float32") t.data = new Float32Array(numel(t.shape));
  }
  const model = fromSourceModel(source, { numClasses: 2, random: seeded(3) });
  assertEquals([model.arch, model.numClasses, model.variables.get("fc.weight")?.shape], [
    "resnet34",
    2,
    [512, 2],
  ]);
  assertThrows(
    () =>
      fromSourceModel(source, {
        numClasses: 2,
        random: seeded(3),
        arch: "resnet50",
        sourceName: "s.pth",
      }),
    Error,
    "s.pth: holds resnet34 weights, but the architecture asked for is resnet50",
  );
  const r18 = new ResNet18(2);
  assertThrows(
    () => loadStateDict(r18, source, { ignoreClassifier: true, source: "s.pth" }),
    Error,
    "s.pth: holds resnet34 weights, but the architecture asked for is resnet18",
  );
  model.dispose();
  r18.dispose();
});

// Export → PyTorch: `torchvision.models.resnet50().load_state_dict(sd, strict=True)` accepts
// exactly torchvision's names and shapes, which the fixture (written by PyTorch) holds.
Deno.test({
  name:
    "ResNet-50: the fixture loads, and exports PyTorch's names, shapes and values (strict=True)",
  ignore: noFixtures !== undefined,
  fn: async () => {
    await useWebgpu();
    const file = "torch-resnet50/resnet50-seed0-f16.safetensors";
    const torch = readSafetensors(await readFixture(file), file).tensors;
    assertEquals(inferArch(torch, file), "resnet50");
    const model = new ResNet("resnet50", 1000);
    loadStateDict(model, torch);
    const exported = readSafetensors(writeSafetensors(await stateDictOf(model)), "x").tensors;
    assertEquals(
      [...exported].map(([n, t]) => `${n} ${t.dtype} ${formatShape(t.shape)}`).sort(),
      [...torch].map(([n, t]) => `${n} ${t.dtype} ${formatShape(t.shape)}`).sort(),
    );
    for (const [name, t] of torch) {
      assert(sameBytes(exported.get(name)!.data, t.data), `${name} changed in the round trip`);
    }
    model.dispose();
  },
});

Deno.test({
  name: "ResNet-18 and -34 export torchvision's state_dict (the .pth fixture's order for resnet18)",
  ignore: noFixtures !== undefined,
  fn: async () => {
    await useWebgpu();
    const pth = readPth(await readFixture("torch-resnet18/resnet18-seed0.pth"), "seed0.pth");
    assertEquals(inferArch(pth), "resnet18");
    for (const arch of ["resnet18", "resnet34"] as const) {
      const model = new ResNet(arch, 1000); // all zeros: only names and shapes matter here
      const sd = await stateDictOf(model);
      const want = arch === "resnet18"
        ? [...pth].map(([n, t]) => [n, t.shape] as [string, number[]])
        : torchvisionKeys(...TORCHVISION[arch]);
      assertEquals(describe([...sd].map(([n, t]) => [n, t.shape])), describe(want), arch);
      model.dispose();
    }
  },
});
