/**
 * 2-D convolution (NCHW input, OIHW filter, zero padding) and its gradients.
 *
 * @module
 */

import { type Conv2dGeometry, convOutSize } from "../backend.ts";
import { result, type Tensor } from "../tensor.ts";

/** Options of {@link conv2d}. */
export interface Conv2dOptions {
  /** Stride on both axes (default 1). */
  stride?: number;
  /** Zero padding on every side (default 0). */
  padding?: number;
}

/** Convolves x [n, c, h, w] with weight [o, c, kh, kw] and adds bias [o] when given. */
export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  options: Conv2dOptions = {},
): Tensor {
  const stride = options.stride ?? 1, pad = options.padding ?? 0;
  if (x.shape.length !== 4 || weight.shape.length !== 4) {
    throw new RangeError(
      `conv2d needs x [n,c,h,w] and weight [o,c,kh,kw], got [${x.shape}], [${weight.shape}]`,
    );
  }
  const [n, c, h, w] = x.shape, [o, wc, kh, kw] = weight.shape;
  if (wc !== c) throw new RangeError(`conv2d: x has ${c} channels, weight expects ${wc}`);
  if (bias && bias.size !== o) {
    throw new RangeError(`conv2d: bias has ${bias.size} values, expected ${o}`);
  }
  const g: Conv2dGeometry = {
    n,
    c,
    h,
    w,
    o,
    kh,
    kw,
    stride,
    pad,
    oh: convOutSize(h, kh, stride, pad),
    ow: convOutSize(w, kw, stride, pad),
  };
  if (g.oh < 1 || g.ow < 1) {
    throw new RangeError(`conv2d: kernel ${kh}x${kw} larger than padded input ${h}x${w}`);
  }
  const be = x.backend;
  const y = be.conv2d(x.storage, weight.storage, bias ? bias.storage : null, g);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return result("conv2d", be, y, [n, o, g.oh, g.ow], inputs, (gy) => [
    x.requiresGrad ? be.conv2dBackwardData(gy, weight.storage, g) : null,
    weight.requiresGrad ? be.conv2dBackwardFilter(x.storage, gy, g) : null,
    bias?.requiresGrad ? be.reduceSum(gy, [n, o, g.oh * g.ow], [1, o, 1]) : null,
  ]);
}
