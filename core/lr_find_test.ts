import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertLess,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { lrFind, suggestLrs } from "./lr_find.ts";
import { lrFindSvg } from "./lr_find_svg.ts";

/** A loss that falls from 2 to about 0.3 near lr 1e-2 and explodes above 1e-1. */
function bowl(lr: number): number {
  const x = Math.log10(lr);
  return 0.3 + 1.7 / (1 + Math.exp(3 * (x + 4))) + (x > -1 ? 10 ** (2 * (x + 1)) - 1 : 0);
}

Deno.test("lr-find: fastai's exponential sweep and debiased 0.98 smoothing, by hand", async () => {
  const raw = [2, 1, 4, 3, 3, 3, 3, 3];
  const seen: number[] = [];
  const result = await lrFind((lr) => {
    seen.push(lr);
    return Promise.resolve(raw[seen.length - 1]);
  }, { numIt: 8, stopDiv: false });
  // lr_i = 1e-7 · (10 / 1e-7)^(i/8): 1e-7 at i = 0, 1e-3 half-way, 10^0 at i = 7.
  assertAlmostEquals(seen[0], 1e-7, 1e-20);
  assertAlmostEquals(seen[4], 1e-3, 1e-15);
  assertAlmostEquals(seen[7], 1, 1e-12);
  assertEquals(result.lrs, seen);
  // val ← 0.98·val + 0.02·loss from 0; reported val / (1 − 0.98^count).
  const val1 = 0.02 * 2, val2 = 0.98 * val1 + 0.02 * 1, val3 = 0.98 * val2 + 0.02 * 4;
  assertAlmostEquals(result.losses[0], 2, 1e-12); // debiasing makes the first value the loss
  assertAlmostEquals(result.losses[1], val2 / (1 - 0.98 ** 2), 1e-12); // ≈ 1.4949
  assertAlmostEquals(result.losses[2], val3 / (1 - 0.98 ** 3), 1e-12); // ≈ 2.3469
  assertAlmostEquals(result.losses[1], 0.0592 / 0.0396, 1e-12);
  assertEquals(result.raw_losses, raw);
  assertEquals(result.stop, "completed");
  assertEquals(result.num_it, 8);
});

Deno.test("lr-find: stops once the smoothed loss exceeds 4× its best; suggestions lie inside the sweep", async () => {
  const result = await lrFind((lr) => Promise.resolve(bowl(lr)));
  assertEquals(result.stop, "diverged");
  assertLess(result.lrs.length, 100);
  const best = Math.min(...result.losses);
  assertGreater(result.losses.at(-1)!, 4 * best);
  for (const l of result.losses.slice(0, -1)) {
    assert(l <= 4 * best, "stopped at the first crossing");
  }
  const { steep, valley } = result.suggestions!;
  for (const s of [steep, valley]) {
    assert(s.lr >= result.lrs[10] && s.lr <= result.lrs.at(-6)!, `${s.lr} outside the window`);
  }
  // The raw loss falls fastest around lr 1e-4 (the logistic's midpoint); the smoothed curve
  // lags behind, so steep lands a little later, but well before the loss' minimum near 1e-1.
  assert(steep.lr > 1e-5 && steep.lr < 1e-2, `steep ${steep.lr}`);
  assert(valley.lr > 1e-5 && valley.lr < 1e-1, `valley ${valley.lr}`);
  // Without stop_div the sweep runs all num_it batches.
  const full = await lrFind((lr) => Promise.resolve(bowl(lr)), { stopDiv: false, numIt: 40 });
  assertEquals([full.stop, full.lrs.length], ["completed", 40]);
});

