/**
 * The fully connected layer, PyTorch layout (weight [out, in], bias [out]).
 *
 * @module
 */

import type { LinearActivation } from "../backend.ts";
import { linear } from "../ops/matmul.ts";
import type { Tensor } from "../tensor.ts";
import { fanInBound, type ParamSource } from "./params.ts";

/** A Linear layer bound to its parameters. */
export class Linear {
  /** Weight [out, in]. */
  readonly weight: Tensor;
  /** Bias [out]. */
  readonly bias: Tensor;
  /**
   * Declares `name.weight` [outFeatures, inFeatures] and `name.bias` [outFeatures], both uniform in
   * ±1/sqrt(inFeatures) (PyTorch's default initialisation).
   */
  constructor(params: ParamSource, name: string, inFeatures: number, outFeatures: number) {
    const init = fanInBound(inFeatures);
    this.weight = params.param(`${name}.weight`, [outFeatures, inFeatures], init);
    this.bias = params.param(`${name}.bias`, [outFeatures], init);
  }
  /** x [B, in] -> [B, out], then `activation` (default none), fused into the product. */
  forward(x: Tensor, activation: LinearActivation = "none"): Tensor {
    return linear(x, this.weight, this.bias, activation);
  }
}
