/**
 * The depthwise convolution layer: PyTorch's Conv2d(c, c, k, groups=c), weight [c, 1, k, k] and
 * bias [c].
 *
 * @module
 */

import { depthwiseConv2d } from "../ops/depthwise_conv.ts";
import type { Tensor } from "../tensor.ts";
import { fanInBound, type ParamSpec, type ParamStore } from "./params.ts";

/**
 * The parameters of a depthwise convolution called `name` over `channels` with a square `kernel`:
 * weight [channels, 1, kernel, kernel] and bias [channels], uniform in ±1/kernel (PyTorch's default,
 * whose fan-in for groups = channels is kernel²).
 */
export function depthwiseConv2dSpecs(name: string, channels: number, kernel: number): ParamSpec[] {
  const init = fanInBound(kernel * kernel);
  return [
    { name: `${name}.weight`, shape: [channels, 1, kernel, kernel], init },
    { name: `${name}.bias`, shape: [channels], init },
  ];
}

/** A depthwise convolution bound to its parameters; stride 1. */
export class DepthwiseConv2d {
  /** Weight [c, 1, k, k]. */
  readonly weight: Tensor;
  /** Bias [c]. */
  readonly bias: Tensor;
  /** Zero padding. */
  readonly padding: number;

  /** Binds `name.weight` and `name.bias` of `store`; `padding` (default 0) on every side. */
  constructor(store: ParamStore, name: string, padding = 0) {
    this.weight = store.param(`${name}.weight`);
    this.bias = store.param(`${name}.bias`);
    this.padding = padding;
  }

  /** x [n, c, h, w] -> [n, c, h', w']. */
  forward(x: Tensor): Tensor {
    return depthwiseConv2d(x, this.weight, this.bias, { padding: this.padding });
  }
}
