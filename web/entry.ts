/**
 * The browser build's entry point: the library (mod.ts), the data helpers (data.ts) and the
 * quality measures (metrics.ts) in one ES module, with the `wasm` and `webgpu` backends bundled in.
 *
 * backends.ts loads each backend with a computed `import()` so that Deno fetches it only when it is
 * chosen; a bundler cannot follow a computed specifier, so this entry registers both backends again
 * with static imports (the registry replaces a loader of the same name). Everything a backend needs
 * is inside the bundle: the WebAssembly modules are embedded as base64 (wasm/embedded.ts) and the
 * worker threads run from a Blob URL made of source text (wasm/threads.ts), so nothing is fetched
 * at run time. `deno task bundle` (scripts/bundle.ts) writes it to web/dist/diffusion.js.
 *
 * @module
 */

import { registerBackend } from "../engine.ts";
import { createWasmBackend } from "../wasm/mod.ts";
import { createWebGpuBackend, probeWebGpu } from "../gpu/mod.ts";

registerBackend("wasm", { open: async () => await createWasmBackend() });
registerBackend("webgpu", {
  probe: async () => {
    const p = await probeWebGpu();
    return { usable: p.usable, available: p.adapterInfo !== undefined, reason: p.reason };
  },
  open: async (asked) => await createWebGpuBackend({ allowFallbackAdapter: asked }),
});

export * from "../mod.ts";
export * from "../data.ts";
export * from "../metrics.ts";
