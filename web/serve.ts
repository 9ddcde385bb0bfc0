/**
 * `deno task web [--port N]`: builds the page into `web/dist/` and serves it on 127.0.0.1.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { buildWeb } from "./build.ts";
import { staticHandler } from "./static.ts";

const HELP = `deno task web [--port N]

Builds the browser page into web/dist/ and serves it on http://127.0.0.1:PORT/.
web/dist/ is plain static files: any static host can serve it.

  --port N   port to listen on (default 0: any free port)
  --help     this text`;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { port: { type: "string", default: "0" }, help: { type: "boolean", default: false } },
  });
  if (values.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`webtune web: --port expects a port number (0-65535), got ${values.port}`);
    Deno.exit(2);
  }
  const dist = await buildWeb();
  console.log(`built ${dist}`);
  Deno.serve({
    hostname: "127.0.0.1",
    port,
    // Printed here rather than by Deno so that the line is exactly the URL to open.
    onListen: ({ port }) => console.log(`http://127.0.0.1:${port}/`),
  }, staticHandler(dist));
}
