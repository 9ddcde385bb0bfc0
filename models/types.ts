/**
 * The host-side tensor types every reader, writer and model function in this package exchanges.
 *
 * A state dict lives on the host (plain typed arrays) rather than as tfjs tensors so that the
 * file readers and writers need no backend, and so that the PyTorch layout (conv OIHW, linear
 * [out, in]) is kept exactly as the checkpoint has it until the model converts it once.
 *
 * @module
 */

/** One tensor on the host, in PyTorch layout (row-major, PyTorch's dimension order). */
export interface HostTensor {
  /** `float32` for weights and statistics (F16/BF16/F64 are widened on read); `int64` for counters. */
  dtype: "float32" | "int64";
  /** PyTorch's shape; `[]` for a scalar such as `num_batches_tracked`. */
  shape: number[];
  /** Row-major elements: a `Float32Array` for `float32`, a `BigInt64Array` for `int64`. */
  data: Float32Array | BigInt64Array;
}

/**
 * A PyTorch `state_dict`: tensor names (`layer1.0.conv1.weight`, `bn1.running_var`, ...) to
 * tensors in PyTorch layout. Where the source keeps an order (a `.pth` file, a model), insertion
 * order is PyTorch's `state_dict()` order.
 */
export type StateDict = Map<string, HostTensor>;

/**
 * A weights file that cannot be read: damaged, truncated, hostile or of an unsupported kind.
 * The message is one line naming the file.
 */
export class WeightsError extends Error {
  /** The error's name. */
  override name = "WeightsError";
  /** `message` is made one line with {@linkcode oneLine} (names in a file may hold newlines). */
  constructor(message: string) {
    super(oneLine(message));
  }
}

/**
 * `text` with control characters (newlines included) written as `\uXXXX` escapes, so that a
 * message quoting a name from a file stays one printable line whatever bytes the file holds.
 * (`@webtune/data` has its own copy: the two packages do not import each other.)
 */
export function oneLine(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex -- matching control characters is the point
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Number of elements of a tensor of this shape (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** `[64,3,7,7]`: how shapes are written in error messages (PyTorch's `torch.Size` without spaces). */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}
