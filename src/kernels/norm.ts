/**
 * The normalisation kernels: group normalisation (optionally fused with a per-plane shift before
 * it and a SiLU after it) and the softmax over rows, each with its backward.
 *
 * @module
 */

import type { Storage } from "./memory.ts";

/** The geometry of a group normalisation over NC(HW) data. */
export interface GroupNormGeometry {
  /** Batch size. */
  n: number;
  /** Channels. */
  c: number;
  /** Spatial size per channel (H*W; 1 for vectors). */
  hw: number;
  /** Number of groups; divides c. */
  groups: number;
  /** Added to the variance. */
  eps: number;
  /**
   * Fuse a SiLU after the affine: y = silu(gamma * xhat + beta) instead of gamma * xhat + beta
   * (default false). The backward then needs `beta` too, and recomputes the pre-activation from
   * x, mean, rstd, gamma and beta, so nothing beyond mean and rstd is stored.
   */
  silu?: boolean;
}

/** The learned and per-sample inputs of a group normalisation besides x. */
export interface GroupNormParams {
  /** Per-channel scale, c values. */
  readonly gamma: Storage;
  /** Per-channel shift, c values. */
  readonly beta: Storage;
  /**
   * Optional per-(sample, channel) shift, n*c values, added to x over each channel plane before
   * the normalisation (the UNet's time-embedding add), fused into the same pass.
   */
  readonly shift?: Storage;
}

/** What the backward of a group normalisation reads: the forward's inputs and statistics. */
export interface GroupNormSaved {
  /** The forward's input. */
  readonly x: Storage;
  /** The per-channel scale. */
  readonly gamma: Storage;
  /** The per-channel shift; required with a fused SiLU. */
  readonly beta?: Storage;
  /** The forward's per-plane shift, when it had one. */
  readonly shift?: Storage;
  /** Per (n, group) mean from the forward. */
  readonly mean: Storage;
  /** Per (n, group) reciprocal standard deviation from the forward. */
  readonly rstd: Storage;
}

/** The results of a group-norm forward pass that its backward needs. */
export interface GroupNormResult {
  /** Normalised, scaled and shifted output (same shape as the input). */
  y: Storage;
  /** Per (n, group) mean, length n*groups. */
  mean: Storage;
  /** Per (n, group) reciprocal standard deviation, length n*groups. */
  rstd: Storage;
}

/** Gradients of a group-norm layer. */
export interface GroupNormGrads {
  /** Gradient of the input. */
  dx: Storage;
  /** Gradient of the per-channel scale. */
  dgamma: Storage;
  /** Gradient of the per-channel shift. */
  dbeta: Storage;
  /**
   * Gradient of the per-(sample, channel) input shift, n*c values (dx summed over each channel
   * plane); present exactly when the backward was given a `shift`.
   */
  dshift?: Storage;
}

/** Throws the one error for a GroupNorm shift whose length is not n x c of geometry g. */
export function checkGroupNormShift(g: GroupNormGeometry, length: number): void {
  if (length !== g.n * g.c) {
    throw new RangeError(`groupNorm: shift needs ${g.n * g.c} values, got ${length}`);
  }
}

/** Normalisation and softmax. */
export interface NormOps {
  /**
   * Group normalisation with per-channel affine (`p.gamma`, `p.beta` of length c), followed by a
   * SiLU in the same pass when `g.silu` is set. With `p.shift` (n*c values, one per (sample,
   * channel) plane), the input is x + shift broadcast over each plane, fused into the same pass:
   * the statistics, mean and rstd are those of x + shift.
   */
  groupNorm(x: Storage, p: GroupNormParams, g: GroupNormGeometry): GroupNormResult;
  /**
   * Gradients of {@link NormOps.groupNorm}. With `g.silu` set, `saved.beta` is required: the
   * gradient goes through the SiLU inline, its input recomputed from x, mean, rstd, gamma and
   * beta. With `saved.shift` (the forward's), x + shift is recomputed where needed and the result
   * also holds `dshift` [n*c], the input gradient summed over each channel plane.
   */
  groupNormBackward(dy: Storage, saved: GroupNormSaved, g: GroupNormGeometry): GroupNormGrads;
  /** Softmax over the last axis of a rows x cols matrix. */
  softmax(x: Storage, rows: number, cols: number): Storage;
  /** dx of softmax from its output y and dy. */
  softmaxBackward(y: Storage, dy: Storage, rows: number, cols: number): Storage;
}
