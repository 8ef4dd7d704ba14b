/**
 * The wasm backend's reductions: sums over broadcast axes and the sum of squares of a list of
 * tensors. {@link reduceSum} is also the helper other groups use to add partial results.
 *
 * @module
 */

import type { ReductionOps, Storage } from "../../src/backend.ts";
import { broadcastStrides, mergeAxes, rowMajorStrides } from "../../src/backends/strides.ts";
import { sizeOf } from "../../src/shape.ts";
import type { WasmRuntime, WasmStorage } from "../runtime.ts";

/**
 * x (of `shape`) summed down to `outShape` (the same rank, 1 on the summed axes), as new storage.
 * On one thread: rows may add into the same outputs.
 */
export function reduceSum(
  rt: WasmRuntime,
  x: Storage,
  shape: readonly number[],
  outShape: readonly number[],
): WasmStorage {
  const xs = rt.s(x), out = rt.zeros(sizeOf(outShape));
  const n = sizeOf(shape);
  if (n === 0) return out;
  const loop = mergeAxes(shape, [rowMajorStrides(shape), broadcastStrides(outShape, shape)]);
  const params = rt.loop(loop.shape, [loop.strides[1]]);
  const rows = n / loop.shape[loop.shape.length - 1];
  rt.k.reduceSum(xs.ptr, out.ptr, params, 0, rows);
  return out;
}

/** The wasm backend's reductions over runtime `rt`. */
export function reductionOps(rt: WasmRuntime): ReductionOps {
  return {
    reduceSum(x: Storage, shape: readonly number[], outShape: readonly number[]): Storage {
      return reduceSum(rt, x, shape, outShape);
    },

    sumSquares(xs: readonly Storage[]): Storage {
      let s = 0;
      for (const x of xs) {
        const w = rt.s(x);
        s += rt.k.sumSquares(w.ptr, 0, w.length);
      }
      const out = rt.uninit(1);
      rt.f32[out.ptr >> 2] = s;
      return out;
    },
  };
}
