/**
 * The reference backend's layout kernels: permutes, upsampling, concatenation, slices, gathers.
 *
 * @module
 */

import type { ConcatSpec, LayoutOps, SliceSpec, Storage, UpsampleSpec } from "../../backend.ts";
import { arr, type ReferenceMemory } from "./memory.ts";

/** The reference backend's layout kernels. */
export function layoutOps(mem: ReferenceMemory): LayoutOps {
  return {
    permute(x: Storage, shape: readonly number[], perm: readonly number[]): Storage {
      const a = arr(x), out = mem.alloc(a.length), o = out.data;
      const rank = shape.length;
      const inStrides = new Array<number>(rank);
      let s = 1;
      for (let d = rank - 1; d >= 0; d--) {
        inStrides[d] = s;
        s *= shape[d];
      }
      const outShape = perm.map((p) => shape[p]);
      const st = perm.map((p) => inStrides[p]);
      const idx = new Array<number>(rank).fill(0);
      let ii = 0;
      for (let i = 0; i < o.length; i++) {
        o[i] = a[ii];
        for (let d = rank - 1; d >= 0; d--) {
          idx[d]++;
          ii += st[d];
          if (idx[d] < outShape[d]) break;
          ii -= st[d] * outShape[d];
          idx[d] = 0;
        }
      }
      return out;
    },

    upsampleNearest(x: Storage, u: UpsampleSpec): Storage {
      const { planes, h, w, factor } = u;
      const X = arr(x),
        H = h * factor,
        W = w * factor,
        out = mem.alloc(planes * H * W),
        Y = out.data;
      for (let p = 0; p < planes; p++) {
        for (let y = 0; y < H; y++) {
          const src = p * h * w + Math.floor(y / factor) * w, dst = (p * H + y) * W;
          for (let xx = 0; xx < W; xx++) Y[dst + xx] = X[src + Math.floor(xx / factor)];
        }
      }
      return out;
    },

    upsampleNearestBackward(dy: Storage, u: UpsampleSpec): Storage {
      const { planes, h, w, factor } = u;
      const D = arr(dy),
        H = h * factor,
        W = w * factor,
        out = mem.alloc(planes * h * w),
        X = out.data;
      for (let p = 0; p < planes; p++) {
        for (let y = 0; y < H; y++) {
          const dst = p * h * w + Math.floor(y / factor) * w, src = (p * H + y) * W;
          for (let xx = 0; xx < W; xx++) X[dst + Math.floor(xx / factor)] += D[src + xx];
        }
      }
      return out;
    },

    concat(xs: readonly Storage[], c: ConcatSpec): Storage {
      const { outer, sizes, inner } = c;
      const total = sizes.reduce((a, b) => a + b, 0), out = mem.alloc(outer * total * inner);
      const O = out.data;
      let off = 0;
      xs.forEach((x, i) => {
        const X = arr(x), len = sizes[i] * inner;
        for (let o = 0; o < outer; o++) {
          O.set(X.subarray(o * len, (o + 1) * len), o * total * inner + off);
        }
        off += len;
      });
      return out;
    },

    slice(x: Storage, sl: SliceSpec): Storage {
      const { outer, axis, start, len, inner } = sl;
      const X = arr(x), out = mem.alloc(outer * len * inner), O = out.data;
      for (let o = 0; o < outer; o++) {
        const src = (o * axis + start) * inner;
        O.set(X.subarray(src, src + len * inner), o * len * inner);
      }
      return out;
    },

    gather(table: Storage, index: Storage): Storage {
      const T = arr(table), I = arr(index), out = mem.alloc(I.length);
      for (let i = 0; i < I.length; i++) out.data[i] = T[I[i]];
      return out;
    },

    gatherRows(src: Storage, index: Storage, rowSize: number): Storage {
      const S = arr(src), I = arr(index), out = mem.alloc(I.length * rowSize);
      for (let i = 0; i < I.length; i++) {
        const r = I[i] * rowSize;
        out.data.set(S.subarray(r, r + rowSize), i * rowSize);
      }
      return out;
    },
  };
}
