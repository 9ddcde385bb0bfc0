/**
 * Writes a file so that it is either the old or the new content, never half of one: the bytes go
 * to a temporary name in the same directory, then a rename replaces the target.
 *
 * @example
 * ```ts
 * await atomicWrite("runs/x/metrics.json", new TextEncoder().encode("{}"));
 * ```
 */
export async function atomicWrite(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const slash = path.lastIndexOf("/");
  const dir = slash >= 0 ? path.slice(0, slash) : ".";
  if (dir) await Deno.mkdir(dir, { recursive: true });
  const temp = `${path}.partial-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeFile(temp, bytes);
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
}
