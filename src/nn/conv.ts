/**
 * The 2-D convolution layer, PyTorch layout (weight [out, in, k, k], bias [out]).
 *
 * @module
 */

import { conv2d } from "../ops/conv.ts";
import type { Tensor } from "../tensor.ts";
import { fanInBound, type ParamSource } from "./params.ts";

/** Options of a {@link Conv2d} layer. */
export interface Conv2dLayerOptions {
  /** Stride on both axes (default 1). */
  stride?: number;
  /** Zero padding on every side (default 0; 1 keeps the size of a 3x3 convolution). */
  padding?: number;
}

/** A Conv2d layer bound to its parameters. */
export class Conv2d {
  /** Weight [out, in, k, k]. */
  readonly weight: Tensor;
  /** Bias [out]. */
  readonly bias: Tensor;
  /** Stride. */
  readonly stride: number;
  /** Zero padding. */
  readonly padding: number;

  /**
   * Declares `name.weight` [outChannels, inChannels, kernel, kernel] and `name.bias`
   * [outChannels], both uniform in ±1/sqrt(inChannels·kernel²) (PyTorch's default
   * initialisation).
   */
  constructor(
    params: ParamSource,
    name: string,
    inChannels: number,
    outChannels: number,
    kernel: number,
    options: Conv2dLayerOptions = {},
  ) {
    const init = fanInBound(inChannels * kernel * kernel);
    this.weight = params.param(`${name}.weight`, [outChannels, inChannels, kernel, kernel], init);
    this.bias = params.param(`${name}.bias`, [outChannels], init);
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
  }

  /** x [n, in, h, w] -> [n, out, h', w']. */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}
