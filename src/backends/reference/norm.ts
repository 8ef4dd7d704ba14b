/**
 * The reference backend's group normalisation (optionally shifted and fused with a SiLU) and softmax.
 *
 * @module
 */

import type {
  GroupNormGeometry,
  GroupNormGrads,
  GroupNormParams,
  GroupNormResult,
  GroupNormSaved,
  NormOps,
  Storage,
} from "../../backend.ts";
import { checkGroupNormShift } from "../../backend.ts";
import { type Arr, arr, type ReferenceMemory } from "./memory.ts";
import { silu, siluGrad } from "./scalar.ts";

/** x, or x + shift broadcast over each (sample, channel) plane, in the backend's dtype. */
function shifted(mem: ReferenceMemory, x: Storage, g: GroupNormGeometry, shift?: Storage): Arr {
  const X = arr(x);
  if (!shift) return X;
  const S = arr(shift), { n, c, hw } = g;
  checkGroupNormShift(g, S.length);
  const out = mem.make(X.length);
  for (let p = 0; p < n * c; p++) {
    for (let i = 0; i < hw; i++) out[p * hw + i] = X[p * hw + i] + S[p];
  }
  return out;
}

/** The reference backend's normalisation kernels. */
export function normOps(mem: ReferenceMemory): NormOps {
  return {
    groupNorm(x: Storage, p: GroupNormParams, g: GroupNormGeometry): GroupNormResult {
      const { gamma, beta, shift } = p;
      const X = shifted(mem, x, g, shift), G = arr(gamma), Bt = arr(beta);
      const { n, c, hw, groups, eps } = g;
      const cpg = c / groups, size = cpg * hw;
      const y = mem.alloc(X.length), mean = mem.alloc(n * groups), rstd = mem.alloc(n * groups);
      for (let ni = 0; ni < n; ni++) {
        for (let gi = 0; gi < groups; gi++) {
          const base = (ni * c + gi * cpg) * hw;
          let s = 0;
          for (let i = 0; i < size; i++) s += X[base + i];
          const mu = s / size;
          let v = 0;
          for (let i = 0; i < size; i++) v += (X[base + i] - mu) ** 2;
          const r = 1 / Math.sqrt(v / size + eps);
          mean.data[ni * groups + gi] = mu;
          rstd.data[ni * groups + gi] = r;
          for (let cc = 0; cc < cpg; cc++) {
            const ch = gi * cpg + cc, sc = G[ch] * r, sh = Bt[ch] - mu * sc, o = base + cc * hw;
            if (g.silu) {
              for (let i = 0; i < hw; i++) y.data[o + i] = silu(X[o + i] * sc + sh);
            } else {
              for (let i = 0; i < hw; i++) y.data[o + i] = X[o + i] * sc + sh;
            }
          }
        }
      }
      return { y, mean, rstd };
    },

    groupNormBackward(dy: Storage, saved: GroupNormSaved, g: GroupNormGeometry): GroupNormGrads {
      const { x, gamma, beta, shift, mean, rstd } = saved;
      const X = shifted(mem, x, g, shift), G = arr(gamma), M = arr(mean), R = arr(rstd);
      const { n, c, hw, groups } = g;
      const cpg = c / groups, size = cpg * hw;
      const dx = mem.alloc(X.length), dgamma = mem.alloc(c), dbeta = mem.alloc(c);
      // The gradient at the affine's output: dy itself, or dy * silu'(z) with z recomputed.
      let D = arr(dy);
      if (g.silu) {
        if (!beta) throw new TypeError("groupNormBackward: a fused SiLU needs beta");
        const Bt = arr(beta), DZ = new Float64Array(X.length);
        for (let ni = 0; ni < n; ni++) {
          for (let gi = 0; gi < groups; gi++) {
            const mu = M[ni * groups + gi], r = R[ni * groups + gi];
            for (let cc = 0; cc < cpg; cc++) {
              const ch = gi * cpg + cc, o = (ni * c + ch) * hw;
              for (let i = 0; i < hw; i++) {
                DZ[o + i] = D[o + i] * siluGrad(G[ch] * (X[o + i] - mu) * r + Bt[ch]);
              }
            }
          }
        }
        D = DZ;
      }
      for (let ni = 0; ni < n; ni++) {
        for (let gi = 0; gi < groups; gi++) {
          const mu = M[ni * groups + gi], r = R[ni * groups + gi];
          const base = (ni * c + gi * cpg) * hw;
          let sd = 0, sdx = 0;
          for (let cc = 0; cc < cpg; cc++) {
            const ch = gi * cpg + cc, o = base + cc * hw;
            let db = 0, dg = 0;
            for (let i = 0; i < hw; i++) {
              const xh = (X[o + i] - mu) * r, d = D[o + i];
              db += d;
              dg += d * xh;
            }
            dbeta.data[ch] += db;
            dgamma.data[ch] += dg;
            sd += db * G[ch];
            sdx += dg * G[ch];
          }
          const md = sd / size, mdx = sdx / size;
          for (let cc = 0; cc < cpg; cc++) {
            const ch = gi * cpg + cc, o = base + cc * hw;
            for (let i = 0; i < hw; i++) {
              const xh = (X[o + i] - mu) * r;
              dx.data[o + i] = r * (D[o + i] * G[ch] - md - xh * mdx);
            }
          }
        }
      }
      if (!shift) return { dx, dgamma, dbeta };
      // d(x + shift) is dx; the shift's gradient sums it over each plane.
      const dshift = mem.alloc(n * c);
      for (let p = 0; p < n * c; p++) {
        let s = 0;
        for (let i = 0; i < hw; i++) s += dx.data[p * hw + i];
        dshift.data[p] = s;
      }
      return { dx, dgamma, dbeta, dshift };
    },

    softmax(x: Storage, rows: number, cols: number): Storage {
      const X = arr(x), out = mem.alloc(rows * cols), Y = out.data;
      for (let r = 0; r < rows; r++) {
        const o = r * cols;
        let mx = -Infinity;
        for (let j = 0; j < cols; j++) mx = Math.max(mx, X[o + j]);
        let s = 0;
        for (let j = 0; j < cols; j++) s += Y[o + j] = Math.exp(X[o + j] - mx);
        for (let j = 0; j < cols; j++) Y[o + j] /= s;
      }
      return out;
    },

    softmaxBackward(y: Storage, dy: Storage, rows: number, cols: number): Storage {
      const Y = arr(y), D = arr(dy), out = mem.alloc(rows * cols), DX = out.data;
      for (let r = 0; r < rows; r++) {
        const o = r * cols;
        let s = 0;
        for (let j = 0; j < cols; j++) s += Y[o + j] * D[o + j];
        for (let j = 0; j < cols; j++) DX[o + j] = Y[o + j] * (D[o + j] - s);
      }
      return out;
    },
  };
}
