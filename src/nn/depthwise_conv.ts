/**
 * The depthwise convolution layer: PyTorch's Conv2d(c, c, k, groups=c), weight [c, 1, k, k] and
 * bias [c].
 *
 * @module
 */

import { depthwiseConv2d } from "../ops/depthwise_conv.ts";
import type { Tensor } from "../tensor.ts";
import { fanInBound, type ParamSource } from "./params.ts";

/** A depthwise convolution bound to its parameters; stride 1. */
export class DepthwiseConv2d {
  /** Weight [c, 1, k, k]. */
  readonly weight: Tensor;
  /** Bias [c]. */
  readonly bias: Tensor;
  /** Zero padding. */
  readonly padding: number;

  /**
   * Declares `name.weight` [channels, 1, kernel, kernel] and `name.bias` [channels], uniform in
   * ±1/kernel (PyTorch's default, whose fan-in for groups = channels is kernel²); `padding`
   * (default 0) on every side.
   */
  constructor(params: ParamSource, name: string, channels: number, kernel: number, padding = 0) {
    const init = fanInBound(kernel * kernel);
    this.weight = params.param(`${name}.weight`, [channels, 1, kernel, kernel], init);
    this.bias = params.param(`${name}.bias`, [channels], init);
    this.padding = padding;
  }

  /** x [n, c, h, w] -> [n, c, h', w']. */
  forward(x: Tensor): Tensor {
    return depthwiseConv2d(x, this.weight, this.bias, { padding: this.padding });
  }
}
