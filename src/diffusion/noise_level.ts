/**
 * A discrete schedule's noise levels at any model time t in [1, T], for the samplers that step
 * between the schedule's timesteps (DPM-Solver++ with logSNR or Karras spacing, the SDE and ODE
 * solvers on respaced grids).
 *
 * At integer t the levels are the schedule's own: alpha_t = sqrt(alphaBar_t), sigma_t =
 * sqrt(1 - alphaBar_t). Between integers, the variance-exploding sigma sigma_t / alpha_t is
 * interpolated linearly in its logarithm (k-diffusion's `DiscreteSchedule`), and the network is
 * asked at the fractional t (its time embedding takes any real t). The half log-SNR is
 * lambda_t = log(alpha_t / sigma_t) = -log(sigma_VE), decreasing in t.
 *
 * @module
 */

import type { Schedule } from "./schedule.ts";

/** alpha_t and sigma_t at one model time: x_t = alpha_t x_0 + sigma_t eps. */
export interface Level {
  /** sqrt(alphaBar_t). */
  a: number;
  /** sqrt(1 - alphaBar_t). */
  s: number;
}

/** Noise levels of a schedule at real model times. */
export class NoiseLevels {
  /** The number of timesteps. */
  readonly T: number;
  readonly #schedule: Schedule;
  /** log sigma_VE at t = 1..T (index t - 1), increasing. */
  readonly #logSigma: Float64Array;

  /** The levels of `schedule`. */
  constructor(schedule: Schedule) {
    this.T = schedule.T;
    this.#schedule = schedule;
    this.#logSigma = schedule.alphasCumprod.map((ab) => 0.5 * Math.log((1 - ab) / ab));
  }

  #check(t: number): void {
    if (!(t >= 1 && t <= this.T)) {
      throw new RangeError(`model time must be in [1, ${this.T}], got ${t}`);
    }
  }

  /** alpha_t and sigma_t: the schedule's own values at integer t. */
  level(t: number): Level {
    this.#check(t);
    if (Number.isInteger(t)) {
      const s = this.#schedule;
      return { a: s.sqrtAlphasCumprod[t - 1], s: s.sqrtOneMinusAlphasCumprod[t - 1] };
    }
    const sv = this.sigmaVE(t), a = 1 / Math.sqrt(1 + sv * sv);
    return { a, s: sv * a };
  }

  /** The variance-exploding sigma, sigma_t / alpha_t. */
  sigmaVE(t: number): number {
    this.#check(t);
    const lo = Math.floor(t), w = t - lo, ls = this.#logSigma;
    if (w === 0) return Math.exp(ls[lo - 1]);
    return Math.exp((1 - w) * ls[lo - 1] + w * ls[lo]);
  }

  /** The half log-SNR lambda_t = log(alpha_t / sigma_t). */
  lambda(t: number): number {
    return -Math.log(this.sigmaVE(t));
  }

  /** The model time in [1, T] whose variance-exploding sigma is `sigma` (clamped to the ends). */
  timeOfSigmaVE(sigma: number): number {
    const ls = this.#logSigma, target = Math.log(sigma), T = this.T;
    if (!(target > ls[0])) return 1;
    if (target >= ls[T - 1]) return T;
    let lo = 0, hi = T - 1; // ls[lo] < target <= ls[hi]
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (ls[mid] < target) lo = mid;
      else hi = mid;
    }
    return lo + 1 + (target - ls[lo]) / (ls[hi] - ls[lo]);
  }

  /** The model time in [1, T] with half log-SNR `lambda`. */
  timeOfLambda(lambda: number): number {
    return this.timeOfSigmaVE(Math.exp(-lambda));
  }
}
