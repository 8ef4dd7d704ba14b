/**
 * The loss kernels: the mean regression loss between a prediction and a target, and its gradient.
 *
 * @module
 */

import type { Storage } from "./memory.ts";

/** Every regression loss, in the order backends number them. */
export const LOSS_KINDS = ["l2", "l1", "huber"] as const;

/** The regression losses: squared error, absolute error and Huber (smooth L1 with threshold delta). */
export type LossKind = typeof LOSS_KINDS[number];

/** Which loss, and Huber's threshold (ignored by the others). */
export interface LossSpec {
  /** The loss. */
  readonly kind: LossKind;
  /** Huber's threshold: quadratic below, linear above. */
  readonly delta: number;
}

/** Losses. */
export interface LossOps {
  /** One element: the mean over all elements of the loss between pred and target. */
  loss(spec: LossSpec, pred: Storage, target: Storage): Storage;
  /** d(scale * mean loss)/d(pred); `scale` is a one-element storage (the upstream gradient). */
  lossBackward(spec: LossSpec, pred: Storage, target: Storage, scale: Storage): Storage;
}
