/**
 * How the `webgpu` backend picks between kernels and sizes: the GEMM tile of a product, when and
 * how far a convolution product splits its depth K across workgroups, how a reduction is laid
 * out, and the limits on what one dispatch or one submit holds. Pure functions of the shapes, so
 * they are tested without a GPU (tests/backends/webgpu/policy_test.ts).
 *
 * Why these numbers: docs/webgpu_kernel_choice.md.
 *
 * @module
 */

import { type GemmTile, TILE_SMALL, TILES } from "./kernels/gemm.ts";
import { REDUCE_WG } from "./kernels/reduce.ts";

/** Workgroups a product should give at least, to keep a large GPU's cores busy. */
export const MIN_WORKGROUPS = 128;

/** Workgroups of an m x n product repeated `batch` times on `tile`. */
export function workgroups(tile: GemmTile, m: number, n: number, batch: number): number {
  return Math.ceil(m / tile.bm) * Math.ceil(n / tile.bn) * batch;
}

/**
 * Picks the tile for an m x n product repeated `batch` times: the largest tile that wastes no
 * more rows than the smallest would and still gives {@link MIN_WORKGROUPS} workgroups (more sums
 * per thread for each value staged), else the one giving the most workgroups.
 */
export function chooseTile(m: number, n: number, batch: number): GemmTile {
  const rows = Math.ceil(m / 32) * 32;
  let best = TILE_SMALL;
  for (const t of TILES) {
    if (Math.ceil(m / t.bm) * t.bm > rows) continue;
    if (workgroups(t, m, n, batch) >= MIN_WORKGROUPS) return t;
    if (workgroups(t, m, n, batch) > workgroups(best, m, n, batch)) best = t;
  }
  return best;
}

/** When a convolution product splits its depth K across workgroups (see {@link planSplitK}). */
export interface SplitRule {
  /** Split when the output alone gives fewer workgroups than this. */
  below: number;
  /** Workgroups to aim for. */
  target: number;
  /** Least depth of a split. */
  minDepth: number;
}

/** Forward and data gradient: split only small outputs (the UNet's 7x7 level). */
export const SPLIT_WHEN_FEW: Readonly<SplitRule> = Object.freeze({
  below: MIN_WORKGROUPS,
  target: 256,
  minDepth: 64,
});

/**
 * Filter gradient: the output is small and K (batch x pixels) long, so always split, to about 4
 * workgroups per SM of a large GPU.
 */
export const SPLIT_FILTER: Readonly<SplitRule> = Object.freeze({
  below: Infinity,
  target: 512,
  minDepth: 256,
});

/** How one product runs: its tile and its depth K in `splits` chunks of `kChunk`. */
export interface SplitPlan {
  /** The GEMM tile. */
  tile: GemmTile;
  /** Chunks of K, each a z layer of the grid (1: no split). */
  splits: number;
  /**
   * Depth of each chunk: K when the rule does not apply, else K / splits rounded up to a multiple
   * of the tile's `bk` (so a single chunk may be a little deeper than K).
   */
  kChunk: number;
}

/**
 * The plan of an M x N product of depth K under `rule`. When the output on the largest tile that
 * fits its rows gives fewer than `rule.below` workgroups, K is split across the grid's z on that
 * tile until there are about `rule.target`, each split at least `rule.minDepth` deep (rather than
 * falling back to smaller tiles with fewer sums per thread); otherwise {@link chooseTile}'s pick
 * runs unsplit.
 */
export function planSplitK(M: number, N: number, K: number, rule: SplitRule): SplitPlan {
  // The largest tile that fits the rows; when even it gives enough workgroups, chooseTile's
  // pick needs no split.
  let tile = chooseTile(M, N, rule.target);
  let splits = 1, kChunk = K;
  if (workgroups(tile, M, N, 1) >= rule.below) tile = chooseTile(M, N, 1);
  else {
    const tiles = workgroups(tile, M, N, 1);
    splits = Math.max(
      1,
      Math.min(Math.ceil(rule.target / tiles), Math.floor(K / rule.minDepth)),
    );
    kChunk = Math.ceil(K / splits / tile.bk) * tile.bk;
    splits = Math.ceil(K / kChunk);
  }
  return { tile, splits, kChunk };
}

/** How `reduceSum` computes `outputs` sums of `count` elements each. */
export type ReducePlan =
  /** A thread per output, looping over its sum. */
  | { kind: "thread" }
  /**
   * A workgroup per output and chunk of `chunk` elements; with `splits` > 1 chunks the partials
   * (`chunks` x outputs of scratch) are added by a second dispatch.
   */
  | { kind: "group"; chunks: number; chunk: number; splits: number };

/**
 * Few outputs, each a long sum (a bias gradient), take a workgroup each, the sums split into
 * chunks of at least 4,096 elements until there are about 512 workgroups; otherwise a thread per
 * output.
 */
export function planReduceSum(outputs: number, count: number): ReducePlan {
  if (!(outputs < 4096 && count >= 64)) return { kind: "thread" };
  const chunks = Math.max(1, Math.min(Math.ceil(512 / outputs), Math.floor(count / 4096)));
  const chunk = Math.ceil(count / chunks);
  return { kind: "group", chunks, chunk, splits: Math.ceil(count / chunk) };
}

/**
 * Workgroups of the first pass of a whole-buffer reduction over `length` elements: one per
 * {@link REDUCE_WG} x 4 elements, between 1 and 256 (the second pass sums their partials).
 */
export function partialSumGroups(length: number): number {
  return Math.max(1, Math.min(256, Math.ceil(length / (REDUCE_WG * 4))));
}

/** Workgroups of one grid dimension a dispatch may have (WebGPU's default limit). */
export const MAX_WORKGROUPS_PER_DIMENSION = 65535;

/** Dispatches recorded before a submit is forced even without a flush. */
export const MAX_DISPATCHES_PER_SUBMIT = 8192;

/**
 * Whether convolutions are compiled for their shape: as asked, else on hardware adapters only
 * (compiling a pipeline per shape is slow on software ones).
 */
export function specializeShapes(asked: boolean | undefined, isFallbackAdapter: boolean): boolean {
  return asked ?? !isFallbackAdapter;
}
