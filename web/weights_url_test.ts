import { assertEquals, assertRejects } from "@std/assert";
import { createHasher } from "@webtune/data";
import { fetchWeights, UnreachableError } from "./weights_url.ts";

Deno.test("weights by URL: progress, the name's hash prefix checked, a clear line when unreachable", async () => {
  const body = new Uint8Array(300_000).map((_, i) => i * 7);
  const hasher = createHasher("sha256");
  hasher.update(body);
  const prefix = hasher.hex().slice(0, 8);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(body as Uint8Array<ArrayBuffer>),
  );
  const base = `http://127.0.0.1:${server.addr.port}/models`;
  try {
    const seen: number[] = [];
    const good = await fetchWeights(`${base}/resnet18-${prefix}.pth`, {
      onProgress: (p) => seen.push(p.received),
    });
    assertEquals(good.name, `resnet18-${prefix}.pth`);
    assertEquals(good.bytes, body);
    assertEquals(seen.at(-1), body.length);
    // A name without a hash prefix: nothing to check against (as in the CLI).
    assertEquals((await fetchWeights(`${base}/mine.safetensors`)).bytes.length, body.length);
    const bad = await assertRejects(() => fetchWeights(`${base}/resnet18-00000000.pth`));
    assertEquals((bad as Error).name, "ChecksumError");
  } finally {
    await server.shutdown();
  }
  const closed = `http://127.0.0.1:${server.addr.port}/resnet18-f37072fd.pth`;
  const e = await assertRejects(() => fetchWeights(closed), UnreachableError);
  assertEquals(e.message.split("\n").length, 1);
  await assertRejects(() => fetchWeights("not a url"), Error, "not a URL");
});
