/**
 * The WebGPU backend: `createWebGpuBackend` opens it, `probeWebGpu` says whether a hardware adapter
 * exists (the `auto` choice takes WebGPU only then).
 *
 * @module
 */

export {
  createWebGpuBackend,
  type GpuStats,
  GpuStorage,
  type WebGpuBackend,
  type WebGpuOptions,
} from "./backend.ts";
export { type AdapterReport, probeWebGpu, type WebGpuProbe } from "./device.ts";

// The types of what the backend exposes beyond the kernels, for tests and tools: storage
// allocations, the pipeline cache and the kernel descriptions it compiles, profile rows.
export type { Allocation } from "./runtime.ts";
export type { PooledBuffer } from "./buffer_pool.ts";
export type { Scoped } from "../src/backends/scopes.ts";
export type { BoundRange, CompiledKernel, PipelineCache } from "./pipeline_cache.ts";
export type { BindingSpec, KernelSpec, ParamType } from "./wgsl.ts";
export type { KernelTime } from "./profiler.ts";
// The kernel interface a `Backend` is: its op groups and every type their methods take.
export * from "../src/backend_types.ts";
