/**
 * Assertions for webtune's tests.
 *
 * JSR (and so `jsr:@std/assert`) is unreachable from this project's machines, so this file is the
 * one place that stands in for it, built on Node's built-in `node:assert/strict`. The names and
 * signatures follow `@std/assert`; switching back is one line in the root `deno.json`
 * (`"@std/assert": "jsr:@std/assert@1"`).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(1 + 1, 2);
 * ```
 * @module
 */
import assert from "node:assert/strict";

/** Throws unless `actual` deep-equals `expected`. */
export function assertEquals<T>(actual: unknown, expected: T, msg?: string): asserts actual is T {
  assert.deepStrictEqual(actual, expected, msg);
}

/** Throws if `actual` deep-equals `expected`. */
export function assertNotEquals(actual: unknown, expected: unknown, msg?: string): void {
  assert.notDeepStrictEqual(actual, expected, msg);
}

/** Throws unless `expr` is truthy. */
export function assert_(expr: unknown, msg = "assertion failed"): asserts expr {
  assert.ok(expr, msg);
}
export { assert_ as assert };

/** Throws unless `|actual - expected| <= tolerance`. */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance = 1e-7,
  msg?: string,
): void {
  const delta = Math.abs(actual - expected);
  if (!(delta <= tolerance)) {
    throw new assert.AssertionError({
      message: msg ??
        `expected ${actual} to be within ${tolerance} of ${expected} (delta ${delta})`,
    });
  }
}

/** Throws unless `actual > expected`. */
export function assertGreater(actual: number, expected: number, msg?: string): void {
  assert.ok(actual > expected, msg ?? `expected ${actual} > ${expected}`);
}

/** Throws unless `actual < expected`. */
export function assertLess(actual: number, expected: number, msg?: string): void {
  assert.ok(actual < expected, msg ?? `expected ${actual} < ${expected}`);
}

/** Throws unless `actual` contains `expected`. */
export function assertStringIncludes(actual: string, expected: string, msg?: string): void {
  assert.ok(
    actual.includes(expected),
    msg ?? `expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`,
  );
}

/** Throws unless `actual` matches `expected`. */
export function assertMatch(actual: string, expected: RegExp, msg?: string): void {
  assert.match(actual, expected, msg);
}

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

function checkError(e: unknown, ErrorClass?: ErrorClass, msgIncludes?: string): Error {
  if (!(e instanceof Error)) throw new assert.AssertionError({ message: `thrown non-Error ${e}` });
  if (ErrorClass && !(e instanceof ErrorClass)) {
    throw new assert.AssertionError({
      message: `expected ${ErrorClass.name}, got ${(e as Error).name}: ${(e as Error).message}`,
    });
  }
  if (msgIncludes !== undefined && !e.message.includes(msgIncludes)) {
    throw new assert.AssertionError({
      message: `expected error message to include ${JSON.stringify(msgIncludes)}, got ${
        JSON.stringify(e.message)
      }`,
    });
  }
  return e;
}

/** Throws unless `fn` throws (optionally an instance of `ErrorClass` whose message includes `msgIncludes`); returns the error. */
export function assertThrows(
  fn: () => unknown,
  ErrorClass?: ErrorClass,
  msgIncludes?: string,
): Error {
  try {
    fn();
  } catch (e) {
    return checkError(e, ErrorClass, msgIncludes);
  }
  throw new assert.AssertionError({ message: "expected function to throw" });
}

/** Async twin of {@linkcode assertThrows}. */
export async function assertRejects(
  fn: () => PromiseLike<unknown>,
  ErrorClass?: ErrorClass,
  msgIncludes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return checkError(e, ErrorClass, msgIncludes);
  }
  throw new assert.AssertionError({ message: "expected promise to reject" });
}
