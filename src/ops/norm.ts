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
  return groupNormOp("groupNorm", x, gamma, beta, groups, eps, false);
}

/**
 * silu(groupNorm(x, gamma, beta, groups, eps)) as one kernel forward and one backward: the same
 * values and gradients as the two ops composed, without the intermediate tensor and its extra
 * passes over memory (the backward recomputes the SiLU's input from x and the group statistics).
 */
export function groupNormSilu(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  groups: number,
  eps = 1e-5,
): Tensor {
  return groupNormOp("groupNormSilu", x, gamma, beta, groups, eps, true);
}

function groupNormOp(
  name: string,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  groups: number,
  eps: number,
  silu: boolean,
): Tensor {
  const [n, c] = x.shape;
  if (x.shape.length < 2) throw new RangeError(`${name} needs x [n, c, ...], got [${x.shape}]`);
  if (c % groups !== 0) {
    throw new RangeError(`${name}: ${c} channels do not split into ${groups} groups`);
  }
  if (gamma.size !== c || beta.size !== c) {
    throw new RangeError(`${name}: gamma and beta need ${c} values`);
  }
  const g: GroupNormGeometry = { n, c, hw: x.size / (n * c), groups, eps };
  if (silu) g.silu = true;
  const be = x.backend;
  const r = be.groupNorm(x.storage, gamma.storage, beta.storage, g);
  return result(name, be, r.y, x.shape, [x, gamma, beta], (gy) => {
    // beta is only read by the fused backward.
    const d = be.groupNormBackward(gy, x.storage, gamma.storage, r.mean, r.rstd, g, beta.storage);
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
