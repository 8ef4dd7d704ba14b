/**
 * Shape arithmetic shared by the tensor layer and every backend.
 *
 * @module
 */

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of `shape`, with 0 where the axis is broadcast (size 1) against `to`. */
export function broadcastStrides(shape: readonly number[], to: readonly number[]): number[] {
  const strides = new Array<number>(to.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = shape[i] === 1 && to[i] !== 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}
