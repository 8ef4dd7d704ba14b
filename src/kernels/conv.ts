/**
 * The convolution kernels: a 2-D convolution (NCHW input, OIHW filter, zero padding, square
 * stride) and its two gradients.
 *
 * @module
 */

import type { Storage } from "./memory.ts";

/** The geometry of a 2D convolution in NCHW layout with an OIHW filter. */
export interface Conv2dGeometry {
  /** Batch size. */
  n: number;
  /** Input channels. */
  c: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Output channels. */
  o: number;
  /** Kernel height. */
  kh: number;
  /** Kernel width. */
  kw: number;
  /** Stride (both axes). */
  stride: number;
  /** Zero padding (both axes, both sides). */
  pad: number;
  /** Output height: floor((h + 2 pad - kh) / stride) + 1. */
  oh: number;
  /** Output width: floor((w + 2 pad - kw) / stride) + 1. */
  ow: number;
}

/** Output size of a convolution along one axis. */
export function convOutSize(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

/** The full geometry of a square-kernel convolution of x [n, c, h, w] to o channels. */
export function conv2dGeometry(
  n: number,
  c: number,
  h: number,
  w: number,
  o: number,
  k: number,
  stride: number,
  pad: number,
): Conv2dGeometry {
  return {
    n,
    c,
    h,
    w,
    o,
    kh: k,
    kw: k,
    stride,
    pad,
    oh: convOutSize(h, k, stride, pad),
    ow: convOutSize(w, k, stride, pad),
  };
}

/** Convolutions. */
export interface ConvOps {
  /** y[n,o,oh,ow] = sum x * w (+ bias[o]), NCHW input, OIHW filter, zero padding. */
  conv2d(x: Storage, w: Storage, bias: Storage | null, g: Conv2dGeometry): Storage;
  /** Gradient of the input of {@link ConvOps.conv2d}. */
  conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry): Storage;
  /** Gradient of the filter of {@link ConvOps.conv2d}. */
  conv2dBackwardFilter(x: Storage, dy: Storage, g: Conv2dGeometry): Storage;
}
