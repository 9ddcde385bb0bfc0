/**
 * Keeping error messages to one line.
 *
 * @module
 */

/**
 * `text` with control characters (newlines included) written as `\uXXXX` escapes, so that a
 * message quoting a name from a file (a zip entry, an image path) stays one printable line
 * whatever bytes the file holds.
 *
 * @example
 * ```ts
 * import { oneLine } from "@webtune/data";
 * console.log(oneLine("bad\nname")); // bad\u000aname
 * ```
 */
export function oneLine(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex -- matching control characters is the point
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
