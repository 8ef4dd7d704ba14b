/**
 * Shape arithmetic shared by the tensor layer and every backend (strides: src/backends/strides.ts).
 *
 * @module
 */

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
