import { assertEquals, assertThrows } from "@std/assert";
import { countParameters, describeClassifier } from "./summary.ts";
import { resnet18Spec } from "./resnet18.ts";
import type { StateDict } from "./types.ts";
import { numel } from "./types.ts";

/** A zero-filled state dict with torchvision's names and shapes. */
function zeros(numClasses: number): StateDict {
  return new Map(
    resnet18Spec(numClasses).map(({ name, shape, kind }) => [
      name,
      kind === "counter"
        ? { dtype: "int64", shape, data: new BigInt64Array(1) }
        : { dtype: "float32", shape, data: new Float32Array(numel(shape)) },
    ]),
  );
}

Deno.test("countParameters counts what model.parameters() holds", () => {
  assertEquals(countParameters(zeros(1000)), 11_689_512); // torchvision's figure for resnet18
  assertEquals(countParameters(zeros(2)), 11_689_512 - 998 * 513);
});

Deno.test("describeClassifier prints fc as PyTorch does", () => {
  assertEquals(
    describeClassifier(zeros(1000)),
    "fc: Linear(in_features=512, out_features=1000, bias=True)",
  );
  const noBias = zeros(100);
  noBias.delete("fc.bias");
  assertEquals(
    describeClassifier(noBias),
    "fc: Linear(in_features=512, out_features=100, bias=False)",
  );
  assertThrows(() => describeClassifier(new Map()), Error, "no 2-D fc.weight");
});

Deno.test("resnet18Spec has torchvision's 122 entries (62 parameters, 40 running stats, 20 counters)", () => {
  const spec = resnet18Spec(1000);
  const count = (kind: string) => spec.filter((e) => e.kind === kind).length;
  assertEquals([spec.length, count("parameter"), count("buffer"), count("counter")], [
    122,
    62,
    40,
    20,
  ]);
  assertEquals(spec.slice(0, 7).map((e) => e.name), [
    "conv1.weight",
    "bn1.weight",
    "bn1.bias",
    "bn1.running_mean",
    "bn1.running_var",
    "bn1.num_batches_tracked",
    "layer1.0.conv1.weight",
  ]);
  const byName = new Map(spec.map((e) => [e.name, e.shape]));
  assertEquals(byName.get("layer2.0.downsample.0.weight"), [128, 64, 1, 1]);
  assertEquals(byName.get("layer4.1.conv2.weight"), [512, 512, 3, 3]);
  assertEquals(byName.has("layer1.0.downsample.0.weight"), false);
});
