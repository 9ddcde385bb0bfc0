/**
 * A minimal static file handler for `web/dist/`, used by `deno task web` and the browser test
 * (`@std/http`'s `serveDir` lives on JSR, which this project cannot reach).
 *
 * @module
 */

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  map: "application/json; charset=utf-8",
  json: "application/json; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  wasm: "application/wasm",
};

/**
 * A `Deno.serve` handler serving the files under `root`; `/` is `index.html`. GET and HEAD only;
 * paths that would leave `root` are refused.
 *
 * @example
 * ```ts ignore
 * import { staticHandler } from "./static.ts";
 * Deno.serve({ hostname: "127.0.0.1", port: 0 }, staticHandler("web/dist"));
 * ```
 */
export function staticHandler(root: string): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed", { status: 405 });
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(request.url).pathname);
    } catch {
      return new Response("bad request", { status: 400 });
    }
    if (path.endsWith("/")) path += "index.html";
    // Refuse `..` outright rather than normalising it: nothing in the bundle needs it.
    if (path.split("/").some((part) => part === ".." || part.includes("\\"))) {
      return new Response("not found", { status: 404 });
    }
    let body: Uint8Array;
    try {
      body = await Deno.readFile(`${root}${path}`);
    } catch {
      return new Response("not found", { status: 404 });
    }
    const ext = path.slice(path.lastIndexOf(".") + 1).toLowerCase();
    return new Response(request.method === "HEAD" ? null : body as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": TYPES[ext] ?? "application/octet-stream",
        // Rebuilds change the files under the same names; never let a browser keep a stale one.
        "cache-control": "no-store",
      },
    });
  };
}
