/**
 * `deno task scratch`: the chapter's `train_fine_tuning(scratch_net, 5e-4, param_group=False)`.
 * @module
 */
import { main } from "./shell.ts";
import { trainCommand } from "./train.ts";

if (import.meta.main) await main(trainCommand("scratch"));
