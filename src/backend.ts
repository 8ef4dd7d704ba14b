/**
 * The one kernel interface every backend implements (`reference`, `wasm`, `webgpu`): the sum of
 * the small op groups in src/kernels/, one file each (memory, element-wise, reduction, linear
 * algebra, convolution, normalisation, layout, loss, optimizer, random).
 *
 * A {@link Storage} is an opaque handle owned by its backend: a typed array for `reference`, an
 * offset in the WebAssembly memory for `wasm`, a `GPUBuffer` range for `webgpu`. Launching a kernel
 * is a synchronous call that takes handles and returns handles (WebGPU only records it); the only
 * asynchronous operation is {@link MemoryOps.read}. Shapes are plain numbers passed with each call
 * (grouped in small spec objects where they are many), so a backend never inspects a tensor.
 *
 * Autograd lives above this interface (src/tensor.ts and src/ops/): every backward rule is written
 * with these kernels, so a model runs unchanged on every backend.
 *
 * @module
 */

import type { ConvOps } from "./kernels/conv.ts";
import type { ElementwiseOps } from "./kernels/elementwise.ts";
import type { LayoutOps } from "./kernels/layout.ts";
import type { LinalgOps } from "./kernels/linalg.ts";
import type { LossOps } from "./kernels/loss.ts";
import type { MemoryOps } from "./kernels/memory.ts";
import type { NormOps } from "./kernels/norm.ts";
import type { OptimOps } from "./kernels/optim.ts";
import type { RandomOps } from "./kernels/random.ts";
import type { ReductionOps } from "./kernels/reduction.ts";

export type { Storage } from "./kernels/memory.ts";
export type { MemoryOps } from "./kernels/memory.ts";
export {
  BINARY_OPS,
  type BinaryOp,
  type BroadcastShapes,
  COMBINE_MAX_TERMS,
  combineLength,
  type CombineTerm,
  type ElementwiseOps,
  NON_DIFFERENTIABLE_UNARY_OPS,
  UNARY_OPS,
  type UnaryOp,
} from "./kernels/elementwise.ts";
export type { ReductionOps } from "./kernels/reduction.ts";
export {
  type FullMatmulSpec,
  fullMatmulSpec,
  type LinalgOps,
  type LinearActivation,
  linearByParts,
  type LinearSpec,
  type MatmulSpec,
} from "./kernels/linalg.ts";
export { type Conv2dGeometry, conv2dGeometry, type ConvOps, convOutSize } from "./kernels/conv.ts";
export {
  checkGroupNormShift,
  type GroupNormGeometry,
  type GroupNormGrads,
  type GroupNormParams,
  type GroupNormResult,
  type GroupNormSaved,
  type NormOps,
} from "./kernels/norm.ts";
export type { ConcatSpec, LayoutOps, SliceSpec, UpsampleSpec } from "./kernels/layout.ts";
export { LOSS_KINDS, type LossKind, type LossOps, type LossSpec } from "./kernels/loss.ts";
export type { AdamBuffers, AdamSettings, OptimOps } from "./kernels/optim.ts";
export type { RandomDraw, RandomOps } from "./kernels/random.ts";

/** Element type of a backend's storage. `float64` exists on the reference backend, for gradient checks. */
export type DType = "float32" | "float64";

/** The backends, by name. */
export const BACKEND_NAMES = ["reference", "wasm", "webgpu"] as const;

/** The names of the backends. */
export type BackendName = typeof BACKEND_NAMES[number];

/** What a backend is, apart from its kernels. */
export interface BackendInfo {
  /** Which backend this is. */
  readonly name: BackendName;
  /** Element type of its storage. */
  readonly dtype: DType;
}

/**
 * The kernels: the sum of the op groups. All take and return {@link Storage} handles of this
 * backend; every returned handle is new storage unless the method says it works in place.
 */
export interface Backend
  extends
    BackendInfo,
    MemoryOps,
    ElementwiseOps,
    ReductionOps,
    LinalgOps,
    ConvOps,
    NormOps,
    LayoutOps,
    LossOps,
    OptimOps,
    RandomOps {}