Deno.test("lr-find: steep and valley as fastai's, on a hand-made curve", () => {
  const lrs = Array.from({ length: 20 }, (_, i) => 10 ** (i / 4 - 5));
  // fastai's window for num_it 20 is [2, 15). Inside it the biggest drop per log-lr step is
  // 4.9 → 3.9 (index 3 → 4), so steep = lrs[3]. The longest decreasing run is indices 2..10
  // (9 points): valley = its start − 1 + ⌊9/3⌋ + ⌊9/6⌋ = 2 − 1 + 3 + 1 = index 5.
  const losses = [
    9,
    9,
    5,
    4.9,
    3.9,
    3.5,
    3.0,
    2.8,
    2.7,
    2.65,
    2.6,
    2.7,
    3,
    3.5,
    5,
    9,
    20,
    50,
    90,
    99,
  ];
  const s = suggestLrs(lrs, losses, 20)!;
  assertEquals(s.steep, { lr: lrs[3], loss: 4.9 });
  assertEquals(s.valley, { lr: lrs[5], loss: 3.5 });
  // A two-point falling window: fastai's valley index is −1, i.e. the last point.
  const two = suggestLrs(lrs.slice(0, 7), [3, 2, 1, 1, 1, 1, 1], 6)!;
  assertEquals([two.steep.lr, two.valley.lr], [lrs[0], lrs[1]]);
  // Six batches leave a one-point window (the last five are dropped): no suggestion.
  assertEquals(suggestLrs(lrs.slice(0, 6), losses.slice(0, 6), 6), undefined);
});

Deno.test("lr-find: a NaN ends the sweep; the suggestions use fastai's window", async () => {
  const losses = (i: number) => (i >= 60 ? NaN : 3 - Math.tanh((i - 30) / 8));
  const result = await lrFind((_, i) => Promise.resolve(losses(i)), { stopDiv: false });
  assertEquals([result.stop, result.lrs.length], ["nan", 61]);
  // fastai would have trained to 100 batches (all NaN after 60) and cut its window there.
  const fastaiLrs = Array.from({ length: 100 }, (_, i) => 1e-7 * 1e8 ** (i / 100));
  const fastaiLosses = [...result.losses.slice(0, 60), ...new Array(40).fill(NaN)];
  assertEquals(result.suggestions, suggestLrs(fastaiLrs, fastaiLosses, 100));
  assert(result.suggestions !== undefined);
});

Deno.test("lr-find: abort stops after the batch; bad settings are refused", async () => {
  const controller = new AbortController();
  const result = await lrFind((_, i) => {
    if (i === 19) controller.abort();
    return Promise.resolve(1);
  }, { signal: controller.signal });
  assertEquals([result.stop, result.lrs.length], ["aborted", 20]);
  await assertRejects(
    () => lrFind(() => Promise.resolve(1), { startLr: 1, endLr: 0.1 }),
    Error,
    "start lr",
  );
  await assertRejects(() => lrFind(() => Promise.resolve(1), { beta: 1 }), Error, "beta");
  // fastai raises num_it below 6 to 6.
  const short = await lrFind(() => Promise.resolve(1), { numIt: 2 });
  assertEquals(short.lrs.length, 6);
});

Deno.test("lr-find: the SVG plots the curve minus the last 5 batches and marks the suggestions", async () => {
  const result = await lrFind((lr) => Promise.resolve(bowl(lr)));
  const svg = lrFindSvg(result, { title: "lr-find <hotdog>" });
  assertStringIncludes(svg, "lr-find &lt;hotdog>");
  const points = svg.match(/points="([^"]*)"/)![1].split(" ");
  assertEquals(points.length, result.lrs.length - 5);
  assertStringIncludes(svg, `steep ${result.suggestions!.steep.lr.toExponential(1)}`);
  assertStringIncludes(svg, `valley ${result.suggestions!.valley.lr.toExponential(1)}`);
  assertEquals(svg.match(/r="4"/g)!.length, 4); // a dot on the curve and in the legend, each
  for (const p of points) assert(/^\d+(\.\d)?,\d+(\.\d)?$/.test(p), `point ${p}`);
});

Deno.test("lr-find: the SVG of a short or NaN sweep still draws, with no NaN coordinates", async () => {
  const nanAt3 = await lrFind((_, i) => Promise.resolve(i >= 3 ? NaN : 2 - i / 10), {
    numIt: 6,
  });
  assertEquals([nanAt3.stop, nanAt3.suggestions], ["nan", undefined]);
  const allNaN = await lrFind(() => Promise.resolve(NaN), { numIt: 6 });
  for (const result of [nanAt3, allNaN]) {
    const svg = lrFindSvg(result);
    assert(svg.startsWith("<svg") && svg.endsWith("</svg>"));
    assert(!svg.includes("NaN") && !svg.includes("Infinity"), svg);
  }
});
