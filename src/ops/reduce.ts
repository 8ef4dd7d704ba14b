/**
 * Reductions: sums and means over axes.
 *
 * @module
 */

import { result, type Tensor } from "../tensor.ts";

/** Sums over `axes` (all when omitted), keeping reduced axes as size 1 when `keepDims`. */
export function sum(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  const rank = x.shape.length;
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
  const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const shape = keepDims ? kept : kept.filter((_, i) => !ax.includes(i));
  const be = x.backend;
  const y = be.reduceSum(x.storage, x.shape, kept);
  return result("sum", be, y, shape, [x], (g) => [
    be.binary("add", be.alloc(x.size), g, { a: x.shape, b: kept, out: x.shape }),
  ]);
}

/** Mean over `axes` (all when omitted). */
export function mean(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  const rank = x.shape.length;
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
  const count = ax.reduce((n, a) => n * x.shape[a], 1);
  const s = sum(x, ax, keepDims);
  const be = x.backend;
  return result("mean", be, be.affine(s.storage, 1 / count, 0), s.shape, [s], (g) => [
    be.affine(g, 1 / count, 0),
  ]);
}
