/**
 * Serves the browser demo (web/) on 127.0.0.1 with the headers that make a page cross-origin
 * isolated (`Cross-Origin-Opener-Policy: same-origin`, `Cross-Origin-Embedder-Policy:
 * require-corp`), without which a browser withholds SharedArrayBuffer and the wasm backend runs on
 * one thread. Builds the bundle (scripts/bundle.ts) first, unless `--no-build` and it exists.
 *
 *   deno run -A scripts/serve.ts [--port N] [--no-build]   (or: deno task serve)
 *
 * @module
 */

import { parseArgs } from "node:util";
import { bundle, BUNDLE_PATH } from "./bundle.ts";

const ROOT = new URL("../", import.meta.url);
const WEB = new URL("web/", ROOT);

/** Content types by file extension. */
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  map: "application/json",
  wasm: "application/wasm",
  png: "image/png",
  svg: "image/svg+xml",
  txt: "text/plain; charset=utf-8",
};

/** The headers every response carries: cross-origin isolation, and no caching of a dev build. */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store",
};

/** A running server. */
export interface WebServer {
  /** e.g. "http://127.0.0.1:8000". */
  readonly origin: string;
  /** Stops the server. */
  close(): Promise<void>;
}

/** The file under web/ that a request path names, or null for a path outside it. */
function fileOf(pathname: string): URL | null {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  const parts = path.split("/").filter((p) => p !== "");
  if (parts.some((p) => p === ".." || p === "." || p.includes("\\") || p.includes("\0"))) {
    return null;
  }
  if (path.endsWith("/")) parts.push("index.html");
  return new URL(parts.join("/"), WEB);
}

async function respond(req: Request, isolate: boolean): Promise<Response> {
  const headers = new Headers(isolate ? ISOLATION_HEADERS : { "cache-control": "no-store" });
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed", { status: 405, headers });
  }
  const file = fileOf(new URL(req.url).pathname);
  if (!file) return new Response("bad path", { status: 400, headers });
  try {
    const body = await Deno.readFile(file);
    const ext = file.pathname.split(".").pop() ?? "";
    headers.set("content-type", TYPES[ext] ?? "application/octet-stream");
    headers.set("content-length", String(body.length));
    return new Response(req.method === "HEAD" ? null : body, { headers });
  } catch (e) {
    if (e instanceof Deno.errors.IsADirectory) {
      headers.set("location", new URL(req.url).pathname + "/");
      return new Response(null, { status: 301, headers });
    }
    return new Response("not found", { status: 404, headers });
  }
}

/**
 * Serves web/ on 127.0.0.1:`port` (0: a free port); `isolate: false` leaves out the isolation
 * headers (to see the page fall back to one thread).
 */
export function serveWeb(port = 8000, options: { isolate?: boolean } = {}): WebServer {
  const isolate = options.isolate ?? true;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen() {} },
    (req) => respond(req, isolate),
  );
  const addr = server.addr as Deno.NetAddr;
  return { origin: `http://127.0.0.1:${addr.port}`, close: () => server.shutdown() };
}

async function exists(url: URL): Promise<boolean> {
  try {
    await Deno.stat(url);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const flags = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8000" },
      "no-build": { type: "boolean" },
      help: { type: "boolean" },
    },
  }).values;
  if (flags.help) {
    console.log("Usage: deno run -A scripts/serve.ts [--port N] [--no-build]");
    Deno.exit(0);
  }
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be a whole number from 0 to 65535, got ${flags.port}`);
    Deno.exit(2);
  }
  if (!flags["no-build"] || !(await exists(new URL(BUNDLE_PATH, ROOT)))) {
    const { path, bytes } = await bundle();
    console.log(`built ${path} (${(bytes / 1024).toFixed(0)} KiB)`);
  }
  const { origin } = serveWeb(port);
  console.log(`serving web/ at ${origin}/ (cross-origin isolated); Ctrl-C to stop`);
}
