/**
 * The wasm backend's normalisation kernels: group norm (optionally with a per-image shift and a
 * fused SiLU) and its gradient, and the row softmax and its gradient, split over threads by rows.
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
import type { WasmRuntime } from "../runtime.ts";
import { reduceSum } from "./reduction.ts";

/** The pointer of a group norm's optional shift (0 for none), its length checked. */
function shiftPtr(rt: WasmRuntime, g: GroupNormGeometry, shift?: Storage): number {
  if (!shift) return 0;
  checkGroupNormShift(g, shift.length);
  return rt.p(shift);
}

/** The wasm backend's normalisation kernels over runtime `rt`. */
export function normOps(rt: WasmRuntime): NormOps {
  return {
    groupNorm(x: Storage, p: GroupNormParams, g: GroupNormGeometry): GroupNormResult {
      const { gamma, beta, shift } = p;
      const xs = rt.s(x), gp = rt.p(gamma), bp = rt.p(beta), sp = shiftPtr(rt, g, shift);
      const y = rt.uninit(xs.length), mean = rt.uninit(g.n * g.groups);
      const rstd = rt.uninit(g.n * g.groups);
      const rowSize = (g.c / g.groups) * g.hw, silu = g.silu ? 1 : 0;
      rt.par(
        "groupNorm",
        g.n * g.groups,
        1,
        Math.ceil(rt.minElements / rowSize),
        (b, e) => [
          xs.ptr,
          gp,
          bp,
          sp,
          y.ptr,
          mean.ptr,
          rstd.ptr,
          g.c,
          g.hw,
          g.groups,
          g.eps,
          silu,
          b,
          e,
        ],
      );
      return { y, mean, rstd };
    },

    groupNormBackward(dy: Storage, saved: GroupNormSaved, g: GroupNormGeometry): GroupNormGrads {
      const { x, gamma, beta, shift, mean, rstd } = saved;
      const xs = rt.s(x), dp = rt.p(dy), gp = rt.p(gamma);
      const mp = rt.p(mean), rp = rt.p(rstd), sp = shiftPtr(rt, g, shift);
      if (g.silu && !beta) throw new TypeError("groupNormBackward: a fused SiLU needs beta");
      const bp = g.silu ? rt.p(beta!) : 0;
      const dx = rt.uninit(xs.length);
      const dgPart = rt.uninit(g.n * g.c), dbPart = rt.uninit(g.n * g.c);
      const dshift = shift ? rt.uninit(g.n * g.c) : null;
      const rowSize = (g.c / g.groups) * g.hw;
      rt.par(
        "groupNormBackward",
        g.n * g.groups,
        1,
        Math.ceil(rt.minElements / rowSize),
        (b, e) => [
          dp,
          xs.ptr,
          gp,
          bp,
          sp,
          mp,
          rp,
          dx.ptr,
          dgPart.ptr,
          dbPart.ptr,
          dshift ? dshift.ptr : 0,
          g.c,
          g.hw,
          g.groups,
          g.silu ? 1 : 0,
          b,
          e,
        ],
      );
      const dgamma = reduceSum(rt, dgPart, [g.n, g.c], [1, g.c]);
      const dbeta = reduceSum(rt, dbPart, [g.n, g.c], [1, g.c]);
      rt.free(dgPart);
      rt.free(dbPart);
      return dshift ? { dx, dgamma, dbeta, dshift } : { dx, dgamma, dbeta };
    },

    softmax(x: Storage, rows: number, cols: number): Storage {
      const xp = rt.p(x), out = rt.uninit(rows * cols);
      if (cols === 0) return out;
      rt.par(
        "softmax",
        rows,
        1,
        Math.ceil(rt.minElements / cols),
        (b, e) => [xp, out.ptr, cols, b, e],
      );
      return out;
    },

    softmaxBackward(y: Storage, dy: Storage, rows: number, cols: number): Storage {
      const yp = rt.p(y), dp = rt.p(dy), out = rt.uninit(rows * cols);
      if (cols === 0) return out;
      rt.par(
        "softmaxBackward",
        rows,
        1,
        Math.ceil(rt.minElements / cols),
        (b, e) => [yp, dp, out.ptr, cols, b, e],
      );
      return out;
    },
  };
}
