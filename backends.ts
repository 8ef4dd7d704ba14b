/**
 * The composition root of the backends: registers `wasm` and `webgpu` with the core's registry
 * (src/backends/registry.ts), each loaded with a dynamic `import()` only when it is chosen. The
 * core never imports wasm/ or gpu/, so a program that uses the `reference` backend, or only reads
 * a checkpoint, never loads the WebAssembly module or a WGSL kernel. mod.ts imports this module,
 * so every user of the library gets the three backends by name.
 *
 * @example Choosing a backend by name
 * ```ts
 * import { selectBackend } from "./backends.ts";
 *
 * const { backend, reason } = await selectBackend("auto");
 * console.log(reason); // e.g. "wasm backend (2 threads): no hardware GPU (...)"
 * backend.dispose();
 * ```
 *
 * @module
 */

import { registerBackend } from "./src/backends/registry.ts";

/**
 * Imports the module at `path` (relative to this file) when called. The specifier is computed, not
 * a string literal: Deno's module graph follows literal dynamic imports eagerly (over HTTP it would
 * download every backend at startup), but not computed ones. The price: a computed import of a
 * local file needs read permission for it, so `auto` falls back to the reference backend, saying
 * why, when a program without `--allow-read` imports the library from disk.
 */
function lazy<M>(path: string): () => Promise<M> {
  return () => import(new URL(path, import.meta.url).href) as Promise<M>;
}

const wasm = lazy<typeof import("./wasm/mod.ts")>("./wasm/mod.ts");
const gpu = lazy<typeof import("./gpu/mod.ts")>("./gpu/mod.ts");
const gpuProbe = lazy<typeof import("./gpu/device.ts")>("./gpu/device.ts");

registerBackend("wasm", {
  open: async () => (await wasm()).createWasmBackend(),
});

registerBackend("webgpu", {
  probe: async () => {
    const p = await (await gpuProbe()).probeWebGpu();
    return { usable: p.usable, available: p.adapterInfo !== undefined, reason: p.reason };
  },
  open: async (asked) => (await gpu()).createWebGpuBackend({ allowFallbackAdapter: asked }),
});

export {
  BACKEND_CHOICES,
  type BackendChoice,
  type BackendSelection,
  selectBackend,
} from "./src/backends/registry.ts";
// The kernel interface a `Backend` is: its op groups and every type their methods take.
export * from "./src/backend_types.ts";
