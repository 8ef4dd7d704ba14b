/**
 * The optimizer kernels: one fused Adam/AdamW update over the flat parameter buffer, and the
 * exponential moving average of the weights.
 *
 * @module
 */

import type { Storage } from "./memory.ts";

/** Settings of one fused Adam/AdamW update over a flat parameter buffer. */
export interface AdamSettings {
  /** Learning rate of this step. */
  lr: number;
  /** First-moment decay. */
  beta1: number;
  /** Second-moment decay. */
  beta2: number;
  /** Denominator epsilon. */
  eps: number;
  /** Weight decay; coupled (added to the gradient) for Adam, decoupled for AdamW. */
  weightDecay: number;
  /** True for AdamW's decoupled weight decay. */
  decoupled: boolean;
  /** 1-based step number, for bias correction. */
  step: number;
  /**
   * Global-norm gradient clipping: when set, `gradSquaredNorm` holds the squared norm of the whole
   * gradient (one element, computed on the device) and gradients are scaled by
   * min(1, maxNorm / norm) inside the kernel, so clipping needs no read-back.
   */
  clip: { maxNorm: number; gradSquaredNorm: Storage } | null;
}

/** The flat buffers one Adam update reads and writes, all of the same length. */
export interface AdamBuffers {
  /** The parameters, updated in place. */
  readonly params: Storage;
  /** Their gradients. */
  readonly grads: Storage;
  /** First moments, updated in place. */
  readonly m: Storage;
  /** Second moments, updated in place. */
  readonly v: Storage;
}

/** Optimizer updates. */
export interface OptimOps {
  /** One fused Adam/AdamW update of `b.params` from `b.grads` and the moments (all in place). */
  adam(b: AdamBuffers, s: AdamSettings): void;
  /** target = decay * target + (1 - decay) * source, in place. */
  ema(target: Storage, source: Storage, decay: number): void;
}
