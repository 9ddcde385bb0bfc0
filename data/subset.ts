import type { ImageSet } from "./image_set.ts";

/**
 * A random subset of `limit` images of `set` (all of them if `limit` ≥ its size), kept in the
 * set's order, like `torch.utils.data.Subset(ds, sorted(randperm(len(ds))[:limit]))`. Random
 * rather than the first `limit`, because ImageFolder orders by class and the first images would
 * all be one class. `random` makes it reproducible from the run's seed.
 *
 * @example
 * ```ts
 * const small = limitImageSet(data.train, 32, () => rng.float());
 * ```
 */
export function limitImageSet(
  set: ImageSet,
  limit: number | undefined,
  random: () => number,
): ImageSet {
  const n = set.labels.length;
  if (limit === undefined || limit >= n) return set;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`limit must be ≥ 1, got ${limit}`);
  }
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const picked = order.slice(0, limit).sort((a, b) => a - b);
  return {
    name: `${set.name} (${limit} of ${n})`,
    classes: set.classes,
    labels: Int32Array.from(picked, (i) => set.labels[i]),
    paths: picked.map((i) => set.paths[i]),
    ignored: set.ignored,
    probe: (index) => set.probe(picked[index]),
    load: (index) => set.load(picked[index]),
  };
}
