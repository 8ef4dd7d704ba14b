/**
 * The fully connected layer, PyTorch layout (weight [out, in], bias [out]).
 *
 * @module
 */

import { linear } from "../ops/matmul.ts";
import type { Tensor } from "../tensor.ts";
import { fanInBound, type ParamSpec, type ParamStore } from "./params.ts";

/** The parameters of a Linear layer called `name` (PyTorch's default initialisation). */
export function linearSpecs(name: string, inFeatures: number, outFeatures: number): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [outFeatures, inFeatures], init: fanInBound(inFeatures) },
    { name: `${name}.bias`, shape: [outFeatures], init: fanInBound(inFeatures) },
  ];
}

/** A Linear layer bound to its parameters. */
export class Linear {
  /** Weight [out, in]. */
  readonly weight: Tensor;
  /** Bias [out]. */
  readonly bias: Tensor;
  /** Binds the parameters `name.weight` and `name.bias` of `store`. */
  constructor(store: ParamStore, name: string) {
    this.weight = store.param(`${name}.weight`);
    this.bias = store.param(`${name}.bias`);
  }
  /** x [B, in] -> [B, out]. */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
