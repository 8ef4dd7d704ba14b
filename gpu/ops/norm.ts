/**
 * The `webgpu` backend's normalisation kernels: GroupNorm (optionally fused with a per-channel
 * shift and SiLU) with a workgroup per (sample, group), its backward pass in three dispatches
 * (channel sums, dx, dgamma/dbeta), and row softmax.
 *
 * @module
 */

import {
  checkGroupNormShift,
  type GroupNormGeometry,
  type GroupNormGrads,
  type GroupNormParams,
  type GroupNormResult,
  type GroupNormSaved,
  type NormOps,
  type Storage,
} from "../../src/backend.ts";
import {
  groupNormAffineGradKernel,
  groupNormChannelSumsKernel,
  groupNormDxKernel,
  groupNormKernel,
  groupNormShiftDxKernel,
  softmaxGradKernel,
  softmaxKernel,
} from "../kernels/norm.ts";
import type { GpuRuntime, GpuStorage } from "../runtime.ts";
import { groupsGrid } from "../wgsl.ts";

/** A group norm's kernel parameters, for `count` workgroups with work. */
function gnParams(g: GroupNormGeometry, count: number): number[] {
  if (g.c % g.groups !== 0) {
    throw new RangeError(`groupNorm: ${g.groups} groups do not divide ${g.c} channels`);
  }
  return [g.c, g.hw, g.groups, g.c / g.groups, count, g.eps];
}

/** The `webgpu` backend's normalisation kernels on `rt`. */
export function normOps(rt: GpuRuntime): NormOps {
  /** The storage of a group norm's optional shift, its length checked. */
  const gnShift = (g: GroupNormGeometry, shift?: Storage): GpuStorage | null => {
    if (!shift) return null;
    const S = rt.storage(shift);
    checkGroupNormShift(g, S.length);
    return S;
  };

  return {
    groupNorm(x: Storage, p: GroupNormParams, g: GroupNormGeometry): GroupNormResult {
      const { gamma, beta, shift } = p;
      const X = rt.storage(x), G = rt.storage(gamma), Bt = rt.storage(beta);
      const S = gnShift(g, shift);
      const y = rt.alloc(X.length),
        mean = rt.alloc(g.n * g.groups),
        rstd = rt.alloc(g.n * g.groups);
      const count = g.n * g.groups;
      if (count > 0) {
        rt.run(
          groupNormKernel(g.silu === true, S !== null),
          S ? [X, G, Bt, S, y, mean, rstd] : [X, G, Bt, y, mean, rstd],
          gnParams(g, count),
          groupsGrid(count),
        );
      }
      return { y, mean, rstd };
    },

    groupNormBackward(dy: Storage, saved: GroupNormSaved, g: GroupNormGeometry): GroupNormGrads {
      const { x, gamma, beta, shift, mean, rstd } = saved;
      const D = rt.storage(dy), X = rt.storage(x), G = rt.storage(gamma);
      const M = rt.storage(mean), R = rt.storage(rstd), S = gnShift(g, shift);
      const silu = g.silu === true;
      if (silu && !beta) throw new TypeError("groupNormBackward: a fused SiLU needs beta");
      const Bt = silu ? rt.storage(beta!) : null;
      const dx = rt.alloc(X.length), dgamma = rt.alloc(g.c), dbeta = rt.alloc(g.c);
      const nc = g.n * g.c;
      const dshift = S ? rt.alloc(nc) : null;
      if (nc === 0) {
        rt.fill(dgamma, 0);
        rt.fill(dbeta, 0);
        return dshift ? { dx, dgamma, dbeta, dshift } : { dx, dgamma, dbeta };
      }
      // Per (sample, channel): the sums of dz and dz * xhat, and with a shift the channel's centre.
      const part = rt.scratch((S ? 3 : 2) * nc);
      const affine = Bt ? [G, Bt] : [];
      rt.run(
        groupNormChannelSumsKernel(silu, S !== null),
        [D, X, ...affine, ...(S ? [S] : []), M, R, part],
        gnParams(g, nc),
        groupsGrid(nc),
      );
      const ng = g.n * g.groups;
      if (S && dshift) {
        rt.run(
          groupNormShiftDxKernel(silu),
          Bt ? [D, X, G, Bt, R, part, dx, dshift] : [D, X, G, R, part, dx, dshift],
          [...gnParams(g, ng), nc],
          groupsGrid(ng),
        );
      } else {
        rt.run(
          groupNormDxKernel(silu),
          Bt ? [D, X, G, Bt, M, R, part, dx] : [D, X, G, M, R, part, dx],
          [...gnParams(g, ng), nc],
          groupsGrid(ng),
        );
      }
      rt.run(groupNormAffineGradKernel(), [part, dgamma, dbeta], [g.c, g.n], groupsGrid(g.c));
      return dshift ? { dx, dgamma, dbeta, dshift } : { dx, dgamma, dbeta };
    },

    softmax(x: Storage, rows: number, cols: number): Storage {
      const X = rt.storage(x), out = rt.alloc(rows * cols);
      if (rows * cols) rt.run(softmaxKernel(), [X, out], [rows, cols], groupsGrid(rows));
      return out;
    },

    softmaxBackward(y: Storage, dy: Storage, rows: number, cols: number): Storage {
      const Y = rt.storage(y), D = rt.storage(dy), out = rt.alloc(rows * cols);
      if (rows * cols) rt.run(softmaxGradKernel(), [Y, D, out], [rows, cols], groupsGrid(rows));
      return out;
    },
  };
}
