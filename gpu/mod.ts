/**
 * The WebGPU backend: `createWebGpuBackend` opens it, `probeWebGpu` says whether a hardware adapter
 * exists (the `auto` choice takes WebGPU only then).
 *
 * @module
 */

export {
  createWebGpuBackend,
  GpuStorage,
  type WebGpuBackend,
  type WebGpuOptions,
} from "./backend.ts";
export { type AdapterReport, probeWebGpu, type WebGpuProbe } from "./device.ts";
