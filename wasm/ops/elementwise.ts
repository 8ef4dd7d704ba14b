/**
 * The wasm backend's element-wise kernels: unary and binary ops (binary with broadcasting, as an
 * n-d loop over merged axes), affine maps, axpy, clamp and linear combinations, split over threads
 * when large.
 *
 * @module
 */

import {
  BINARY_OPS,
  type BinaryOp,
  type BroadcastShapes,
  COMBINE_MAX_TERMS,
  combineLength,
  type CombineTerm,
  type ElementwiseOps,
  NON_DIFFERENTIABLE_UNARY_OPS,
  type Storage,
  UNARY_OPS,
  type UnaryOp,
} from "../../src/backend.ts";
import { broadcastStrides, mergeAxes } from "../../src/backends/strides.ts";
import { sizeOf } from "../../src/shape.ts";
import type { WasmRuntime } from "../runtime.ts";

/**
 * The op codes of a list of op names: the positions in the list (the AssemblyScript kernels switch
 * on the same numbers: wasm/assembly/elementwise.ts, and wasm/assembly/optim.ts for the losses).
 */
export function opCodes<T extends string>(list: readonly T[]): Record<T, number> {
  return Object.fromEntries(list.map((op, i) => [op, i])) as Record<T, number>;
}

const UNARY_CODES = opCodes(UNARY_OPS);
const BINARY_CODES = opCodes(BINARY_OPS);

/** The wasm backend's element-wise kernels over runtime `rt`. */
export function elementwiseOps(rt: WasmRuntime): ElementwiseOps {
  return {
    unary(op: UnaryOp, x: Storage): Storage {
      const code = UNARY_CODES[op];
      if (code === undefined) throw new Error(`unknown unary op ${op}`);
      const xs = rt.s(x), out = rt.uninit(xs.length);
      rt.each("unary", xs.length, (b, e) => [code, xs.ptr, out.ptr, b, e]);
      return out;
    },

    unaryBackward(op: UnaryOp, x: Storage, dy: Storage): Storage {
      const code = UNARY_CODES[op];
      if (code === undefined || NON_DIFFERENTIABLE_UNARY_OPS.has(op)) {
        throw new Error(`unary op ${op} has no gradient`);
      }
      const xs = rt.s(x), dp = rt.p(dy), out = rt.uninit(xs.length);
      rt.each("unaryBackward", xs.length, (b, e) => [code, xs.ptr, dp, out.ptr, b, e]);
      return out;
    },

    binary(op: BinaryOp, a: Storage, b: Storage, shapes: BroadcastShapes): Storage {
      const { a: aShape, b: bShape, out: outShape } = shapes;
      const code = BINARY_CODES[op];
      if (code === undefined) throw new Error(`unknown binary op ${op}`);
      const as = rt.s(a), bs = rt.s(b);
      const n = sizeOf(outShape), out = rt.uninit(n);
      if (n === 0) return out;
      let loop;
      if (as.length === n && bs.length === n) {
        loop = { shape: [n], strides: [[1], [1]] };
      } else {
        loop = mergeAxes(outShape, [
          broadcastStrides(aShape, outShape),
          broadcastStrides(bShape, outShape),
        ]);
      }
      const params = rt.loop(loop.shape, loop.strides);
      const rank = loop.shape.length, len = loop.shape[rank - 1];
      if (rank === 1) {
        rt.each("binary", n, (b0, e0) => [code, as.ptr, bs.ptr, out.ptr, params, b0, e0]);
      } else {
        rt.par(
          "binary",
          n / len,
          1,
          Math.ceil(rt.minElements / len),
          (b0, e0) => [code, as.ptr, bs.ptr, out.ptr, params, b0, e0],
        );
      }
      return out;
    },

    affine(x: Storage, scale: number, shift: number): Storage {
      const xs = rt.s(x), out = rt.uninit(xs.length);
      rt.each("affine", xs.length, (b, e) => [xs.ptr, out.ptr, scale, shift, b, e]);
      return out;
    },

    axpy(y: Storage, x: Storage, alpha: number): void {
      const ys = rt.s(y), xs = rt.s(x);
      if (ys.length !== xs.length) {
        throw new RangeError(`axpy: lengths ${ys.length} and ${xs.length}`);
      }
      rt.each("axpy", ys.length, (b, e) => [ys.ptr, xs.ptr, alpha, b, e]);
    },

    clamp(x: Storage, lo: number, hi: number): Storage {
      const xs = rt.s(x), out = rt.uninit(xs.length);
      rt.each("clamp", xs.length, (b, e) => [xs.ptr, out.ptr, lo, hi, b, e]);
      return out;
    },

    combine(terms: readonly CombineTerm[], scale: number, clip: number | null): Storage {
      const n = combineLength(terms), out = rt.uninit(n);
      const xs = terms.map((t) => [rt.s(t.x).ptr, t.scale]);
      while (xs.length < COMBINE_MAX_TERMS) xs.push([0, 0]);
      const args = [terms.length, ...xs.flat(), out.ptr, scale, clip ?? 0, clip === null ? 0 : 1];
      rt.each("combine", n, (b, e) => [...args, b, e]);
      return out;
    },
  };
}
