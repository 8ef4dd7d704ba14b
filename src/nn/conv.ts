/**
 * The 2-D convolution layer, PyTorch layout (weight [out, in, k, k], bias [out]).
 *
 * @module
 */

import { conv2d } from "../ops/conv.ts";
import type { Tensor } from "../tensor.ts";
import { fanInBound, type ParamSpec, type ParamStore } from "./params.ts";

/**
 * The parameters of a Conv2d layer called `name` with a square `kernel`: weight
 * [outChannels, inChannels, kernel, kernel] and bias [outChannels], both uniform in
 * ±1/sqrt(inChannels·kernel²) (PyTorch's default initialisation).
 */
export function conv2dSpecs(
  name: string,
  inChannels: number,
  outChannels: number,
  kernel: number,
): ParamSpec[] {
  const init = fanInBound(inChannels * kernel * kernel);
  return [
    { name: `${name}.weight`, shape: [outChannels, inChannels, kernel, kernel], init },
    { name: `${name}.bias`, shape: [outChannels], init },
  ];
}

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

  /** Binds the parameters `name.weight` and `name.bias` of `store`. */
  constructor(store: ParamStore, name: string, options: Conv2dLayerOptions = {}) {
    this.weight = store.param(`${name}.weight`);
    this.bias = store.param(`${name}.bias`);
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
  }

  /** x [n, in, h, w] -> [n, out, h', w']. */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}
