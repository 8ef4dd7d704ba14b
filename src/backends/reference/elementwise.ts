/**
 * The reference backend's element-wise kernels: scalar loops, with fast paths for the broadcast
 * patterns the models use and a general n-d walk for the rest.
 *
 * @module
 */

import {
  type BinaryOp,
  type BroadcastShapes,
  combineLength,
  type CombineTerm,
  type ElementwiseOps,
  type Storage,
  type UnaryOp,
} from "../../backend.ts";
import { sizeOf } from "../../shape.ts";
import { broadcastStrides } from "../strides.ts";
import { arr, type ReferenceMemory } from "./memory.ts";
import { BINARY, UNARY, UNARY_GRAD } from "./scalar.ts";

/**
 * How `shape` broadcasts to `out`: "repeat" when it equals a trailing part of `out` (leading ones),
 * so element i reads i % len; "spread" when it equals a leading part (trailing ones), so element i
 * reads floor(i / len). Null for any other pattern.
 */
function broadcastPattern(
  shape: readonly number[],
  out: readonly number[],
): { kind: "repeat" | "spread"; len: number } | null {
  const r = out.length;
  let lead = 0;
  while (lead < r && shape[lead] === 1) lead++;
  if (shape.slice(lead).every((d, i) => d === out[lead + i])) {
    return { kind: "repeat", len: sizeOf(out.slice(lead)) };
  }
  let trail = r;
  while (trail > 0 && shape[trail - 1] === 1) trail--;
  if (shape.slice(0, trail).every((d, i) => d === out[i])) {
    return { kind: "spread", len: sizeOf(out.slice(trail)) };
  }
  return null;
}

/** The reference backend's element-wise kernels. */
export function elementwiseOps(mem: ReferenceMemory): ElementwiseOps {
  return {
    unary(op: UnaryOp, x: Storage): Storage {
      const a = arr(x), f = UNARY[op], out = mem.alloc(a.length), o = out.data;
      for (let i = 0; i < a.length; i++) o[i] = f(a[i]);
      return out;
    },

    unaryBackward(op: UnaryOp, x: Storage, dy: Storage): Storage {
      const f = UNARY_GRAD[op];
      if (!f) throw new Error(`unary op ${op} has no gradient`);
      const a = arr(x), g = arr(dy), out = mem.alloc(a.length), o = out.data;
      for (let i = 0; i < a.length; i++) o[i] = g[i] * f(a[i]);
      return out;
    },

    binary(op: BinaryOp, a: Storage, b: Storage, shapes: BroadcastShapes): Storage {
      const { a: aShape, b: bShape, out: outShape } = shapes;
      const f = BINARY[op], A = arr(a), B = arr(b);
      const n = sizeOf(outShape), out = mem.alloc(n), o = out.data;
      if (A.length === n && B.length === n) {
        for (let i = 0; i < n; i++) o[i] = f(A[i], B[i]);
        return out;
      }
      // Fast paths: each operand either full, repeated (a trailing block), or spread (one value per
      // block of trailing elements). Everything else goes through the general n-d walk below.
      const pa = broadcastPattern(aShape, outShape), pb = broadcastPattern(bShape, outShape);
      if (pa && pb) {
        for (let i = 0; i < n; i++) {
          const ia = pa.kind === "repeat" ? i % pa.len : Math.floor(i / pa.len);
          const ib = pb.kind === "repeat" ? i % pb.len : Math.floor(i / pb.len);
          o[i] = f(A[ia], B[ib]);
        }
        return out;
      }
      const sa = broadcastStrides(aShape, outShape), sb = broadcastStrides(bShape, outShape);
      const rank = outShape.length, idx = new Array<number>(rank).fill(0);
      let ia = 0, ib = 0;
      for (let i = 0; i < n; i++) {
        o[i] = f(A[ia], B[ib]);
        for (let d = rank - 1; d >= 0; d--) {
          idx[d]++;
          ia += sa[d];
          ib += sb[d];
          if (idx[d] < outShape[d]) break;
          ia -= sa[d] * outShape[d];
          ib -= sb[d] * outShape[d];
          idx[d] = 0;
        }
      }
      return out;
    },

    affine(x: Storage, scale: number, shift: number): Storage {
      const a = arr(x), out = mem.alloc(a.length), o = out.data;
      for (let i = 0; i < a.length; i++) o[i] = a[i] * scale + shift;
      return out;
    },

    axpy(y: Storage, x: Storage, alpha: number): void {
      const Y = arr(y), X = arr(x);
      if (Y.length !== X.length) throw new RangeError(`axpy: lengths ${Y.length} and ${X.length}`);
      for (let i = 0; i < Y.length; i++) Y[i] += alpha * X[i];
    },

    clamp(x: Storage, lo: number, hi: number): Storage {
      const a = arr(x), out = mem.alloc(a.length), o = out.data;
      for (let i = 0; i < a.length; i++) o[i] = a[i] < lo ? lo : a[i] > hi ? hi : a[i];
      return out;
    },

    combine(terms: readonly CombineTerm[], scale: number, clip: number | null): Storage {
      const n = combineLength(terms);
      const xs = terms.map((t) => arr(t.x)), out = mem.alloc(n), o = out.data;
      // Each step rounded to the storage's precision, with the coefficients as given: the bits
      // of this backend's affine, add and clamp kernels one after another.
      const f = o instanceof Float32Array ? Math.fround : (v: number) => v;
      const s = terms.map((t) => t.scale);
      const sc = scale, hi = clip === null ? Infinity : clip;
      for (let i = 0; i < n; i++) {
        let v = f(xs[0][i] * s[0]);
        for (let t = 1; t < xs.length; t++) v = f(v + f(xs[t][i] * s[t]));
        v = f(v * sc);
        o[i] = v < -hi ? -hi : v > hi ? hi : v;
      }
      return out;
    },
  };
}
