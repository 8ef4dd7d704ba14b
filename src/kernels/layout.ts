/**
 * The layout kernels: permutes, nearest upsampling, concatenation and slicing along a middle
 * axis, and gathers.
 *
 * @module
 */

import type { Storage } from "./memory.ts";

/** `planes` planes of h x w, upsampled by an integer `factor` on both axes. */
export interface UpsampleSpec {
  /** Number of planes (batch x channels). */
  readonly planes: number;
  /** Input height. */
  readonly h: number;
  /** Input width. */
  readonly w: number;
  /** The integer scale factor. */
  readonly factor: number;
}

/** Tensors viewed as [outer, sizes[i], inner], joined along the middle axis. */
export interface ConcatSpec {
  /** Product of the axes before the joined one. */
  readonly outer: number;
  /** Each input's extent along the joined axis. */
  readonly sizes: readonly number[];
  /** Product of the axes after the joined one. */
  readonly inner: number;
}

/** The slice [outer, start:start+len, inner] of a tensor viewed as [outer, axis, inner]. */
export interface SliceSpec {
  /** Product of the axes before the sliced one. */
  readonly outer: number;
  /** Extent of the sliced axis. */
  readonly axis: number;
  /** First index kept. */
  readonly start: number;
  /** Number of indices kept. */
  readonly len: number;
  /** Product of the axes after the sliced one. */
  readonly inner: number;
}

/** Layout changes and gathers. */
export interface LayoutOps {
  /** Permutes the axes of `x` (of `shape`): out axis i is input axis perm[i]. */
  permute(x: Storage, shape: readonly number[], perm: readonly number[]): Storage;
  /** Nearest-neighbour upsampling (see {@link UpsampleSpec}). */
  upsampleNearest(x: Storage, u: UpsampleSpec): Storage;
  /** Gradient of {@link LayoutOps.upsampleNearest} (sums each factor x factor block). */
  upsampleNearestBackward(dy: Storage, u: UpsampleSpec): Storage;
  /** Concatenation along a middle axis: the output is [outer, sum(sizes), inner]. */
  concat(xs: readonly Storage[], c: ConcatSpec): Storage;
  /** A slice along a middle axis (see {@link SliceSpec}). */
  slice(x: Storage, s: SliceSpec): Storage;
  /** out[i] = table[index[i]] (indices stored as integral floats). */
  gather(table: Storage, index: Storage): Storage;
  /** out row i = src row index[i], rows of `rowSize` elements. */
  gatherRows(src: Storage, index: Storage, rowSize: number): Storage;
}
