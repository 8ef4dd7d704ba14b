/**
 * The reduction kernels: sums over axes and the global sum of squares (gradient clipping).
 *
 * @module
 */

import type { Storage } from "./memory.ts";

/** Reductions. */
export interface ReductionOps {
  /** Sums `x` (of `shape`) over the axes where `outShape` (same rank) has 1 and `shape` does not. */
  reduceSum(x: Storage, shape: readonly number[], outShape: readonly number[]): Storage;
  /** One element: the sum of squares of all elements of every given storage. */
  sumSquares(xs: readonly Storage[]): Storage;
}
