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
export { type Heap, WasmOutOfMemoryError } from "./heap.ts";
export { instantiate, type KernelChoice, kernelModule, type Kernels } from "./kernels.ts";
// The kernel interface a `Backend` is: its op groups and every type their methods take.
export * from "../src/backend_types.ts";
