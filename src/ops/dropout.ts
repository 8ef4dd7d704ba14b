/**
 * Dropout (Srivastava et al. 2014) as a composite of existing kernels: a uniform fill from the
 * counter-based generator, a threshold built from element-wise ops, and a multiply by the scaled
 * mask, so every backend runs it and draws the same mask for the same {@link RandomDraw}.
 *
 * Element i is kept when its uniform u_i >= p (p rounded to float32, as every backend compares),
 * which happens with probability 1 - p; kept elements are scaled by 1/(1 - p), so the expectation
 * is unchanged. The gradient flows through the multiply: dx = dy * mask.
 *
 * @module
 */

import type { Backend, RandomDraw } from "../backend.ts";
import { Tensor } from "../tensor.ts";
import { mul } from "./elementwise.ts";

function checkProbability(p: number): void {
  if (typeof p !== "number" || !(p >= 0 && p < 1)) {
    throw new RangeError(`dropout: p must be a probability in [0, 1), got ${p}`);
  }
}

/**
 * The scaled keep-mask of a dropout with probability `p` over `shape`: 1/(1 - p) where the uniform
 * drawn at `draw` is >= p, 0 elsewhere. A constant (no gradient). Kernels: a uniform fill, then
 * sign(u - p) in {-1, 0, 1} mapped by floor(0.5 s + 1) to {0, 1, 1} and scaled.
 */
export function dropoutMask(
  be: Backend,
  shape: readonly number[],
  p: number,
  draw: RandomDraw,
): Tensor {
  checkProbability(p);
  const u = be.alloc(shape.reduce((a, b) => a * b, 1));
  be.randomUniform(u, draw);
  const s = be.unary("sign", be.affine(u, 1, -Math.fround(p)));
  const keep = be.unary("floor", be.affine(s, 0.5, 1));
  return new Tensor(be, be.affine(keep, 1 / (1 - p), 0), shape);
}

/**
 * x with each element zeroed with probability `p` and the rest scaled by 1/(1 - p), the mask drawn
 * at `draw` (the same draw gives the same mask). p = 0 returns x itself.
 */
export function dropout(x: Tensor, p: number, draw: RandomDraw): Tensor {
  checkProbability(p);
  if (p === 0) return x;
  return mul(x, dropoutMask(x.backend, x.shape, p, draw));
}
