/**
 * The reference backend's convolutions: the definition as nested loops.
 *
 * @module
 */

import type { Conv2dGeometry, ConvOps, Storage } from "../../backend.ts";
import { arr, type ReferenceMemory } from "./memory.ts";

/** The reference backend's convolutions. */
export function convOps(mem: ReferenceMemory): ConvOps {
  return {
    conv2d(x: Storage, w: Storage, bias: Storage | null, g: Conv2dGeometry): Storage {
      const X = arr(x), W = arr(w), Bv = bias ? arr(bias) : null;
      const { n, c, h, w: wd, o, kh, kw, stride, pad, oh, ow } = g;
      const out = mem.alloc(n * o * oh * ow), Y = out.data;
      for (let ni = 0; ni < n; ni++) {
        for (let oi = 0; oi < o; oi++) {
          const yo = (ni * o + oi) * oh * ow;
          if (Bv) Y.fill(Bv[oi], yo, yo + oh * ow);
          for (let ci = 0; ci < c; ci++) {
            const xo = (ni * c + ci) * h * wd;
            for (let ky = 0; ky < kh; ky++) {
              for (let kx = 0; kx < kw; kx++) {
                const wv = W[((oi * c + ci) * kh + ky) * kw + kx];
                for (let y = 0; y < oh; y++) {
                  const iy = y * stride - pad + ky;
                  if (iy < 0 || iy >= h) continue;
                  for (let xx = 0; xx < ow; xx++) {
                    const ix = xx * stride - pad + kx;
                    if (ix < 0 || ix >= wd) continue;
                    Y[yo + y * ow + xx] += wv * X[xo + iy * wd + ix];
                  }
                }
              }
            }
          }
        }
      }
      return out;
    },

    conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry): Storage {
      const D = arr(dy), W = arr(w);
      const { n, c, h, w: wd, o, kh, kw, stride, pad, oh, ow } = g;
      const out = mem.alloc(n * c * h * wd), DX = out.data;
      for (let ni = 0; ni < n; ni++) {
        for (let oi = 0; oi < o; oi++) {
          const yo = (ni * o + oi) * oh * ow;
          for (let ci = 0; ci < c; ci++) {
            const xo = (ni * c + ci) * h * wd;
            for (let ky = 0; ky < kh; ky++) {
              for (let kx = 0; kx < kw; kx++) {
                const wv = W[((oi * c + ci) * kh + ky) * kw + kx];
                for (let y = 0; y < oh; y++) {
                  const iy = y * stride - pad + ky;
                  if (iy < 0 || iy >= h) continue;
                  for (let xx = 0; xx < ow; xx++) {
                    const ix = xx * stride - pad + kx;
                    if (ix < 0 || ix >= wd) continue;
                    DX[xo + iy * wd + ix] += wv * D[yo + y * ow + xx];
                  }
                }
              }
            }
          }
        }
      }
      return out;
    },

    conv2dBackwardFilter(x: Storage, dy: Storage, g: Conv2dGeometry): Storage {
      const X = arr(x), D = arr(dy);
      const { n, c, h, w: wd, o, kh, kw, stride, pad, oh, ow } = g;
      const out = mem.alloc(o * c * kh * kw), DW = out.data;
      for (let ni = 0; ni < n; ni++) {
        for (let oi = 0; oi < o; oi++) {
          const yo = (ni * o + oi) * oh * ow;
          for (let ci = 0; ci < c; ci++) {
            const xo = (ni * c + ci) * h * wd;
            for (let ky = 0; ky < kh; ky++) {
              for (let kx = 0; kx < kw; kx++) {
                let s = 0;
                for (let y = 0; y < oh; y++) {
                  const iy = y * stride - pad + ky;
                  if (iy < 0 || iy >= h) continue;
                  for (let xx = 0; xx < ow; xx++) {
                    const ix = xx * stride - pad + kx;
                    if (ix < 0 || ix >= wd) continue;
                    s += X[xo + iy * wd + ix] * D[yo + y * ow + xx];
                  }
                }
                DW[((oi * c + ci) * kh + ky) * kw + kx] += s;
              }
            }
          }
        }
      }
      return out;
    },
  };
}
