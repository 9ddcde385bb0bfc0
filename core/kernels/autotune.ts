/**
 * Choosing a kernel variant per shape by measurement, and remembering the choice per adapter.
 *
 * tfjs kernel functions are synchronous, so a kernel cannot stop to time its candidates when it
 * meets a new shape. Instead {@linkcode KernelTuner.choose} answers at once: the recorded winner
 * for a shape it knows, else the family's default variant, noting the shape as pending. An
 * async {@linkcode KernelTuner.tune}, called between the first and second training step (and by
 * `bench`), times every candidate of every pending shape within a budget and records the
 * winners, which later calls then use. Stock tfjs is always a candidate, so a measured choice is
 * never slower than stock for that shape (up to timing noise).
 *
 * This file is the logic only (no tfjs): what it runs and how it waits for the GPU comes in as a
 * {@linkcode ShapeBench}, its clock as `now`, so tests drive it with a fake clock.
 *
 * @example
 * ```ts
 * import { KernelTuner, memoryKernelStore } from "./autotune.ts";
 * let clock = 0;
 * const cost: Record<string, number> = { stock: 5, fast: 2 };
 * const tuner = new KernelTuner({
 *   now: () => clock,
 *   bench: () => ({ run: async (name) => (clock += cost[name], 1), dispose() {} }),
 * });
 * await tuner.useStore(memoryKernelStore(), "adapter v1");
 * const shape = { family: "Conv2D", key: "k", label: "Conv2D k", candidates: ["stock", "fast"] };
 * tuner.choose({ ...shape, defaultVariant: "fast", spec: {} }); // "fast" (pending)
 * await tuner.tune({ budgetMs: 1000 });
 * tuner.choose({ ...shape, defaultVariant: "fast", spec: {} }); // "fast", measured 2.5× stock
 * ```
 *
 * @module
 */

/**
 * Where chosen variants persist between runs: a JSON file in the CLI's cache directory, IndexedDB
 * in the page. Keys are opaque strings (adapter, kernel-set version and shape), values variant
 * names. `load` may throw or return garbage (a corrupt file): the tuner then warns and starts
 * empty.
 */
export interface KernelChoiceStore {
  /** Every stored choice, of every adapter. */
  load(): Promise<Record<string, string>>;
  /** Replaces the stored choices (an atomic write where the medium allows). */
  save(choices: Record<string, string>): Promise<void>;
}

/** A store in memory only (tests; a run without a cache). */
export function memoryKernelStore(initial: Record<string, string> = {}): KernelChoiceStore & {
  saved: Record<string, string>;
} {
  const store = {
    saved: { ...initial },
    load: () => Promise.resolve({ ...store.saved }),
    save: (choices: Record<string, string>) => {
      store.saved = { ...choices };
      return Promise.resolve();
    },
  };
  return store;
}

/** A kernel call's shape, as the dispatch describes it to the tuner. */
export interface ShapeRequest {
  /** Kernel family, e.g. `Conv2D`. */
  family: string;
  /** Everything that can change the winner: the family, input shapes and attrs. */
  key: string;
  /** Short form for people, e.g. `Conv2D 16x16x16x64→64 k3s1`. */
  label: string;
  /** The variants that handle this call, stock included. */
  candidates: readonly string[];
  /** What runs while the shape is not yet measured. */
  defaultVariant: string;
  /** What the bench needs to rebuild the call (shapes, attrs); opaque to the tuner. */
  spec: unknown;
}

/** Runs the candidates of one pending shape on inputs it made for the purpose. */
export interface ShapeBench {
  /**
   * Runs variant `name` once and resolves, when its result has been computed, with the factor
   * that turns this run's time into the real call's: the call's batch over the batch it ran at
   * (1 where it ran the call as it is). The tuner compares these estimates, so a variant may
   * run at the call's own batch while the others run at a reduced one.
   */
  run(name: string): Promise<number>;
  /** Frees the inputs. */
  dispose(): void;
}

/** One decided shape. */
export interface KernelChoiceReport {
  family: string;
  key: string;
  label: string;
  /** The winning variant. */
  variant: string;
  /**
   * Best time of each candidate measured this run, as an estimate for the real call, ms (absent
   * for a cached choice).
   */
  ms?: Record<string, number>;
  /** Stock's best time over the winner's (absent for a cached choice). */
  speedupOverStock?: number;
  /** True when the choice came from the store, not from timing in this process. */
  cached: boolean;
  /** The request's spec (absent for a cached choice whose shape has not run yet). */
  spec?: unknown;
}

