/** Per-class precision and recall with the confusion matrix they come from. */
export interface ClassReport {
  /** `matrix[true][predicted]` counts. */
  matrix: number[][];
  accuracy: number;
  perClass: { precision: number; recall: number; support: number }[];
}

/**
 * Confusion matrix (rows: true class, columns: predicted) and per-class precision/recall, as
 * scikit-learn's `classification_report` defines them (0 when the denominator is 0).
 *
 * @example
 * ```ts
 * import { classReport } from "@webtune/core";
 * classReport([0, 1, 1], [0, 1, 0], 2).matrix; // [[1, 0], [1, 1]]
 * ```
 */
export function classReport(
  labels: ArrayLike<number>,
  predictions: ArrayLike<number>,
  numClasses: number,
): ClassReport {
  const matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) matrix[labels[i]][predictions[i]]++;
  let correct = 0;
  const perClass = matrix.map((row, c) => {
    const tp = row[c];
    correct += tp;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = matrix.reduce((a, r) => a + r[c], 0);
    return {
      precision: predicted ? tp / predicted : 0,
      recall: support ? tp / support : 0,
      support,
    };
  });
  return { matrix, accuracy: labels.length ? correct / labels.length : 0, perClass };
}
