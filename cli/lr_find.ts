/**
 * `deno task lr-find`: fastai's `learn.lr_find()` (the chapter's exercise 1, "which learning rate
 * is good?") on the run that `finetune` with the same flags would train: an exponential
 * learning-rate sweep, one training batch per rate, until the loss diverges. Writes
 * `lr_find.json` and `lr_find.svg` into `--out` and prints fastai's two suggestions.
 *
 * @example
 * ```sh
 * deno task lr-find --data ../shared/datasets/hotdog-mini --image-size 64 --batch-size 16
 * ```
 *
 * @module
 */
import {
  defaultRunConfig,
  describeAdapter,
  flagName,
  LR_FIND_PARAMS,
  lrFindInputs,
  lrFindOnModel,
  type LrFindResult,
  lrFindSvg,
  prepareRun,
  RunDir,
} from "@webtune/core";
import { denoFs } from "@webtune/data/deno_fs";
import {
  defineCommand,
  EXIT_INTERRUPTED,
  type Flags,
  type FlagSpec,
  main,
  runConfigFromFlags,
} from "./shell.ts";
import { setupCommandBackend, sourceWeights } from "./flags.ts";
import { openData, openWeights } from "./sources.ts";
import { timestamp, trainFlags } from "./train.ts";

const { resume: _resume, json: _json, out: _out, ...finetuneFlags } = trainFlags("finetune");

/** `--start-lr`, `--end-lr`, `--num-it`: from core's {@linkcode LR_FIND_PARAMS}. */
const sweepFlags = Object.fromEntries(
  Object.entries(LR_FIND_PARAMS).map(([name, spec]) => [flagName(name), spec as FlagSpec]),
);

/** `lr-find`'s flags: `finetune`'s data, weights and run flags, the sweep's, `--out`. */
const FLAGS: Flags = {
  ...finetuneFlags,
  ...sweepFlags,
  out: {
    kind: "string",
    placeholder: "DIR",
    help: "where lr_find.json and lr_find.svg go (default runs/<timestamp>-lr-find)",
  },
};

/** The `lr-find` command. */
export const lrFindCommand = defineCommand({
  name: "lr-find",
  synopsis: "[options]",
  description: "fastai's lr_find: train one batch per learning rate, growing exponentially, " +
    "until the loss diverges; chart the loss and suggest a --lr (steep, valley).",
  flags: FLAGS,
  async run({ values, out: print, err }) {
    const config = runConfigFromFlags("finetune", defaultRunConfig("finetune"), values);
    const sweep = {
      startLr: values["start-lr"] as number,
      endLr: values["end-lr"] as number,
      numIt: values["num-it"] as number,
    };
    const out = String(values.out ?? `runs/${timestamp()}-lr-find`);
    const adapter = await setupCommandBackend(values.backend, values.kernels);
    print(`device: ${describeAdapter(adapter)}`);
    const data = await openData(String(values.data), config.seed, print);
    const weights = sourceWeights(values.weights, config.arch);
    const source = await openWeights(weights, print);
    const run = await prepareRun(config, data, {
      source,
      sourceName: weights,
      adapter,
    });
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    let result: LrFindResult;
    try {
      // fastai sweeps the learner as fine_tune will start it: frozen during the head-only epochs.
      if (run.recipe.startEpoch(1, 1)) print("sweeping the head only (as --freeze-epochs starts)");
      print(
        `lr-find: up to ${sweep.numIt} batches of ${config.batchSize}, lr ${sweep.startLr} → ` +
          `${sweep.endLr} (the head at × ${config.paramGroup ? config.headLrMult : 1})`,
      );
      const every = Math.max(1, Math.floor(sweep.numIt / 10));
      Deno.addSignalListener("SIGINT", onSigint);
      result = await lrFindOnModel({
        ...sweep,
        ...lrFindInputs(run),
        signal: controller.signal,
        onStep: ({ iteration, lr, smoothLoss }) => {
          if ((iteration + 1) % every === 0) {
            err(
              `  batch ${iteration + 1}: lr ${lr.toExponential(2)} loss ${smoothLoss.toFixed(4)}`,
            );
          }
        },
      });
    } finally {
      Deno.removeSignalListener("SIGINT", onSigint);
      // The sweep trained the model to divergence: nothing of it is worth keeping (fastai
      // reloads its weights afterwards).
      run.dispose();
    }
    const dir = new RunDir(denoFs, out);
    await dir.write("lrFind", JSON.stringify(result, null, 2));
    await dir.write("lrFindChart", lrFindSvg(result, { title: `lr-find (${config.task})` }));
    const stopped = {
      completed: "ran all",
      diverged: "stopped when the loss diverged after",
      nan: "stopped at a NaN loss after",
      aborted: "interrupted after",
    }[result.stop];
    print(
      `${stopped} ${result.lrs.length} batches (last lr ${result.lrs.at(-1)!.toExponential(2)})`,
    );
    const s = result.suggestions;
    if (s) {
      print(
        `suggested --lr: ${s.steep.lr.toExponential(2)} (steep), ${
          s.valley.lr.toExponential(2)
        } (valley), for --batch-size ${config.batchSize} (the loss is summed over the batch)`,
      );
    } else {
      print("too few batches for a suggestion: raise --num-it or --end-lr");
    }
    print(`wrote ${dir.path("lrFind")}, ${dir.path("lrFindChart")}`);
    return result.stop === "aborted" ? EXIT_INTERRUPTED : 0;
  },
});

if (import.meta.main) await main(lrFindCommand);