/** What one {@linkcode KernelTuner.tune} call did. */
export interface TuneReport {
  /** Wall time spent, ms. */
  ms: number;
  /** Shapes decided by this call. */
  decided: KernelChoiceReport[];
  /** Shapes still pending (the budget ran out first). */
  pending: number;
}

/**
 * The kernels one training run computes with, as recorded in its run directory: with them every
 * process of the run (a resume, an extension) runs the variants the first one did, so `auto` is
 * bit-reproducible across processes although it chooses by the clock. Keys are shape keys.
 */
export interface RunKernelChoices {
  /** The variant of every shape the run has met, from its first tuning pass on. */
  choices: Record<string, string>;
  /**
   * The step before that pass (the first step of the process that chose: shapes it had not
   * measured ran their first-use variant): the epoch it was in, and the variants it ran where
   * they differ from `choices`. A process that starts at that epoch again replays them.
   */
  firstStep?: { epoch: number; choices: Record<string, string> };
}

/** Where a run's choices go as they are decided (the run directory's file). */
export interface RunKernelStore {
  save(choices: RunKernelChoices): Promise<void>;
}

/** A run's choices while it runs (see {@linkcode KernelTuner.pinRun}). */
interface RunPins {
  store: RunKernelStore;
  /** The epoch this process starts at. */
  epoch: number;
  /** True once the variants are fixed: after the first tuning pass, or from the start. */
  pinned: boolean;
  /** The recorded and pinned variant of each shape. */
  choices: Map<string, string>;
  /** The recorded first step (its epoch is this process's: replayed until the pin). */
  firstStep?: { epoch: number; choices: Map<string, string> };
  /** What each shape ran before the pin, in this process. */
  ran: Map<string, string>;
  /** Shapes pinned since the last save. */
  dirty: boolean;
}

/** Options of {@linkcode KernelTuner}. */
export interface KernelTunerOptions {
  /** Builds the inputs for timing one pending shape. */
  bench: (shape: ShapeRequest) => ShapeBench;
  /** Clock in ms; `performance.now` by default. */
  now?: () => number;
  /** Where a one-line warning goes (a corrupt cache); `console.warn` by default. */
  warn?: (line: string) => void;
  /**
   * Waits for the GPU as a timed run does, with no work: the part of a run's time that does not
   * grow with its batch (on llvmpipe a readback takes ~13 ms even of nothing). Timed once per
   * {@linkcode KernelTuner.tune} call where a run is scaled to its call's batch, and kept out of
   * the scaling; absent: nothing is kept out.
   */
  overhead?: () => Promise<void>;
}

/** Timed rounds per candidate after its warm-up (compile) run; the minimum counts. */
export const TUNE_ROUNDS = 3;
/**
 * A candidate slower than this many times the best after the first round is dropped from the
 * remaining rounds: its minimum can only fall by noise, not by 2×, and stock's naive kernels
 * cost most of the budget otherwise.
 */
const DROP_FACTOR = 2;
/** Budget of the tuning pass between a run's first and second step. */
export const DEFAULT_TUNE_BUDGET_MS = 5000;

/** Chooses variants per shape; see the module docs. */
export class KernelTuner {
  readonly #options: KernelTunerOptions;
  readonly #now: () => number;
  /** Decided shapes of the current scope, by key. */
  readonly #choices = new Map<string, KernelChoiceReport>();
  /** Shapes met but not measured, by key, in the order first met. */
  readonly #pending = new Map<string, ShapeRequest>();
  /** Stored entries of other scopes (other adapters, older kernel sets), kept when saving. */
  #foreign: Record<string, string> = {};
  #store: KernelChoiceStore | undefined;
  #scope = "";
  #run: RunPins | undefined;
  /** Set by {@linkcode firstUseUntilTune}: known shapes run their first-use default too. */
  #firstUse = false;

