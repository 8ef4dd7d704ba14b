/**
 * The browser build: bundles web/entry.ts (the library of mod.ts with data.ts and metrics.ts, and
 * both fast backends registered by static imports) into one ES module, web/dist/diffusion.js, with
 * esbuild. The WebAssembly kernels are already in the source as base64 (wasm/embedded.ts) and the
 * wasm backend's workers run from a Blob URL of source text (wasm/threads.ts), so the one file is
 * all a page needs: it fetches nothing else at run time.
 *
 * The library's few Node built-ins (node:path and node:module, used only to read MNIST files from
 * disk) become stubs that throw when called; any other `node:` or `npm:` import fails the build.
 *
 *   deno run -A scripts/bundle.ts [--minify] [--out FILE]   (or: deno task bundle)
 *
 * @module
 */

import * as esbuild from "npm:esbuild@0.28.2";
import { parseArgs } from "node:util";

const ROOT = new URL("../", import.meta.url);
/** Where the bundle goes by default. */
export const BUNDLE_PATH = "web/dist/diffusion.js";

/** The Node built-ins the library names, and the functions it imports from each. */
const NODE_STUBS: Record<string, string[]> = {
  "node:path": ["basename", "dirname", "join", "resolve"],
  "node:module": ["createRequire"],
};

/** An esbuild plugin that turns the known Node built-ins into throwing stubs. */
const browserStubs: esbuild.Plugin = {
  name: "browser-stubs",
  setup(build) {
    build.onResolve({ filter: /^(node|npm|jsr):/ }, (args) => {
      if (args.path in NODE_STUBS) return { path: args.path, namespace: "browser-stub" };
      return {
        errors: [{ text: `${args.path} (imported by ${args.importer}) has no browser build` }],
      };
    });
    build.onLoad({ filter: /.*/, namespace: "browser-stub" }, (args) => ({
      loader: "js",
      contents: NODE_STUBS[args.path].map((name) =>
        `export function ${name}() { throw new Error("${args.path} ${name}() ` +
        `is not available in the browser build"); }`
      ).join("\n"),
    }));
  },
};

/** Options of {@link bundle}. */
export interface BundleOptions {
  /** The output file, relative to the repository root (default web/dist/diffusion.js). */
  out?: string;
  /** Minify the output (default false: readable stack traces). */
  minify?: boolean;
}

/** Builds the browser bundle; resolves to its path and size in bytes. */
export async function bundle(
  options: BundleOptions = {},
): Promise<{ path: string; bytes: number }> {
  const out = options.out ?? BUNDLE_PATH;
  try {
    const result = await esbuild.build({
      entryPoints: [new URL("web/entry.ts", ROOT).pathname],
      outfile: new URL(out, ROOT).pathname,
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      minify: options.minify ?? false,
      sourcemap: "linked",
      legalComments: "none",
      logLevel: "warning",
      plugins: [browserStubs],
    });
    if (result.errors.length > 0) throw new Error(`esbuild: ${result.errors.length} errors`);
  } finally {
    await esbuild.stop();
  }
  const { size } = await Deno.stat(new URL(out, ROOT));
  return { path: out, bytes: size };
}

if (import.meta.main) {
  const flags = parseArgs({
    args: Deno.args,
    options: { minify: { type: "boolean" }, out: { type: "string" }, help: { type: "boolean" } },
  }).values;
  if (flags.help) {
    console.log("Usage: deno run -A scripts/bundle.ts [--minify] [--out FILE]");
  } else {
    const { path, bytes } = await bundle({ minify: flags.minify, out: flags.out });
    console.log(`wrote ${path} (${(bytes / 1024).toFixed(0)} KiB)`);
  }
}
