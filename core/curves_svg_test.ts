import { assert, assertEquals } from "@std/assert";
import { curvesSvg } from "./curves_svg.ts";

const series = [
  { name: "finetune lr=0.0001 optimizer=adamw schedule=cosine", values: [0.5, 0.9], color: "red" },
  { name: "scratch lr=0.0005", values: [0.4, 0.6], color: "blue", dash: "6 3" },
];

/** Every x of the curves' points, and the x of each legend label. */
function xs(svg: string) {
  const points = [...svg.matchAll(/points="([^"]*)"/g)]
    .flatMap((m) => m[1].split(" ").map((p) => Number(p.split(",")[0])));
  const labels = [...svg.matchAll(/<text x="([\d.]+)" y="[\d.]+">(?:finetune|scratch)/g)]
    .map((m) => Number(m[1]));
  return { points, labels };
}

Deno.test("curvesSvg: a legend column keeps long names right of the curves", () => {
  const svg = curvesSvg(series, { width: 700, legendWidth: 320 });
  const { points, labels } = xs(svg);
  assertEquals(labels.length, 2);
  const plotRight = Math.max(...points);
  assert(plotRight <= 700 - 16 - 320, `curves reach ${plotRight}`);
  for (const x of labels) assert(x > plotRight, `label at ${x}, curves to ${plotRight}`);
});

Deno.test("curvesSvg: by default the legend sits inside the plot's top-right corner", () => {
  const { points, labels } = xs(curvesSvg(series, { width: 480 }));
  assertEquals(Math.max(...points), 480 - 16);
  for (const x of labels) assert(x < 480 - 16, `label at ${x}`);
});
