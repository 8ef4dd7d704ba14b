/**
 * The `webgpu` backend's layout kernels: permutes (up to 8 merged axes), nearest upsampling and
 * its gradient, concatenation and slicing as block copies, and gathers. A thread per output
 * element.
 *
 * @module
 */

import type { ConcatSpec, LayoutOps, SliceSpec, Storage, UpsampleSpec } from "../../src/backend.ts";
import { rowMajorStrides } from "../../src/backends/strides.ts";
import {
  blockCopyKernel,
  gatherKernel,
  gatherRowsKernel,
  permuteKernel,
  upsampleGradKernel,
  upsampleKernel,
} from "../kernels/layout.ts";
import type { GpuRuntime } from "../runtime.ts";
import { linearGrid } from "../wgsl.ts";

/** The `webgpu` backend's layout kernels on `rt`. */
export function layoutOps(rt: GpuRuntime): LayoutOps {
  return {
    permute(x: Storage, shape: readonly number[], perm: readonly number[]): Storage {
      const X = rt.storage(x), n = X.length, out = rt.alloc(n);
      if (n === 0) return out;
      const inStrides = rowMajorStrides(shape);
      const dims: { s: number; st: number }[] = [];
      for (const p of perm) {
        const s = shape[p], st = inStrides[p];
        if (s === 1) continue;
        const last = dims.at(-1);
        if (last && last.st === st * s) {
          last.s *= s;
          last.st = st;
        } else dims.push({ s, st });
      }
      if (dims.length > 8) throw new RangeError("permute: more than 8 axes");
      rt.run(permuteKernel(), [X, out], [
        n,
        dims.length,
        dims.map((d) => d.s),
        dims.map((d) => d.st),
      ], linearGrid(n));
      return out;
    },

    upsampleNearest(x: Storage, u: UpsampleSpec): Storage {
      const { planes, h, w, factor } = u;
      const X = rt.storage(x), n = planes * h * w * factor * factor, out = rt.alloc(n);
      if (n) rt.run(upsampleKernel(), [X, out], [n, h, w, factor], linearGrid(n));
      return out;
    },

    upsampleNearestBackward(dy: Storage, u: UpsampleSpec): Storage {
      const { planes, h, w, factor } = u;
      const D = rt.storage(dy), n = planes * h * w, out = rt.alloc(n);
      if (n) rt.run(upsampleGradKernel(), [D, out], [n, h, w, factor], linearGrid(n));
      return out;
    },

    concat(xs: readonly Storage[], c: ConcatSpec): Storage {
      const { outer, sizes, inner } = c;
      const total = sizes.reduce((a, b) => a + b, 0);
      const out = rt.alloc(outer * total * inner);
      let off = 0;
      xs.forEach((x, i) => {
        const X = rt.storage(x), len = sizes[i] * inner, n = outer * len;
        if (n > 0) {
          rt.run(blockCopyKernel(), [X, out], [n, len, len, 0, total * inner, off], linearGrid(n));
        }
        off += len;
      });
      return out;
    },

    slice(x: Storage, sl: SliceSpec): Storage {
      const { outer, axis, start, len, inner } = sl;
      const X = rt.storage(x), n = outer * len * inner, out = rt.alloc(n);
      if (n) {
        rt.run(blockCopyKernel(), [X, out], [
          n,
          len * inner,
          axis * inner,
          start * inner,
          len * inner,
          0,
        ], linearGrid(n));
      }
      return out;
    },

    gather(table: Storage, index: Storage): Storage {
      const T = rt.storage(table), I = rt.storage(index), out = rt.alloc(I.length);
      if (I.length) {
        rt.run(gatherKernel(), [T, I, out], [I.length, T.length], linearGrid(I.length));
      }
      return out;
    },

    gatherRows(src: Storage, index: Storage, rowSize: number): Storage {
      const S = rt.storage(src), I = rt.storage(index), n = I.length * rowSize, out = rt.alloc(n);
      if (n) {
        rt.run(
          gatherRowsKernel(),
          [S, I, out],
          [n, rowSize, Math.floor(S.length / rowSize)],
          linearGrid(n),
        );
      }
      return out;
    },
  };
}
