/**
 * The `webgpu` backend: tensors live in pooled GPU buffers, kernel calls record compute dispatches
 * into one command encoder, and `flush` submits it (one submit per training or sampling step).
 * `read` is the only call that waits for the GPU.
 *
 * The backend is the sum of its op groups (gpu/ops/, one file each) over one {@link GpuRuntime}
 * (gpu/runtime.ts: device, buffers, recording, submits); which kernel or tile runs is decided by
 * the pure functions of gpu/policy.ts.
 *
 * @module
 */

import { type Backend, BINARY_OPS, LOSS_KINDS, type Storage, UNARY_OPS } from "../src/backend.ts";
import { type AdapterReport, findAdapter, openDevice } from "./device.ts";
import { convDataKernel, convFilterKernel, convForwardKernel } from "./kernels/conv.ts";
import {
  affineKernel,
  axpyKernel,
  binaryBroadcastKernel,
  binarySameKernel,
  clampKernel,
  combineKernel,
  copyKernel,
  fillKernel,
  hasUnaryGrad,
  unaryGradKernel,
  unaryKernel,
} from "./kernels/elementwise.ts";
import { linearKernel, matmulKernel, TILES } from "./kernels/gemm.ts";
import {
  blockCopyKernel,
  gatherKernel,
  gatherRowsKernel,
  permuteKernel,
  upsampleGradKernel,
  upsampleKernel,
} from "./kernels/layout.ts";
import { lossGradKernel } from "./kernels/loss.ts";
import {
  groupNormAffineGradKernel,
  groupNormChannelSumsKernel,
  groupNormDxKernel,
  groupNormKernel,
  groupNormShiftDxKernel,
  softmaxGradKernel,
  softmaxKernel,
} from "./kernels/norm.ts";
import { adamKernel, emaKernel } from "./kernels/optim.ts";
import { randomKernel } from "./kernels/random.ts";
import {
  finalSumKernel,
  partialSumKernel,
  reduceSumGroupKernel,
  reduceSumThreadKernel,
  splitSumKernel,
} from "./kernels/reduce.ts";
import { convOps } from "./ops/conv.ts";
import { elementwiseOps } from "./ops/elementwise.ts";
import { layoutOps } from "./ops/layout.ts";
import { linalgOps } from "./ops/linalg.ts";
import { lossOps } from "./ops/loss.ts";
import { memoryOps } from "./ops/memory.ts";
import { normOps } from "./ops/norm.ts";
import { optimOps } from "./ops/optim.ts";
import { randomOps } from "./ops/random.ts";
import { reductionOps } from "./ops/reduction.ts";
import type { PipelineCache } from "./pipeline_cache.ts";
import type { KernelTime } from "./profiler.ts";
import { GpuRuntime, type GpuStats, type RuntimeOptions } from "./runtime.ts";
import type { KernelSpec } from "./wgsl.ts";

export { type GpuStats, GpuStorage } from "./runtime.ts";

/** Options of {@link createWebGpuBackend}. */
export interface WebGpuOptions {
  /** Accept a software adapter such as llvmpipe (for tests); default false. */
  allowFallbackAdapter?: boolean;
  /**
   * Time every dispatch on the GPU with timestamp queries (read them with
   * {@link WebGpuBackend.profile}); each dispatch then gets a compute pass of its own, a little
   * slower. Needs an adapter with the "timestamp-query" feature; default false.
   */
  profile?: boolean;
  /**
   * Compile each convolution for its shape (the geometry as constants: faster index arithmetic,
   * one pipeline per shape). Default: on for hardware adapters, off for software ones, where
   * compiling is slow.
   */
  specializeShapes?: boolean;
}

/**
 * The WebGPU backend: the kernels, and what only a GPU has (the device, pipelines, counters,
 * profile). Create it with {@link createWebGpuBackend}.
 */
export interface WebGpuBackend extends Backend {
  /** Always `"webgpu"`. */
  readonly name: "webgpu";
  /** Always `"float32"`. */
  readonly dtype: "float32";
  /** The adapter in use. */
  readonly adapterInfo: AdapterReport;
  /** The device. */
  readonly device: GPUDevice;
  /** The pipeline cache (exposed for warm-up and tests). */
  readonly pipelines: PipelineCache;
  /** Submits everything recorded, then copies `src` back (float32 always). */
  read(src: Storage): Promise<Float32Array>;
  /** Counters: submits, dispatches, pooled buffers and bytes, cached pipelines and bind groups. */
  stats(): GpuStats;
  /**
   * Compiles every kernel with `createComputePipelineAsync` ahead of use (otherwise each compiles
   * synchronously on first use); rejects with a clear Error if one does not compile.
   */
  warmup(): Promise<void>;
  /**
   * GPU time per kernel since the backend was made (or the last `profile(true)`), largest first;
   * only with the `profile` option. Waits for the stamps of everything submitted (flush first).
   */
  profile(reset?: boolean): Promise<KernelTime[]>;
  /** Waits until the GPU has finished everything submitted (and reports any error). */
  sync(): Promise<void>;
}

