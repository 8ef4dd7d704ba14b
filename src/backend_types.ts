/**
 * The public face of the kernel interface (src/backend.ts): `Backend`, every type its methods take
 * or return, and the name lists that `BackendName`, `UnaryOp`, `BinaryOp` and `LossKind` are
 * derived from. Every entry point whose API names a `Backend` (mod.ts, backends.ts, metrics.ts,
 * wasm/mod.ts, gpu/mod.ts) re-exports this module, so that its documentation is complete on its
 * own (`deno doc --lint` finds no private type); engine.ts exports all of src/backend.ts, with the
 * helpers that go with these types.
 *
 * @module
 */

export { BACKEND_NAMES, BINARY_OPS, COMBINE_MAX_TERMS, LOSS_KINDS, UNARY_OPS } from "./backend.ts";
export type {
  AdamBuffers,
  AdamSettings,
  Backend,
  BackendInfo,
  BackendName,
  BinaryOp,
  BroadcastShapes,
  CombineTerm,
  ConcatSpec,
  Conv2dGeometry,
  ConvOps,
  DType,
  ElementwiseOps,
  GroupNormGeometry,
  GroupNormGrads,
  GroupNormParams,
  GroupNormResult,
  GroupNormSaved,
  LayoutOps,
  LinalgOps,
  LinearActivation,
  LinearSpec,
  LossKind,
  LossOps,
  LossSpec,
  MatmulSpec,
  MemoryOps,
  NormOps,
  OptimOps,
  RandomDraw,
  RandomOps,
  ReductionOps,
  SliceSpec,
  Storage,
  UnaryOp,
  UpsampleSpec,
} from "./backend.ts";
