/**
 * `deno task finetune`: the chapter's `train_fine_tuning(finetune_net, 5e-5)`.
 * @module
 */
import { main } from "./shell.ts";
import { trainCommand } from "./train.ts";

if (import.meta.main) await main(trainCommand("finetune"));
