/**
 * Layout ops: reshape, permute, concatenation and slicing along an axis, nearest upsampling,
 * gathering.
 *
 * @module
 */

import { sizeOf } from "../shape.ts";
import { result, type Tensor } from "../tensor.ts";

/** The same elements with another shape (one axis may be -1). Shares storage. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const full = shape.map((d) => (d === -1 ? x.size / known : d));
  if (sizeOf(full) !== x.size) throw new RangeError(`cannot reshape [${x.shape}] to [${shape}]`);
  return result("reshape", x.backend, x.storage, full, [x], (g) => [g]);
}

/** Permutes axes: output axis i is input axis perm[i]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.shape.length || [...perm].sort((x, y) => x - y).some((p, i) => p !== i)) {
    throw new RangeError(`permute: [${perm}] is not a permutation of ${x.shape.length} axes`);
  }
  const be = x.backend;
  const inverse = perm.map((_, i) => perm.indexOf(i));
  const shape = perm.map((p) => x.shape[p]);
  return result("permute", be, be.permute(x.storage, x.shape, perm), shape, [x], (g) => [
    be.permute(g, shape, inverse),
  ]);
}

function axisSplit(shape: readonly number[], axis: number): [number, number] {
  return [sizeOf(shape.slice(0, axis)), sizeOf(shape.slice(axis + 1))];
}

/** Concatenates tensors along `axis` (all other axes equal). */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  const first = xs[0];
  const rank = first.shape.length;
  if (axis < 0) axis += rank;
  for (const x of xs) {
    if (x.shape.length !== rank || x.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
      throw new RangeError(
        `concat along axis ${axis}: shapes [${first.shape}] and [${x.shape}] differ`,
      );
    }
  }
  const [outer, inner] = axisSplit(first.shape, axis);
  const sizes = xs.map((x) => x.shape[axis]);
  const total = sizes.reduce((a, b) => a + b, 0);
  const shape = first.shape.map((d, i) => (i === axis ? total : d));
  const be = first.backend;
  const y = be.concat(xs.map((x) => x.storage), { outer, sizes, inner });
  return result("concat", be, y, shape, xs, (g) => {
    let start = 0;
    return xs.map((x, i) => {
      const s = start;
      start += sizes[i];
      return x.requiresGrad
        ? be.slice(g, { outer, axis: total, start: s, len: sizes[i], inner })
        : null;
    });
  });
}

/** The elements [start, start + length) along `axis`. */
export function slice(x: Tensor, axis: number, start: number, length: number): Tensor {
  const rank = x.shape.length;
  if (axis < 0) axis += rank;
  const len = x.shape[axis];
  if (start < 0 || length < 0 || start + length > len) {
    throw new RangeError(
      `slice [${start}, ${start + length}) is outside axis ${axis} of size ${len}`,
    );
  }
  const [outer, inner] = axisSplit(x.shape, axis);
  const shape = x.shape.map((d, i) => (i === axis ? length : d));
  const be = x.backend;
  return result(
    "slice",
    be,
    be.slice(x.storage, { outer, axis: len, start, len: length, inner }),
    shape,
    [x],
    (g) => {
      if (length === len) return [g];
      const zeros = [];
      const parts = [];
      const sizes = [];
      if (start > 0) {
        zeros.push(be.alloc(outer * start * inner));
        parts.push(zeros[zeros.length - 1]);
        sizes.push(start);
      }
      parts.push(g);
      sizes.push(length);
      if (start + length < len) {
        parts.push(be.alloc(outer * (len - start - length) * inner));
        sizes.push(len - start - length);
      }
      return [be.concat(parts, { outer, sizes, inner })];
    },
  );
}

/** Splits along `axis` into pieces of the given sizes. */
export function split(x: Tensor, axis: number, sizes: readonly number[]): Tensor[] {
  let start = 0;
  return sizes.map((s) => {
    const t = slice(x, axis, start, s);
    start += s;
    return t;
  });
}

/** Nearest-neighbour upsampling of x [n, c, h, w] by an integer factor. */
export function upsampleNearest(x: Tensor, factor = 2): Tensor {
  if (x.shape.length !== 4) {
    throw new RangeError(`upsampleNearest needs [n,c,h,w], got [${x.shape}]`);
  }
  const [n, c, h, w] = x.shape;
  const be = x.backend;
  const y = be.upsampleNearest(x.storage, { planes: n * c, h, w, factor });
  return result("upsampleNearest", be, y, [n, c, h * factor, w * factor], [x], (g) => [
    be.upsampleNearestBackward(g, { planes: n * c, h, w, factor }),
  ]);
}

/** out[i] = table[index[i]]; a lookup, not differentiable. */
export function gather(table: Tensor, index: Tensor): Tensor {
  const be = table.backend;
  return result("gather", be, be.gather(table.storage, index.storage), index.shape, [], () => []);
}

/** Rows index[i] of x [rows, ...]; a lookup, not differentiable. */
export function gatherRows(x: Tensor, index: Tensor): Tensor {
  const row = x.size / x.shape[0];
  const be = x.backend;
  const y = be.gatherRows(x.storage, index.storage, row);
  return result("gatherRows", be, y, [index.size, ...x.shape.slice(1)], [], () => []);
}
