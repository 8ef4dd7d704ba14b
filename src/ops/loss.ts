/**
 * Regression losses (mean over all elements): L2, L1 and Huber.
 *
 * @module
 */

import type { LossKind } from "../backend.ts";
import { result, type Tensor } from "../tensor.ts";

/** The loss kinds, for validation of user options. */
export const LOSS_KINDS: readonly LossKind[] = ["l2", "l1", "huber"];

/**
 * Mean loss between `pred` and `target` (same shape); gradients flow to `pred` only. Huber is
 * PyTorch's `huber_loss`: 0.5 d^2 where |d| <= delta, delta (|d| - delta/2) elsewhere.
 */
export function regressionLoss(kind: LossKind, pred: Tensor, target: Tensor, delta = 1): Tensor {
  if (pred.size !== target.size) {
    throw new RangeError(`loss: prediction [${pred.shape}] and target [${target.shape}] differ`);
  }
  const be = pred.backend;
  const y = be.loss({ kind, delta }, pred.storage, target.storage);
  return result(`${kind} loss`, be, y, [], [pred], (g) => [
    be.lossBackward({ kind, delta }, pred.storage, target.storage, g),
  ]);
}
