/**
 * The `wasm` backend's entry point: AssemblyScript kernels compiled to WebAssembly SIMD, split over
 * worker threads on shared memory. Importing it instantiates nothing; `createWasmBackend` (or the
 * synchronous `openWasmBackend`) does.
 *
 * @module
 */

export {
  createWasmBackend,
  openWasmBackend,
  type WasmBackend,
  type WasmBackendOptions,
} from "./backend.ts";
export { WasmOutOfMemoryError } from "./heap.ts";
export { instantiate, kernelModule, type Kernels } from "./kernels.ts";
