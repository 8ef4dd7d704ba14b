/**
 * The wasm backend's layout kernels: permutes (an n-d loop over merged axes), nearest upsampling
 * and its gradient, concatenation and slices (strided row copies), and gathers, split over threads
 * by rows.
 *
 * @module
 */

import type { ConcatSpec, LayoutOps, SliceSpec, Storage, UpsampleSpec } from "../../src/backend.ts";
import { mergeAxes, rowMajorStrides } from "../../src/backends/strides.ts";
import type { WasmRuntime } from "../runtime.ts";

/** Copies `rows` rows of `len` elements between strided layouts. */
function copyRows(
  rt: WasmRuntime,
  src: number,
  srcStride: number,
  dst: number,
  dstStride: number,
  len: number,
  rows: number,
): void {
  if (len === 0 || rows === 0) return;
  rt.par(
    "copyRows",
    rows,
    1,
    Math.ceil(rt.minElements / len),
    (b, e) => [src, srcStride * 4, dst, dstStride * 4, len * 4, b, e],
  );
}

/** x (row-major, `shape`) with its axes permuted: output axis i is input axis perm[i]. */
export function permute(
  rt: WasmRuntime,
  x: Storage,
  shape: readonly number[],
  perm: readonly number[],
): Storage {
  const xs = rt.s(x), out = rt.uninit(xs.length);
  if (xs.length === 0) return out;
  const inStrides = rowMajorStrides(shape);
  const outShape = perm.map((p) => shape[p]);
  const loop = mergeAxes(outShape, [rowMajorStrides(outShape), perm.map((p) => inStrides[p])]);
  const params = rt.loop(loop.shape, [loop.strides[1]]);
  const len = loop.shape[loop.shape.length - 1];
  rt.par(
    "permute",
    xs.length / len,
    1,
    Math.ceil(rt.minElements / len),
    (b, e) => [xs.ptr, out.ptr, params, b, e],
  );
  return out;
}

/** The wasm backend's layout kernels over runtime `rt`. */
export function layoutOps(rt: WasmRuntime): LayoutOps {
  return {
    permute: (x, shape, perm) => permute(rt, x, shape, perm),

    upsampleNearest(x: Storage, u: UpsampleSpec): Storage {
      const { planes, h, w, factor } = u;
      const xp = rt.p(x), out = rt.uninit(planes * h * w * factor * factor);
      rt.par(
        "upsampleNearest",
        planes,
        1,
        Math.ceil(rt.minElements / (h * w * factor * factor)),
        (b, e) => [xp, out.ptr, h, w, factor, b, e],
      );
      return out;
    },

    upsampleNearestBackward(dy: Storage, u: UpsampleSpec): Storage {
      const { planes, h, w, factor } = u;
      const dp = rt.p(dy), out = rt.uninit(planes * h * w);
      if (factor === 2) {
        rt.par(
          "upsample2Backward",
          planes,
          1,
          Math.ceil(rt.minElements / (h * w * 4)),
          (b, e) => [dp, out.ptr, h, w, b, e],
        );
        return out;
      }
      rt.par(
        "upsampleNearestBackward",
        planes,
        1,
        Math.ceil(rt.minElements / (h * w * factor * factor)),
        (b, e) => [dp, out.ptr, h, w, factor, b, e],
      );
      return out;
    },

    concat(xs: readonly Storage[], c: ConcatSpec): Storage {
      const { outer, sizes, inner } = c;
      const total = sizes.reduce((a, b) => a + b, 0);
      const ptrs = xs.map((x) => rt.p(x));
      const out = rt.uninit(outer * total * inner);
      let off = 0;
      ptrs.forEach((p, i) => {
        const len = sizes[i] * inner;
        copyRows(rt, p, len, out.ptr + off * 4, total * inner, len, outer);
        off += len;
      });
      return out;
    },

    slice(x: Storage, sl: SliceSpec): Storage {
      const { outer, axis, start, len, inner } = sl;
      const p = rt.p(x), out = rt.uninit(outer * len * inner);
      copyRows(rt, p + start * inner * 4, axis * inner, out.ptr, len * inner, len * inner, outer);
      return out;
    },

    gather(table: Storage, index: Storage): Storage {
      const tp = rt.p(table), ix = rt.s(index), out = rt.uninit(ix.length);
      rt.each("gather", ix.length, (b, e) => [tp, ix.ptr, out.ptr, b, e]);
      return out;
    },

    gatherRows(src: Storage, index: Storage, rowSize: number): Storage {
      const sp = rt.p(src), ix = rt.s(index), out = rt.uninit(ix.length * rowSize);
      rt.par(
        "gatherRows",
        ix.length,
        1,
        Math.ceil(rt.minElements / Math.max(1, rowSize)),
        (b, e) => [sp, ix.ptr, out.ptr, rowSize, b, e],
      );
      return out;
    },
  };
}
