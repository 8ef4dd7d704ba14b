/**
 * Group normalisation and softmax.
 *
 * @module
 */

import type { GroupNormGeometry } from "../backend.ts";
import { result, type Tensor } from "../tensor.ts";

/**
 * Group normalisation of x [n, c, ...] over groups of c/groups channels and all trailing axes, with
 * per-channel scale gamma [c] and shift beta [c] (PyTorch's nn.GroupNorm).
 */
export function groupNorm(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  groups: number,
  eps = 1e-5,
): Tensor {
  const [n, c] = x.shape;
  if (x.shape.length < 2) throw new RangeError(`groupNorm needs x [n, c, ...], got [${x.shape}]`);
  if (c % groups !== 0) {
    throw new RangeError(`groupNorm: ${c} channels do not split into ${groups} groups`);
  }
  if (gamma.size !== c || beta.size !== c) {
    throw new RangeError(`groupNorm: gamma and beta need ${c} values`);
  }
  const g: GroupNormGeometry = { n, c, hw: x.size / (n * c), groups, eps };
  const be = x.backend;
  const r = be.groupNorm(x.storage, gamma.storage, beta.storage, g);
  return result("groupNorm", be, r.y, x.shape, [x, gamma, beta], (gy) => {
    const d = be.groupNormBackward(gy, x.storage, gamma.storage, r.mean, r.rstd, g);
    return [d.dx, d.dgamma, d.dbeta];
  });
}

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  const cols = x.shape[x.shape.length - 1], rows = x.size / cols;
  const be = x.backend;
  const y = be.softmax(x.storage, rows, cols);
  return result("softmax", be, y, x.shape, [x], (g) => [be.softmaxBackward(y, g, rows, cols)]);
}
