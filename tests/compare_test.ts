/**
 * End-to-end: `deno task compare` with run flags as lists, on real photos and the Food-101 model.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { cli, SHARED, sharedPresent } from "./cli_util.ts";

const HOTDOG = `${SHARED}datasets/hotdog-mini`;
const FOOD101 = `${SHARED}fixtures/food101-resnet18/food101-64-resnet18.pth`;

Deno.test({
  name: "compare: --optimizer sgd,adamw runs both, one chart, a table of final/best test acc",
  ignore: !sharedPresent,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "webtune-compare-lists-" });
    const r = await cli("compare", [
      "--tasks",
      "finetune",
      "--optimizer",
      "sgd,adamw",
      "--lr",
      "1e-4",
      "--data",
      HOTDOG,
      "--weights",
      FOOD101,
      "--image-size",
      "32",
      "--batch-size",
      "8",
      "--epochs",
      "1",
      "--limit-train",
      "16",
      "--limit-test",
      "8",
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const runs: { name: string; dir: string; test_acc: number[] }[] = JSON.parse(
      await Deno.readTextFile(`${out}/compare.json`),
    );
    assertEquals(runs.map((x) => x.name), [
      "finetune lr=0.0001 optimizer=sgd",
      "finetune lr=0.0001 optimizer=adamw",
    ]);
    // Each combination's value reached its run: the run's own metrics.json says so.
    for (const [i, optimizer] of ["sgd", "adamw"].entries()) {
      const metrics = JSON.parse(await Deno.readTextFile(`${runs[i].dir}/metrics.json`));
      assertEquals([metrics.config.optimizer, metrics.config.lr], [optimizer, 1e-4]);
      assertEquals(metrics.epochs.map((e: { test_acc: number }) => e.test_acc), runs[i].test_acc);
    }
    const table = await Deno.readTextFile(`${out}/compare.md`);
    assertEquals(table.trim().split("\n").length, 4);
    assertStringIncludes(table, `| ${runs[1].name} | ${runs[1].test_acc[0].toFixed(3)} `);
    assertStringIncludes(r.stdout, table.trim());
    const svg = await Deno.readTextFile(`${out}/compare.svg`);
    assertEquals(svg.match(/<polyline/g)?.length, 2);
    assertStringIncludes(svg, "optimizer=adamw");
    await Deno.remove(out, { recursive: true });
  },
});
