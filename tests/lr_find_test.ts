/**
 * End-to-end: `deno task lr-find` on real photos and the Food-101 source model.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { type LrFindResult, RUN_FILES } from "@webtune/core";
import { cli, SHARED, sharedPresent } from "./cli_util.ts";

const HOTDOG = `${SHARED}datasets/hotdog-mini`;
const FOOD101 = `${SHARED}fixtures/food101-resnet18/food101-64-resnet18.pth`;

Deno.test({
  name: "lr-find: sweeps the run's lr, writes lr_find.json/.svg, suggests an lr inside the sweep",
  ignore: !sharedPresent,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "webtune-lr-find-" });
    const r = await cli("lr_find", [
      "--data",
      HOTDOG,
      "--weights",
      FOOD101,
      "--image-size",
      "32",
      "--batch-size",
      "8",
      "--limit-train",
      "32",
      "--limit-test",
      "8",
      "--start-lr",
      "1e-5",
      "--end-lr",
      "1",
      "--num-it",
      "12",
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const result: LrFindResult = JSON.parse(await Deno.readTextFile(`${out}/${RUN_FILES.lrFind}`));
    assertEquals(result.lrs[0], 1e-5);
    assertEquals(result.num_it, 12);
    // 32 images of batch 8 are 4 batches an epoch: the sweep runs on into later epochs.
    assert(result.lrs.length > 4 && result.lrs.length <= 12, `${result.lrs.length} batches`);
    assert(result.lrs.every((lr) => lr >= 1e-5 && lr < 1), `${result.lrs}`);
    const { steep, valley } = result.suggestions!;
    for (const s of [steep, valley]) {
      assert(s.lr >= result.lrs[0] && s.lr <= result.lrs.at(-1)!, `suggestion ${s.lr}`);
    }
    assertStringIncludes(r.stdout, `suggested --lr: ${steep.lr.toExponential(2)} (steep)`);
    const svg = await Deno.readTextFile(`${out}/${RUN_FILES.lrFindChart}`);
    assertStringIncludes(svg, "<polyline");
    assertStringIncludes(svg, "steep");
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test("lr-find: a sweep shorter than fastai's minimum is a usage error naming the flag", async () => {
  const r = await cli("lr_find", ["--data", "synthetic", "--num-it", "3"]);
  assertEquals(r.code, 2, r.stderr);
  assertStringIncludes(r.stderr, "--num-it must be at least 6");
});
