/**
 * A static file server over the repository on 127.0.0.1 for tests that import the library by URL:
 * it records every path asked for, so a test can say which modules a program fetched.
 */

/** A running server: its origin, the paths requested so far, and how to stop it. */
export interface FileServer {
  /** e.g. "http://127.0.0.1:41234". */
  readonly origin: string;
  /** "host:port", for `--allow-import`. */
  readonly host: string;
  /** Every path requested, in order. */
  readonly requested: string[];
  /** Stops the server. */
  close(): Promise<void>;
}

/** Serves the files under `root` (a directory URL) on a free port of 127.0.0.1. */
export function serveFiles(root: URL): FileServer {
  const requested: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    requested.push(path);
    if (path.split("/").includes("..")) return new Response("bad path", { status: 400 });
    try {
      const body = await Deno.readFile(new URL("." + path, root));
      const type = path.endsWith(".ts") ? "application/typescript" : "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const { port } = server.addr as Deno.NetAddr;
  return {
    origin: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requested,
    close: () => server.shutdown(),
  };
}
