/**
 * The reference backend's reductions.
 *
 * @module
 */

import type { ReductionOps, Storage } from "../../backend.ts";
import { sizeOf } from "../../shape.ts";
import { broadcastStrides } from "../strides.ts";
import { arr, type ReferenceMemory } from "./memory.ts";

/** The reference backend's reductions. */
export function reductionOps(mem: ReferenceMemory): ReductionOps {
  return {
    reduceSum(x: Storage, shape: readonly number[], outShape: readonly number[]): Storage {
      const a = arr(x), out = mem.alloc(sizeOf(outShape)), o = out.data;
      const so = broadcastStrides(outShape, shape);
      const rank = shape.length, idx = new Array<number>(rank).fill(0);
      let io = 0;
      for (let i = 0; i < a.length; i++) {
        o[io] += a[i];
        for (let d = rank - 1; d >= 0; d--) {
          idx[d]++;
          io += so[d];
          if (idx[d] < shape[d]) break;
          io -= so[d] * shape[d];
          idx[d] = 0;
        }
      }
      return out;
    },

    sumSquares(xs: readonly Storage[]): Storage {
      let s = 0;
      for (const x of xs) {
        const a = arr(x);
        for (let i = 0; i < a.length; i++) s += a[i] * a[i];
      }
      const out = mem.alloc(1);
      out.data[0] = s;
      return out;
    },
  };
}
