/**
 * What the network predicts (epsilon, x0 or v) and the conversions between them, in one place.
 *
 * With a = sqrt(alphaBar_t), s = sqrt(1 - alphaBar_t) and x_t = a x0 + s eps:
 * v = a eps - s x0 (Salimans & Ho 2022), x0 = a x_t - s v, eps = s x_t + a v.
 *
 * @module
 */

import { clamp, combine, mul, sub } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor.ts";

/** The network's output: the noise, the clean sample, or the velocity v. */
export type Prediction = "epsilon" | "x0" | "v";

/** The valid predictions, for validation of user options. */
export const PREDICTIONS: readonly Prediction[] = ["epsilon", "x0", "v"];

/** Per-sample coefficients a = sqrt(alphaBar_t), s = sqrt(1 - alphaBar_t) as tensors [B, 1, ...]. */
export interface NoiseLevel {
  /** sqrt(alphaBar_t), broadcastable against the data. */
  a: Tensor;
  /** sqrt(1 - alphaBar_t), broadcastable against the data. */
  s: Tensor;
}

/** The training target for a prediction type, given the clean sample and the noise. */
export function predictionTarget(
  kind: Prediction,
  x0: Tensor,
  eps: Tensor,
  lvl: NoiseLevel,
): Tensor {
  switch (kind) {
    case "epsilon":
      return eps;
    case "x0":
      return x0;
    case "v":
      return sub(mul(lvl.a, eps), mul(lvl.s, x0));
  }
}

/**
 * The min-SNR-gamma loss weight (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
 * Weighting Strategy") at signal-to-noise ratio `snr` = alphaBar / (1 - alphaBar): the weight that
 * makes each prediction type's squared error equal min(snr, gamma) times the x0 error. It caps the
 * weight of nearly clean timesteps, which otherwise dominate training, at gamma.
 */
export function minSnrWeight(kind: Prediction, snr: number, gamma: number): number {
  const capped = Math.min(snr, gamma);
  switch (kind) {
    case "epsilon":
      return capped / snr;
    case "x0":
      return capped;
    case "v":
      return capped / (snr + 1);
  }
}

/** Scalar coefficients a = sqrt(alphaBar_t), s = sqrt(1 - alphaBar_t) at one timestep. */
export interface ScalarNoiseLevel {
  /** sqrt(alphaBar_t). */
  a: number;
  /** sqrt(1 - alphaBar_t). */
  s: number;
}

/**
 * The x0 estimate from a network output at a timestep shared by the whole batch, clamped to
 * [-clip, clip] when `clip` is given (a sampler's clipping; then without a gradient). One kernel
 * ({@link combine}) with the bits of the separate scalings, difference and clamp.
 */
export function predictX0(
  kind: Prediction,
  out: Tensor,
  xt: Tensor,
  l: ScalarNoiseLevel,
  clip: number | null = null,
): Tensor {
  switch (kind) {
    case "epsilon":
      return combine([[xt, 1], [out, -l.s]], { scale: 1 / l.a, clip });
    case "x0":
      return clip === null ? out : clamp(out, -clip, clip);
    case "v":
      return combine([[xt, l.a], [out, -l.s]], { clip });
  }
}

/** The epsilon estimate from a network output at a timestep shared by the whole batch. */
export function predictEpsilon(
  kind: Prediction,
  out: Tensor,
  xt: Tensor,
  l: ScalarNoiseLevel,
): Tensor {
  switch (kind) {
    case "epsilon":
      return out;
    case "x0":
      return combine([[xt, 1], [out, -l.a]], { scale: 1 / l.s });
    case "v":
      return combine([[xt, l.s], [out, l.a]]);
  }
}