  constructor(options: KernelTunerOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * Loads the choices stored for `scope` (adapter + kernel-set version) and saves new ones there.
   * A store that fails to load or holds something other than string values is ignored with one
   * warning. `fresh` ignores this scope's stored choices (they are measured again, then
   * replaced).
   */
  async useStore(
    store: KernelChoiceStore | undefined,
    scope: string,
    { fresh = false } = {},
  ): Promise<void> {
    this.#store = store;
    this.#scope = scope;
    this.#choices.clear();
    this.#pending.clear();
    this.#foreign = {};
    this.#run = undefined;
    if (!store) return;
    let loaded: unknown;
    try {
      loaded = await store.load();
    } catch (e) {
      this.#warn(`ignoring the kernel-choice cache: ${e instanceof Error ? e.message : e}`);
      return;
    }
    if (typeof loaded !== "object" || loaded === null || Array.isArray(loaded)) {
      this.#warn("ignoring the kernel-choice cache: it is not a JSON object");
      return;
    }
    const prefix = scopePrefix(scope);
    for (const [key, value] of Object.entries(loaded)) {
      if (typeof value !== "string") continue; // a damaged entry: measured again
      if (!key.startsWith(prefix)) this.#foreign[key] = value;
      else if (!fresh) {
        const shapeKey = key.slice(prefix.length);
        this.#choices.set(shapeKey, {
          family: shapeKey.split(" ")[0],
          key: shapeKey,
          label: shapeKey,
          variant: value,
          cached: true,
        });
      }
    }
  }

  /**
   * The variant to run for this call: the recorded winner, else the default (and the shape is
   * remembered as pending). Synchronous: called from inside a tfjs kernel.
   */
  choose(request: ShapeRequest): string {
    const run = this.#run;
    if (!run) return this.#chooseByClock(request);
    if (run.pinned) {
      const pinned = run.choices.get(request.key);
      if (pinned !== undefined && request.candidates.includes(pinned)) return pinned;
      // A shape first met after the pin (a last, smaller batch) gets the default by rule, not
      // by the clock or the cache, so that every process of the run computes it alike.
      if (pinned !== undefined) {
        this.#warn(
          `${request.label}: the run's recorded ${pinned} does not handle this call here; ` +
            `${request.defaultVariant} runs instead (results may round differently)`,
        );
      }
      run.choices.set(request.key, request.defaultVariant);
      run.dirty = true;
      return request.defaultVariant;
    }
    const replayed = run.firstStep &&
      (run.firstStep.choices.get(request.key) ?? run.choices.get(request.key));
    const variant = replayed && request.candidates.includes(replayed)
      ? replayed
      : this.#chooseByClock(request);
    run.ran.set(request.key, variant);
    return variant;
  }

  /**
   * {@linkcode choose} outside a pinned run: the measured or stored winner (unless
   * {@linkcode firstUseUntilTune} holds), else the default.
   */
  #chooseByClock(request: ShapeRequest): string {
    const known = this.#choices.get(request.key);
    if (known && request.candidates.includes(known.variant)) {
      if (known.spec === undefined) {
        known.label = request.label;
        known.spec = request.spec;
      }
      return this.#firstUse ? request.defaultVariant : known.variant;
    }
    if (!this.#pending.has(request.key)) this.#pending.set(request.key, request);
    return request.defaultVariant;
  }

  /**
   * Until the next {@linkcode tune} or {@linkcode endFirstUse} call, every shape runs its
   * first-use default, stored winners included: a training run's first step. Its pipelines are
   * then one generic one per conv family whatever the store holds (a first step compiles every
   * pipeline it meets; with a cold shader cache the tuned variants' specialised pipelines made a
   * second run's first step twice as slow as a first run's), and the winners run from the step
   * after the tuning pass. A pinned run ({@linkcode pinRun}) records what the first step ran.
   */
  firstUseUntilTune(): void {
    this.#firstUse = true;
  }

  /** Ends {@linkcode firstUseUntilTune} (done by {@linkcode tune} too). */
  endFirstUse(): void {
    this.#firstUse = false;
  }

  /** True while a run's choices wait for {@linkcode tune} to pin them ({@linkcode pinRun}). */
  get awaitingPin(): boolean {
    return this.#run !== undefined && !this.#run.pinned;
  }

  /** Shapes waiting for {@linkcode tune}. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Every decided shape (measured or cached), in the order decided or loaded. */
  choices(): KernelChoiceReport[] {
    return [...this.#choices.values()];
  }

  /**
   * Times the candidates of each pending shape: one warm-up run each (it compiles), then
   * {@linkcode TUNE_ROUNDS} interleaved rounds, keeping each candidate's minimum; the fastest
   * wins (ties go to the earlier candidate; list stock first). Stops starting runs once
   * `budgetMs` is spent or would be by the next run (a shape cut short during its warm-ups stays
   * pending; after a full round it is decided on what was measured), except that the first
   * shape always gets its warm-ups and one round: each call makes progress, and a later run
   * (with the choices stored) goes on from there. New choices are saved.
   */
  async tune({ budgetMs = DEFAULT_TUNE_BUDGET_MS } = {}): Promise<TuneReport> {
    this.#firstUse = false;
    this.#overheadMs = undefined;
    const start = this.#now();
    const deadline = start + budgetMs;
    const decided: KernelChoiceReport[] = [];
    for (const request of [...this.#pending.values()]) {
      if (this.#now() >= deadline) break;
      // The first shape of a call gets its warm-ups and one round whatever they cost, so that
      // every call makes progress even where one shape's compiles exceed the budget.
      const report = await this.#tuneShape(request, deadline, decided.length === 0);
      if (!report) break;
      this.#pending.delete(request.key);
      this.#choices.set(request.key, report);
      decided.push(report);
    }
    if (decided.length > 0) await this.#save();
    if (this.#run && !this.#run.pinned) this.#pin(this.#run);
    await this.saveRun();
    return { ms: this.#now() - start, decided, pending: this.#pending.size };
  }

  /**
   * Makes this process part of a run whose choices are recorded (`--kernels auto` in a run
   * directory). Until the next {@linkcode tune} call, shapes run what they would (the stored
   * winner, else the first-use default), or, when `recorded.firstStep` is at `epoch` (a run
   * resumed from the start of the epoch in which it chose), what that first step ran. The tune
   * call then pins every shape met to its variant: the recorded one, else the winner measured or
   * stored, else (not measured within the budget) the default it ran. From then on, and from
   * the start when the record was pinned in an earlier epoch, those variants run whatever the
   * clock or the cache say, and a shape met later gets its default. Each change is handed to
   * `store`: by `tune`, and by {@linkcode saveRun} for shapes met later.
   */
  pinRun(
    recorded: RunKernelChoices | undefined,
    { epoch, store }: { epoch: number; store: RunKernelStore },
  ): void {
    const firstStep = recorded?.firstStep;
    this.#run = {
      store,
      epoch,
      pinned: firstStep !== undefined && firstStep.epoch !== epoch,
      choices: new Map(Object.entries(recorded?.choices ?? {})),
      firstStep: firstStep &&
        { epoch: firstStep.epoch, choices: new Map(Object.entries(firstStep.choices)) },
      ran: new Map(),
      dirty: false,
    };
  }

  /** The run's choices as recorded now (see {@linkcode pinRun}); undefined outside a run. */
  runChoices(): RunKernelChoices | undefined {
    const run = this.#run;
    if (!run) return undefined;
    return {
      choices: Object.fromEntries(run.choices),
      ...(run.firstStep
        ? {
          firstStep: {
            epoch: run.firstStep.epoch,
            choices: Object.fromEntries(run.firstStep.choices),
          },
        }
        : {}),
    };
  }

  /** Hands the run's choices to its store if shapes were pinned since the last save. */
  async saveRun(): Promise<void> {
    const run = this.#run;
    if (!run?.dirty) return;
    run.dirty = false;
    await run.store.save(this.runChoices()!);
  }

  #pin(run: RunPins): void {
    for (const [key, ran] of run.ran) {
      if (run.choices.has(key)) continue; // recorded: replayed, and kept
      const decided = this.#pending.has(key) ? undefined : this.#choices.get(key)?.variant;
      run.choices.set(key, decided ?? ran);
    }
    const first = new Map(run.firstStep?.choices);
    for (const [key, ran] of run.ran) first.set(key, ran);
    for (const [key, variant] of first) if (run.choices.get(key) === variant) first.delete(key);
    run.firstStep = { epoch: run.firstStep?.epoch ?? run.epoch, choices: first };
    run.pinned = true;
    run.dirty = true;
  }

  async #tuneShape(
    request: ShapeRequest,
    deadline: number,
    mustFinish: boolean,
  ): Promise<KernelChoiceReport | undefined> {
    const bench = this.#options.bench(request);
    try {
      const best = new Map<string, number>();
      const last = new Map<string, number>();
      // `last` holds what a run took (for the budget); the returned estimate is for the call:
      // its work scaled to the call's batch, the fixed wait not.
      const timed = async (name: string) => {
        const t0 = this.#now();
        const scale = await bench.run(name);
        const ms = this.#now() - t0;
        last.set(name, ms);
        if (scale === 1) return ms;
        const fixed = Math.min(ms, await this.#overhead());
        return fixed + (ms - fixed) * scale;
      };
      // Warm-ups: each compiles its pipelines; their times are not kept. A candidate that
      // fails here (a pipeline the adapter rejects) is left out, with a warning.
      let alive: string[] = [];
      for (const name of request.candidates) {
        if (!mustFinish && this.#now() >= deadline) return undefined;
        try {
          await timed(name);
          alive.push(name);
        } catch (e) {
          this.#warn(`${request.label}: ${name} failed (${e instanceof Error ? e.message : e})`);
        }
      }
      if (alive.length === 0) return undefined;
      for (let round = 0; round < TUNE_ROUNDS; round++) {
        for (const name of alive) {
          const expected = round === 0 ? 0 : (last.get(name) ?? 0);
          if (!(mustFinish && round === 0) && this.#now() + expected > deadline) {
            if (round === 0) return undefined;
            return this.#decide(request, best);
          }
          const ms = await timed(name);
          best.set(name, Math.min(best.get(name) ?? Infinity, ms));
        }
        const fastest = Math.min(...alive.map((n) => best.get(n)!));
        alive = alive.filter((n) => best.get(n)! <= DROP_FACTOR * fastest);
      }
      return this.#decide(request, best);
    } finally {
      bench.dispose();
    }
  }

  #overheadMs: number | undefined;

  /** The fixed wait of a run (see `overhead` in the options): the least of a few, ms. */
  async #overhead(): Promise<number> {
    const probe = this.#options.overhead;
    if (!probe) return 0;
    if (this.#overheadMs === undefined) {
      let least = Infinity;
      for (let i = 0; i <= TUNE_ROUNDS; i++) {
        const t0 = this.#now();
        await probe();
        least = Math.min(least, this.#now() - t0);
      }
      this.#overheadMs = least;
    }
    return this.#overheadMs;
  }

  #decide(request: ShapeRequest, best: Map<string, number>): KernelChoiceReport {
    let variant = [...best.keys()][0];
    for (const name of request.candidates) {
      if (best.has(name) && best.get(name)! < best.get(variant)!) variant = name;
    }
    const stock = best.get("stock");
    return {
      family: request.family,
      key: request.key,
      label: request.label,
      variant,
      spec: request.spec,
      ms: Object.fromEntries(best),
      ...(stock === undefined ? {} : { speedupOverStock: stock / best.get(variant)! }),
      cached: false,
    };
  }

  async #save(): Promise<void> {
    if (!this.#store) return;
    const all: Record<string, string> = { ...this.#foreign };
    const prefix = scopePrefix(this.#scope);
    for (const [key, choice] of this.#choices) all[prefix + key] = choice.variant;
    try {
      await this.#store.save(all);
    } catch (e) {
      this.#warn(`could not save the kernel choices: ${e instanceof Error ? e.message : e}`);
    }
  }

  #warn(line: string): void {
    (this.#options.warn ?? ((l: string) => console.warn(l)))(`webtune: ${line}`);
  }
}

/** Stored keys are `<scope> :: <shape key>`. */
function scopePrefix(scope: string): string {
  return `${scope} :: `;
}

/**
 * One line per decided shape, e.g. `Conv2D 16x16x16x64→64 k3s1 → fast 32x2 (1.9× stock)`.
 *
 * @example
 * ```ts
 * formatChoice({ family: "Conv2D", key: "k", label: "Conv2D k", variant: "stock", cached: true });
 * // "Conv2D k → stock (cached)"
 * ```
 */
export function formatChoice(
  choice: KernelChoiceReport,
  describe?: (c: KernelChoiceReport) => string,
): string {
  const name = describe?.(choice) ?? choice.variant;
  const how = choice.cached
    ? "cached"
    : choice.speedupOverStock === undefined
    ? "measured"
    : `${choice.speedupOverStock.toFixed(2)}× stock`;
  return `${choice.label} → ${name} (${how})`;
}
