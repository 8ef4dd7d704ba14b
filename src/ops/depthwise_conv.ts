/**
 * Depthwise 2-D convolution (PyTorch's Conv2d with groups = channels): each channel convolved with
 * its own k x k filter.
 *
 * The backend's conv2d has no groups, so this is a composite: the depthwise filter w [c, 1, k, k]
 * times a constant identity [c, c, 1, 1] (broadcast) is the block-diagonal full filter
 * W[o, i] = w[o] if o = i else 0, and one ordinary conv2d with it gives exactly the depthwise result
 * (the off-diagonal terms add exact zeros). The multiply's backward sums the full filter's gradient
 * back to w, keeping only the diagonal, so autograd needs nothing new. It costs c times the
 * arithmetic of a dedicated depthwise kernel: correct first, a grouped kernel can replace it later.
 *
 * @module
 */

import { type Tensor, tensor } from "../tensor.ts";
import { conv2d, type Conv2dOptions } from "./conv.ts";
import { mul } from "./elementwise.ts";

/** Convolves each channel of x [n, c, h, w] with its filter weight [c, 1, k, k], plus bias [c]. */
export function depthwiseConv2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  options: Conv2dOptions = {},
): Tensor {
  if (x.shape.length !== 4 || weight.shape.length !== 4 || weight.shape[1] !== 1) {
    throw new RangeError(
      `depthwiseConv2d needs x [n,c,h,w] and weight [c,1,kh,kw], got [${x.shape}], [${weight.shape}]`,
    );
  }
  const c = x.shape[1];
  if (weight.shape[0] !== c) {
    throw new RangeError(`depthwiseConv2d: x has ${c} channels, weight has ${weight.shape[0]}`);
  }
  const eye = new Float32Array(c * c);
  for (let i = 0; i < c; i++) eye[i * c + i] = 1;
  const full = mul(weight, tensor(x.backend, eye, [c, c, 1, 1]));
  return conv2d(x, full, bias, options);
}
