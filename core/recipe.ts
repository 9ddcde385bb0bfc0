/**
 * The per-epoch and per-batch settings of a training recipe beyond the chapter's (schedule,
 * warm-up, freeze epochs), applied to an optimizer from the position in the run alone, so the
 * training loop needs two calls and a resumed run continues exactly.
 *
 * @module
 */
import type { TrainEvent } from "./events.ts";
import { applySchedulePoint, type Optimizer } from "./optimizer.ts";
import { freezeSwitchAt, frozenParameters, trainableDuring } from "./param_groups.ts";
import {
  globalStep,
  type OneCycleOptions,
  scheduleAt,
  type ScheduleConfig,
  type ScheduleKind,
  warmupSteps,
} from "./schedule.ts";

/** The run settings a recipe reads (fields of the run config, plus the data's batch count). */
export interface RecipeSettings {
  /** `--lr`: the base rate the schedule scales (reported per batch). */
  lr: number;
  /**
   * Epochs the run plans (`--epochs`), the head-only ones included; cosine and one-cycle span
   * exactly these (one-cycle as two cycles when some are head-only).
   */
  epochs: number;
  batchesPerEpoch: number;
  schedule: ScheduleKind;
  /** Linear warm-up length in epochs (fractions allowed), for constant/cosine. */
  warmupEpochs: number;
  /**
   * Epochs at the start that train the head only. With `onecycle`, fastai's `fine_tune`: they get
   * their own cycle and the rest a new one at half the lr (see `FINE_TUNE_CYCLES`).
   */
  freezeEpochs: number;
  /** The classifier's state_dict prefix. Default `fc`. */
  classifier?: string;
  /** Overrides of PyTorch's `OneCycleLR` defaults. */
  oneCycle?: Partial<OneCycleOptions>;
}

/** The `freeze` event. */
export type FreezeEvent = Extract<TrainEvent, { type: "freeze" }>;

/**
 * Drives an optimizer through a recipe: which parameters learn each epoch, and the lr factor and
 * momentum/β1 of each batch. The settings are checked when it is built, with a clear message.
 *
 * @example
 * ```ts ignore
 * const recipe = new TrainingRecipe(optimizer, { lr: 1e-4, epochs: 5, batchesPerEpoch: 16,
 *   schedule: "onecycle", warmupEpochs: 0, freezeEpochs: 1 });
 * for (let epoch = startEpoch; epoch <= 5; epoch++) {
 *   const freeze = recipe.startEpoch(epoch, startEpoch);
 *   if (freeze) onEvent(freeze);
 *   for (let i = 0; i < batches; i++) {
 *     const lr = recipe.beforeBatch(epoch, i); // goes into the batch-end event
 *     await trainStep(model, batch, optimizer);
 *   }
 * }
 * ```
 */
export class TrainingRecipe {
  readonly optimizer: Optimizer;
  readonly settings: Readonly<RecipeSettings>;
  readonly totalSteps: number;
  readonly schedule: ScheduleConfig;

  constructor(optimizer: Optimizer, settings: RecipeSettings) {
    this.optimizer = optimizer;
    this.settings = settings;
    const { epochs, batchesPerEpoch, freezeEpochs } = settings;
    trainableDuring(1, freezeEpochs); // refuses a negative or fractional count
    if (freezeEpochs > 0 && freezeEpochs >= epochs) {
      throw new Error(
        `--freeze-epochs ${freezeEpochs} leaves nothing of --epochs ${epochs} to train all ` +
          `layers; to train the head only, use --freeze-backbone`,
      );
    }
    this.totalSteps = epochs * batchesPerEpoch;
    this.schedule = {
      kind: settings.schedule,
      warmupSteps: warmupSteps(settings.warmupEpochs, batchesPerEpoch),
      oneCycle: settings.oneCycle,
      freezeSteps: freezeEpochs * batchesPerEpoch,
    };
    if (settings.schedule === "onecycle" && settings.warmupEpochs > 0) {
      throw new Error("--warmup-epochs does not apply to --schedule onecycle (it warms up itself)");
    }
    // Every step's values are computed on demand; the first tells of bad settings up front.
    scheduleAt(0, this.totalSteps, this.schedule);
  }

  /**
   * Sets which parameters learn during the 1-based `epoch` (the first of this call is
   * `startEpoch`, later when resuming) and returns the `freeze` event to send before the
   * epoch's `epoch-start`, if what learns changes.
   */
  startEpoch(epoch: number, startEpoch: number): FreezeEvent | undefined {
    const { freezeEpochs, classifier } = this.settings;
    this.optimizer.frozen = frozenParameters(this.optimizer.groups, epoch, {
      freezeEpochs,
      classifier,
    });
    const trainable = freezeSwitchAt(epoch, startEpoch, freezeEpochs);
    if (!trainable) return undefined;
    return { type: "freeze", epoch, trainable, parameters: this.optimizer.trainable().length };
  }

  /**
   * Applies the schedule for the `batchIndex`-th (0-based) batch of `epoch` and returns the base
   * lr it trains at (the head's is × head-lr-mult). Past the planned epochs (the page's
   * "continue"), a constant schedule stays at the full lr; cosine and one-cycle have ended and
   * say so.
   */
  beforeBatch(epoch: number, batchIndex: number): number {
    let step = globalStep(epoch, batchIndex, this.settings.batchesPerEpoch);
    if (step >= this.totalSteps) {
      if (this.schedule.kind !== "constant") {
        throw new Error(
          `--schedule ${this.schedule.kind} spans the planned ${this.settings.epochs} epochs; ` +
            `to train longer, start a run with more --epochs`,
        );
      }
      step = this.totalSteps - 1;
    }
    const point = scheduleAt(step, this.totalSteps, this.schedule);
    applySchedulePoint(this.optimizer, point);
    return this.settings.lr * point.lrFactor;
  }
}
