/**
 * One Langevin step toward p_t, x' = x + (step / 2) score + sqrt(step) z (Welling & Teh 2011),
 * shared by the predictor-corrector sampler's corrector and annealed Langevin dynamics; the step is
 * one number, or a [B, 1, ...] tensor for a step of each sample's own.
 *
 * @module
 */

import { add, affine, combine, mul, sqrt } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor.ts";

/** x + (step / 2) score + sqrt(step) z: `step` one number, or per sample ([B, 1, ...]). */
export function langevinStep(x: Tensor, score: Tensor, z: Tensor, step: number | Tensor): Tensor {
  if (typeof step === "number") {
    return combine([[x, 1], [score, step / 2], [z, Math.sqrt(step)]]);
  }
  return add(add(x, mul(affine(step, 0.5), score)), mul(sqrt(step), z));
}
