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
 *
 * With `shift` (n*c values, e.g. [n, c] or [n, c, 1, 1]), normalises x + shift broadcast over the
 * trailing axes instead, fused into the same kernel: the values and gradients (the shift's
 * included) of `groupNorm(add(x, reshape(shift, [n, c, 1, ...])), ...)` without the intermediate
 * tensor.
 */
export function groupNorm(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  groups: number,
  eps = 1e-5,
  shift: Tensor | null = null,
): Tensor {
  return groupNormOp("groupNorm", x, gamma, beta, groups, eps, false, shift);
}

/**
 * silu(groupNorm(x, gamma, beta, groups, eps, shift)) as one kernel forward and one backward: the
 * same values and gradients as the two ops composed, without the intermediate tensor and its extra
 * passes over memory (the backward recomputes the SiLU's input from x, the shift and the group
 * statistics). `shift` (n*c values, optional) is added to x per (sample, channel) plane before the
 * normalisation, as in {@link groupNorm}.
 */
export function groupNormSilu(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  groups: number,
  eps = 1e-5,
  shift: Tensor | null = null,
): Tensor {
  return groupNormOp("groupNormSilu", x, gamma, beta, groups, eps, true, shift);
}

function groupNormOp(
  name: string,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  groups: number,
  eps: number,
  silu: boolean,
  shift: Tensor | null,
): Tensor {
  const [n, c] = x.shape;
  if (x.shape.length < 2) throw new RangeError(`${name} needs x [n, c, ...], got [${x.shape}]`);
  if (c % groups !== 0) {
    throw new RangeError(`${name}: ${c} channels do not split into ${groups} groups`);
  }
  if (gamma.size !== c || beta.size !== c) {
    throw new RangeError(`${name}: gamma and beta need ${c} values`);
  }
  if (shift && shift.size !== n * c) {
    throw new RangeError(`${name}: shift needs ${n * c} values (n x c), got [${shift.shape}]`);
  }
  const g: GroupNormGeometry = { n, c, hw: x.size / (n * c), groups, eps };
  if (silu) g.silu = true;
  const be = x.backend;
  const s = shift?.storage;
  const r = be.groupNorm(x.storage, { gamma: gamma.storage, beta: beta.storage, shift: s }, g);
  const inputs = shift ? [x, gamma, beta, shift] : [x, gamma, beta];
  return result(name, be, r.y, x.shape, inputs, (gy) => {
    // beta is only read by the fused backward.
    const d = be.groupNormBackward(gy, {
      x: x.storage,
      gamma: gamma.storage,
      beta: beta.storage,
      shift: s,
      mean: r.mean,
      rstd: r.rstd,
    }, g);
    return shift ? [d.dx, d.dgamma, d.dbeta, d.dshift!] : [d.dx, d.dgamma, d.dbeta];
  });
}

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  const cols = x.shape[x.shape.length - 1], rows = x.size / cols;
  const be = x.backend;
  const y = be.softmax(x.storage, rows, cols);
  return result("softmax", be, y, x.shape, [x], (g) => [be.softmaxBackward(y, g, rows, cols)]);
}
