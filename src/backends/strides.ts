/**
 * Stride arithmetic shared by the backends' n-d loops (element-wise ops with broadcasting,
 * permutes, reductions).
 *
 * @module
 */

/** Row-major strides of `shape` (the last axis has stride 1). */
export function rowMajorStrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

/**
 * Row-major strides of `shape` read as `to` (same rank), with 0 where the axis is broadcast (size 1
 * against a larger size). Throws when an axis neither matches nor is 1.
 */
export function broadcastStrides(shape: readonly number[], to: readonly number[]): number[] {
  const strides = new Array<number>(to.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== to[i] && shape[i] !== 1) {
      throw new RangeError(`cannot broadcast shape [${shape}] to [${to}]`);
    }
    strides[i] = shape[i] === 1 && to[i] !== 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}

/**
 * Merges axes for an n-d loop over `shape` (the iteration order, contiguous in the output):
 * drops size-1 axes and joins neighbours along which every stride list is contiguous. Returns at
 * least one axis.
 */
export function mergeAxes(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (
      last >= 0 &&
      strides.every((st, k) => outStrides[k][last] === st[d] * shape[d])
    ) {
      outShape[last] *= shape[d];
      strides.forEach((st, k) => (outStrides[k][last] = st[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((st, k) => outStrides[k].push(st[d]));
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((s) => s.push(1));
  }
  return { shape: outShape, strides: outStrides };
}
