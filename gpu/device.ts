/**
 * Finding a WebGPU adapter, judging whether it is a real GPU, and opening a device with the limits
 * the kernels need.
 *
 * Types: Deno 2.9's `deno.window` library already declares the WebGPU API (`GPUDevice`,
 * `navigator.gpu`, ...), so this backend uses those declarations and needs no `@webgpu/types`
 * dependency (which would redeclare the same globals and conflict).
 *
 * @module
 */

/** What is known about an adapter, as plain data. */
export interface AdapterReport {
  /** Human-readable description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or a GPU's name. */
  description: string;
  /** Vendor id or name. */
  vendor: string;
  /** Architecture, when reported. */
  architecture: string;
  /** Device id, when reported. */
  device: string;
  /** True for software or otherwise fallback adapters. */
  isFallbackAdapter: boolean;
}

/** The answer of {@link probeWebGpu}. */
export interface WebGpuProbe {
  /** True when a hardware adapter exists, so the WebGPU backend is worth using. */
  usable: boolean;
  /** One plain sentence saying why. */
  reason: string;
  /** The adapter found, if any. */
  adapterInfo?: AdapterReport;
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render/i;

/** Plain-data report of an adapter. */
export function reportAdapter(adapter: GPUAdapter): AdapterReport {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const description = info?.description || info?.device || "unknown adapter";
  return {
    description,
    vendor: String(info?.vendor ?? ""),
    architecture: String(info?.architecture ?? ""),
    device: String(info?.device ?? ""),
    isFallbackAdapter: Boolean(info?.isFallbackAdapter ?? legacy ?? false) ||
      SOFTWARE.test(description),
  };
}

/** How long to wait for `requestAdapter` before giving up. */
const ADAPTER_TIMEOUT_MS = 20_000;

/** The adapter, or a reason there is none. */
export async function findAdapter(): Promise<
  { adapter: GPUAdapter; report: AdapterReport } | { adapter: null; reason: string }
> {
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) {
    return { adapter: null, reason: "navigator.gpu is not available in this runtime" };
  }
  let adapter: GPUAdapter | null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), ADAPTER_TIMEOUT_MS);
    });
    const got = await Promise.race([
      gpu.requestAdapter({ powerPreference: "high-performance" }),
      timeout,
    ]);
    if (got === "timeout") {
      return {
        adapter: null,
        reason: `requesting a WebGPU adapter did not answer within ${ADAPTER_TIMEOUT_MS / 1000} s`,
      };
    }
    adapter = got;
  } catch (e) {
    return { adapter: null, reason: `requesting a WebGPU adapter failed: ${(e as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
  if (!adapter) return { adapter: null, reason: "no WebGPU adapter was found" };
  return { adapter, report: reportAdapter(adapter) };
}

/**
 * Says whether a hardware WebGPU adapter exists. Software adapters (llvmpipe, SwiftShader, any
 * adapter flagged `isFallbackAdapter`) are reported as not usable: the WASM backend beats them.
 */
export async function probeWebGpu(): Promise<WebGpuProbe> {
  const found = await findAdapter();
  if (!found.adapter) return { usable: false, reason: found.reason };
  const r = found.report;
  if (r.isFallbackAdapter) {
    return {
      usable: false,
      reason: `the only WebGPU adapter is a software one (${r.description})`,
      adapterInfo: r,
    };
  }
  return { usable: true, reason: `WebGPU adapter ${r.description}`, adapterInfo: r };
}

/** Limits the kernels need at least (all within WebGPU's guaranteed defaults). */
export const REQUIRED_LIMITS = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 16,
  maxComputeWorkgroupStorageSize: 8192,
  maxComputeWorkgroupsPerDimension: 65535,
  maxUniformBufferBindingSize: 256,
  maxBindGroups: 1,
} as const;

/**
 * Opens a device on `adapter`, asking for its largest buffer and storage-binding sizes (the only
 * limits where more helps) and `features`, and checking it offers what the kernels need.
 */
export async function openDevice(
  adapter: GPUAdapter,
  report: AdapterReport,
  features: readonly GPUFeatureName[] = [],
): Promise<GPUDevice> {
  for (const f of features) {
    if (!adapter.features.has(f)) {
      throw new Error(`WebGPU adapter ${report.description} lacks the "${f}" feature`);
    }
  }
  const lim = adapter.limits;
  for (const [name, need] of Object.entries(REQUIRED_LIMITS)) {
    const have = (lim as unknown as Record<string, number>)[name];
    if (typeof have === "number" && have < need) {
      throw new Error(
        `WebGPU adapter ${report.description} offers ${name} = ${have}; the kernels need ${need}`,
      );
    }
  }
  try {
    return await adapter.requestDevice({
      requiredFeatures: [...features],
      requiredLimits: {
        maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
        maxBufferSize: lim.maxBufferSize,
      },
    });
  } catch (e) {
    throw new Error(
      `WebGPU: could not open a device on ${report.description}: ${(e as Error).message}`,
    );
  }
}