/** Every kernel the backend can dispatch (without aliasing variants). */
export function allKernels(): KernelSpec[] {
  return [
    fillKernel(),
    copyKernel(),
    ...UNARY_OPS.map((op) => unaryKernel(op)),
    ...UNARY_OPS.filter(hasUnaryGrad).map((op) => unaryGradKernel(op)),
    ...BINARY_OPS.flatMap((op) => [binarySameKernel(op), binaryBroadcastKernel(op)]),
    affineKernel(),
    axpyKernel(),
    clampKernel(),
    ...[1, 2, 3, 4].flatMap((t) => [combineKernel(t, false), combineKernel(t, true)]),
    reduceSumThreadKernel(),
    reduceSumGroupKernel(),
    ...(["square", ...LOSS_KINDS] as const).map((t) => partialSumKernel(t)),
    finalSumKernel(),
    splitSumKernel(),
    ...TILES.flatMap((t) => [
      matmulKernel(t),
      linearKernel(t),
      convForwardKernel(t),
      convDataKernel(t),
      convFilterKernel(t),
    ]),
    ...[false, true].flatMap((silu) => [
      ...[false, true].flatMap((shift) => [
        groupNormKernel(silu, shift),
        groupNormChannelSumsKernel(silu, shift),
      ]),
      groupNormDxKernel(silu),
      groupNormShiftDxKernel(silu),
    ]),
    groupNormAffineGradKernel(),
    softmaxKernel(),
    softmaxGradKernel(),
    permuteKernel(),
    upsampleKernel(),
    upsampleGradKernel(),
    blockCopyKernel(),
    gatherKernel(),
    gatherRowsKernel(),
    ...LOSS_KINDS.map((k) => lossGradKernel(k)),
    adamKernel(false),
    adamKernel(true),
    emaKernel(),
    ...(["uniform", "normal", "int"] as const).map((k) => randomKernel(k)),
  ];
}

/**
 * The backend on an open device: the op groups over one runtime. `options.profile` needs the
 * device opened with the "timestamp-query" feature; options as in {@link WebGpuOptions}.
 */
export function webGpuBackendOn(
  device: GPUDevice,
  adapterInfo: AdapterReport,
  options: RuntimeOptions = {},
): WebGpuBackend {
  const rt = new GpuRuntime(device, adapterInfo, options);
  return {
    name: "webgpu",
    dtype: "float32",
    adapterInfo,
    device,
    pipelines: rt.pipelines,
    stats: () => rt.stats(),
    warmup: () => rt.warmup(allKernels()),
    profile: (reset = false) => rt.profile(reset),
    sync: () => rt.sync(),
    ...memoryOps(rt),
    ...elementwiseOps(rt),
    ...reductionOps(rt),
    ...linalgOps(rt),
    ...convOps(rt),
    ...normOps(rt),
    ...layoutOps(rt),
    ...lossOps(rt),
    ...optimOps(rt),
    ...randomOps(rt),
  };
}

/**
 * Opens the WebGPU backend on the best adapter. Throws a clear Error when there is no adapter, or
 * when the only one is a software adapter (llvmpipe, SwiftShader) and `allowFallbackAdapter` is
 * not set: such adapters are slower than the WASM backend.
 */
export async function createWebGpuBackend(options: WebGpuOptions = {}): Promise<WebGpuBackend> {
  const found = await findAdapter();
  if (!found.adapter) throw new Error(`WebGPU backend unavailable: ${found.reason}`);
  const { adapter, report } = found;
  if (report.isFallbackAdapter && !options.allowFallbackAdapter) {
    throw new Error(
      `WebGPU backend unavailable: the only adapter is a software one (${report.description}); ` +
        `use the wasm backend, or pass allowFallbackAdapter: true to use it anyway`,
    );
  }
  const profile = options.profile ?? false;
  const device = await openDevice(adapter, report, profile ? ["timestamp-query"] : []);
  return webGpuBackendOn(device, report, {
    profile,
    specializeShapes: options.specializeShapes,
  });
}
