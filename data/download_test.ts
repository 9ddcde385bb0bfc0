import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { zipSync } from "fflate";
import { denoFs } from "./deno_fs.ts";
import { ChecksumError, download, DownloadError, type DownloadProgress } from "./download.ts";
import { createRng } from "./rng.ts";
import { tempDir } from "./test_util.ts";

const rng = createRng(9);
const payload: Uint8Array<ArrayBuffer> = zipSync({
  "data/file.bin": Uint8Array.from({ length: 300_000 }, () => rng.int(0, 256)),
}, { level: 0 }) as Uint8Array<ArrayBuffer>;

async function sha1(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-1", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A local HTTP/1.1 server on 127.0.0.1, counting requests per path. Written on raw TCP so it can
 * drop a connection in the middle of a body the way a flaky network does.
 */
function startServer() {
  const hits = new Map<string, { range: string | null }[]>();
  let flakyDrops = 1;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  const encoder = new TextEncoder();
  const head = (status: string, headers: Record<string, string | number>) =>
    encoder.encode(
      `HTTP/1.1 ${status}\r\nconnection: close\r\n` +
        Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n",
    );
  const respond = async (conn: Deno.Conn) => {
    try {
      let request = "";
      const buf = new Uint8Array(4096);
      while (!request.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        request += new TextDecoder().decode(buf.subarray(0, n));
      }
      const path = request.split(" ")[1];
      const range = /\r\nrange: *bytes=(\d+)-/i.exec(request);
      hits.set(path, [...(hits.get(path) ?? []), { range: range ? `bytes=${range[1]}-` : null }]);
      const write = async (bytes: Uint8Array) => {
        for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
      };
      if (path === "/data.zip") {
        await write(head("200 OK", { "content-length": payload.length }));
        await write(payload);
      } else if (path === "/flaky.zip" || path === "/no-range.zip") {
        const start = range ? Number(range[1]) : 0;
        if (start > 0 && path === "/flaky.zip") {
          await write(head("206 Partial Content", {
            "content-length": payload.length - start,
            "content-range": `bytes ${start}-${payload.length - 1}/${payload.length}`,
          }));
          await write(payload.subarray(start));
        } else {
          await write(head("200 OK", { "content-length": payload.length }));
          // First time: half the body, then the connection drops. Later: all of it (no Range).
          await write(flakyDrops-- > 0 ? payload.subarray(0, payload.length >> 1) : payload);
        }
      } else {
        await write(head("404 Not Found", { "content-length": 9 }));
        await write(encoder.encode("not found"));
      }
    } finally {
      conn.close();
    }
  };
  const serving = (async () => {
    for await (const conn of listener) respond(conn).catch(() => {});
  })();
  return {
    base,
    hits,
    resetFlaky: () => (flakyDrops = 1),
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving.catch(() => {});
    },
  };
}

Deno.test("download: streams with progress, checks sha1, renames; a cached file is not fetched again", async () => {
  await using dir = await tempDir();
  await using server = startServer();
  const dest = `${dir.path}/cache/data.zip`;
  const progress: DownloadProgress[] = [];
  const checksum = { algorithm: "sha1" as const, hex: await sha1(payload) };
  const first = await download(`${server.base}/data.zip`, dest, {
    fs: denoFs,
    checksum,
    onProgress: (p) => progress.push(p),
  });
  assertEquals(first, { path: dest, size: payload.length, hex: checksum.hex, cached: false });
  assertEquals(await Deno.readFile(dest), payload);
  assert(progress.length >= 1);
  assertEquals(progress.at(-1)!.received, payload.length);
  assert(
    progress.every((p, i) =>
      p.total === payload.length && (i === 0 || p.received > progress[i - 1].received)
    ),
  );

  const second = await download(`${server.base}/data.zip`, dest, { fs: denoFs, checksum });
  assertEquals(second.cached, true);
  assertEquals(
    server.hits.get("/data.zip")!.length,
    1,
    "the cached file was reused without a request",
  );
  assertEquals([...Deno.readDirSync(`${dir.path}/cache`)].map((e) => e.name), ["data.zip"]);
});

