/**
 * The `webgpu` backend's element-wise kernels: a thread per element; broadcasting binary ops walk
 * up to 8 merged axes (unit axes dropped, axes contiguous for both operands joined).
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
} from "../../src/backend.ts";
import { broadcastStrides } from "../../src/backends/strides.ts";
import { sizeOf } from "../../src/shape.ts";
import {
  affineKernel,
  axpyKernel,
  binaryBroadcastKernel,
  binarySameKernel,
  clampKernel,
  combineKernel,
  hasUnaryGrad,
  unaryGradKernel,
  unaryKernel,
} from "../kernels/elementwise.ts";
import type { GpuRuntime } from "../runtime.ts";
import { linearGrid } from "../wgsl.ts";

/** The `webgpu` backend's element-wise kernels on `rt`. */
export function elementwiseOps(rt: GpuRuntime): ElementwiseOps {
  return {
    unary(op: UnaryOp, x: Storage): Storage {
      const a = rt.storage(x), out = rt.alloc(a.length);
      if (a.length) rt.run(unaryKernel(op), [a, out], [a.length], linearGrid(a.length));
      return out;
    },

    unaryBackward(op: UnaryOp, x: Storage, dy: Storage): Storage {
      if (!hasUnaryGrad(op)) throw new Error(`unary op ${op} has no gradient`);
      const a = rt.storage(x), g = rt.storage(dy), out = rt.alloc(a.length);
      if (a.length) rt.run(unaryGradKernel(op), [a, g, out], [a.length], linearGrid(a.length));
      return out;
    },

    binary(op: BinaryOp, a: Storage, b: Storage, shapes: BroadcastShapes): Storage {
      const { a: aShape, b: bShape, out: outShape } = shapes;
      const A = rt.storage(a), B = rt.storage(b);
      const n = sizeOf(outShape), out = rt.alloc(n);
      if (n === 0) return out;
      if (A.length === n && B.length === n) {
        rt.run(binarySameKernel(op), [A, B, out], [n], linearGrid(n));
        return out;
      }
      const rank = outShape.length;
      if (aShape.length !== rank || bShape.length !== rank) {
        throw new RangeError(`binary ${op}: shapes [${aShape}], [${bShape}] and [${outShape}]`);
      }
      const sa = broadcastStrides(aShape, outShape), sb = broadcastStrides(bShape, outShape);
      // Drop unit axes and merge axes that are contiguous for both operands.
      const dims: { s: number; a: number; b: number }[] = [];
      for (let d = 0; d < rank; d++) {
        if (outShape[d] === 1) continue;
        const last = dims.at(-1);
        if (last && last.a === sa[d] * outShape[d] && last.b === sb[d] * outShape[d]) {
          last.s *= outShape[d];
          last.a = sa[d];
          last.b = sb[d];
        } else dims.push({ s: outShape[d], a: sa[d], b: sb[d] });
      }
      if (dims.length > 8) throw new RangeError(`binary ${op}: more than 8 broadcast axes`);
      rt.run(binaryBroadcastKernel(op), [A, B, out], [
        n,
        dims.length,
        dims.map((d) => d.s),
        dims.map((d) => d.a),
        dims.map((d) => d.b),
      ], linearGrid(n));
      return out;
    },

    affine(x: Storage, scale: number, shift: number): Storage {
      const a = rt.storage(x), out = rt.alloc(a.length);
      if (a.length) {
        rt.run(affineKernel(), [a, out], [a.length, scale, shift], linearGrid(a.length));
      }
      return out;
    },

    axpy(y: Storage, x: Storage, alpha: number): void {
      const Y = rt.storage(y), X = rt.storage(x);
      if (Y.length !== X.length) throw new RangeError(`axpy: lengths ${Y.length} and ${X.length}`);
      if (Y.length) rt.run(axpyKernel(), [X, Y], [Y.length, alpha], linearGrid(Y.length));
    },

    clamp(x: Storage, lo: number, hi: number): Storage {
      const a = rt.storage(x), out = rt.alloc(a.length);
      if (a.length) rt.run(clampKernel(), [a, out], [a.length, lo, hi], linearGrid(a.length));
      return out;
    },

    combine(terms: readonly CombineTerm[], scale: number, clip: number | null): Storage {
      const n = combineLength(terms), out = rt.alloc(n);
      if (n) {
        rt.run(
          combineKernel(terms.length, clip !== null),
          [...terms.map((t) => rt.storage(t.x)), out],
          [n, ...terms.map((t) => t.scale), scale, clip ?? 0],
          linearGrid(n),
        );
      }
      return out;
    },
  };
}
