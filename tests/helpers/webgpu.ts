/**
 * What the WebGPU tests share: the probe of the adapter, as the WebGPU backend itself makes it (any
 * adapter counts, software ones such as llvmpipe included), and {@link webgpuTest}, which registers
 * a test on one backend shared by the file, ignored where there is no adapter.
 *
 * @module
 */

import {
  createWebGpuBackend,
  probeWebGpu,
  type WebGpuBackend,
  type WebGpuProbe,
} from "../../gpu/mod.ts";

/** The answer of `probeWebGpu()` on this machine. */
export const probe: WebGpuProbe = await probeWebGpu();

/** Whether a WebGPU adapter exists (a software one counts). */
export const hasWebGpuAdapter: boolean = probe.adapterInfo !== undefined;

let shared: Promise<WebGpuBackend> | undefined;

/**
 * Registers `fn` as the test `"webgpu: <name>"` on a WebGPU backend shared by the test file
 * (created on first use, on any adapter); ignored where there is no adapter.
 */
export function webgpuTest(name: string, fn: (be: WebGpuBackend) => Promise<void>): void {
  Deno.test({
    name: `webgpu: ${name}`,
    ignore: !hasWebGpuAdapter,
    // The device lives for the whole file: its ops and resources outlast each test.
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () =>
      await fn(await (shared ??= createWebGpuBackend({ allowFallbackAdapter: true }))),
  });
}