Deno.test("download: a sha1 mismatch deletes the file and says so", async () => {
  await using dir = await tempDir();
  await using server = startServer();
  const dest = `${dir.path}/data.zip`;
  const e = await assertRejects(
    () =>
      download(`${server.base}/data.zip`, dest, {
        fs: denoFs,
        checksum: { algorithm: "sha1", hex: "fba480ffa8aa7e0febbb511d181409f899b9baa5" },
      }),
    ChecksumError,
  );
  assertStringIncludes(e.message, `${server.base}/data.zip: sha1 of the download is`);
  assertStringIncludes(e.message, "deleted the downloaded file");
  assertEquals([...Deno.readDirSync(dir.path)], [], "no file and no temp file left");
  // A sha256 prefix (how the torchvision checkpoint is named) is accepted too.
  const ok = await download(`${server.base}/data.zip`, dest, { fs: denoFs });
  await download(`${server.base}/data.zip`, `${dir.path}/again.zip`, {
    fs: denoFs,
    checksum: { algorithm: "sha256", hex: ok.hex.slice(0, 8) },
  });
});

Deno.test("download: 404 fails at once with the status and URL", async () => {
  await using dir = await tempDir();
  await using server = startServer();
  const e = await assertRejects(
    () =>
      download(`${server.base}/missing.zip`, `${dir.path}/m.zip`, { fs: denoFs, retryDelayMs: 0 }),
    DownloadError,
  );
  assertEquals(e.message, `cannot download ${server.base}/missing.zip: HTTP 404 Not Found`);
  assertEquals(server.hits.get("/missing.zip")!.length, 1);
  assertEquals([...Deno.readDirSync(dir.path)], []);
});

Deno.test("download: connection refused names the URL and the way out", async () => {
  await using dir = await tempDir();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const url = `http://127.0.0.1:${port}/hotdog.zip`;
  const e = await assertRejects(
    () =>
      download(url, `${dir.path}/h.zip`, {
        fs: denoFs,
        retryDelayMs: 0,
        offlineHint: "pass --data DIR|ZIP",
      }),
    DownloadError,
  );
  assertStringIncludes(e.message, `cannot download ${url}: `);
  assertStringIncludes(e.message, "pass --data DIR|ZIP");
  assert(!e.message.includes("\n"));
});

Deno.test("download: a connection dropped mid-body is retried and resumed with Range", async () => {
  await using dir = await tempDir();
  await using server = startServer();
  const checksum = { algorithm: "sha1" as const, hex: await sha1(payload) };
  const attempts = new Set<number>();
  const r = await download(`${server.base}/flaky.zip`, `${dir.path}/f.zip`, {
    fs: denoFs,
    checksum,
    retryDelayMs: 0,
    onProgress: (p) => attempts.add(p.attempt),
  });
  assertEquals(r.size, payload.length);
  assertEquals(await Deno.readFile(`${dir.path}/f.zip`), payload);
  const hits = server.hits.get("/flaky.zip")!;
  assertEquals(hits.length, 2);
  assertEquals(hits[0].range, null);
  assertEquals(hits[1].range, `bytes=${payload.length >> 1}-`);
  assertEquals([...attempts], [1, 2]);

  // A server that ignores Range answers 200: the download restarts from zero and still verifies.
  const again = await download(`${server.base}/no-range.zip`, `${dir.path}/n.zip`, {
    fs: denoFs,
    checksum,
    retryDelayMs: 0,
  });
  assertEquals(again.size, payload.length);

  // With no retries left the error says what happened.
  server.resetFlaky();
  const e = await assertRejects(
    () =>
      download(`${server.base}/no-range.zip`, `${dir.path}/x.zip`, {
        fs: denoFs,
        retries: 0,
        retryDelayMs: 0,
      }),
    DownloadError,
  );
  assertStringIncludes(e.message, "connection dropped after");
  assertStringIncludes(e.message, "gave up after 1 attempts");
});
