/**
 * The engine's types the library's API hands out or takes: tensors (of samplers, scores and the
 * classifier), the flat parameters, the random generator's position. mod.ts and metrics.ts
 * re-export this module as types only, so that each entry point's documentation is complete on its
 * own; the classes and functions themselves are in engine.ts.
 *
 * @module
 */

export type { GradNode, Tensor } from "./tensor.ts";
export type {
  ParamEntry,
  ParamInit,
  ParamLayout,
  ParamSource,
  ParamSpec,
  ParamStore,
} from "./nn/params.ts";
export type { Random, RandomPosition } from "./random.ts";
