/**
 * Where a sampler of N steps evaluates the network: N model times from T down toward 1, after which
 * it steps to the clean sample (t = 0: alpha = 1, sigma = 0).
 *
 * Integer spacings (the schedule's own timesteps; diffusers' `timestep_spacing`):
 * - `linspace`: round(1 + i (T - 1) / (N - 1)), so the grid runs from T to 1 (Nichol & Dhariwal's
 *   respacing; duplicates dropped when N is close to T);
 * - `leading`: k floor(T / N) + 1 for k < N, the grid DDIM's paper and Stable Diffusion use (it
 *   starts below T when N does not divide T);
 * - `trailing`: round(T - k T / N), which starts at T and ends near T / N (Lin et al. 2023's fix for
 *   leading's missed last step).
 *
 * Real-valued spacings (the network is asked between timesteps; see src/diffusion/noise_level.ts):
 * - `time`: uniform in t from T to 1;
 * - `logsnr`: uniform in the half log-SNR lambda = log(alpha / sigma) (DPM-Solver's choice for
 *   pixel-space models, Lu et al. 2022);
 * - `karras`: sigma_VE^(1/rho) uniform with rho = 7 (Karras et al. 2022, eq. 5).
 *
 * @module
 */

import { NoiseLevels } from "../diffusion/noise_level.ts";
import type { Schedule } from "../diffusion/schedule.ts";

/** Every spacing, integer ones first. */
export const SPACINGS = ["linspace", "leading", "trailing", "time", "logsnr", "karras"] as const;

/** How a sampler's model times are spread over [1, T]. */
export type Spacing = typeof SPACINGS[number];

/** The spacings that stay on the schedule's integer timesteps. */
export const INTEGER_SPACINGS: readonly Spacing[] = ["linspace", "leading", "trailing"];

/** Karras et al.'s rho. */
const RHO = 7;

/**
 * The largest variance-exploding sigma the real-valued spacings start from (Karras et al.'s
 * sigma_max = 80). Schedules that end near zero signal (the cosine schedule's last alphaBar is
 * below 1e-7, sigma_VE above 10^4) make the first x0 estimate of an epsilon-predicting network
 * divide its error by alpha_T; from sigma_VE = 80 (alpha = 0.0125) x ~ N(0, I) is still the
 * marginal to within 0.01 and the estimate is well conditioned.
 */
export const SIGMA_MAX = 80;

/** The model time the real-valued spacings start from: T, or where sigma_VE falls to SIGMA_MAX. */
function topTime(levels: NoiseLevels): number {
  return Math.min(levels.T, levels.timeOfSigmaVE(SIGMA_MAX));
}

/** The linspace grid of `steps` integer timesteps, descending (the one `respace` uses). */
export function linspaceTimesteps(T: number, steps: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = steps === 1 ? T : Math.round(1 + (i * (T - 1)) / (steps - 1));
    if (out[out.length - 1] !== t) out.push(t);
  }
  return out.reverse();
}

/**
 * The model times of a sampler of `steps` steps over `levels`, descending from about T to about 1
 * (distinct; integer for the integer spacings). Throws a RangeError for steps outside [1, T].
 */
export function timeGrid(levels: NoiseLevels, steps: number, spacing: Spacing): number[] {
  const T = levels.T;
  if (!Number.isInteger(steps) || steps < 1 || steps > T) {
    throw new RangeError(`sampling steps must be an integer in [1, ${T}], got ${steps}`);
  }
  const span = (f: (u: number) => number) =>
    Array.from({ length: steps }, (_, i) => f(steps === 1 ? 0 : i / (steps - 1)));
  switch (spacing) {
    case "linspace":
      return linspaceTimesteps(T, steps);
    case "leading": {
      const ratio = Math.floor(T / steps);
      return Array.from({ length: steps }, (_, k) => (steps - 1 - k) * ratio + 1);
    }
    case "trailing":
      return distinct(Array.from({ length: steps }, (_, k) => Math.round(T - (k * T) / steps)));
    case "time": {
      const top = topTime(levels);
      return span((u) => top - u * (top - 1));
    }
    case "logsnr": {
      const top = topTime(levels), hi = levels.lambda(top), lo = levels.lambda(1);
      return span((u) => levels.timeOfLambda(hi + u * (lo - hi))).map((t, i) =>
        i === 0 ? top : i === steps - 1 ? 1 : t
      );
    }
    case "karras": {
      const top = topTime(levels);
      const smax = levels.sigmaVE(top) ** (1 / RHO), smin = levels.sigmaVE(1) ** (1 / RHO);
      return span((u) => levels.timeOfSigmaVE((smax + u * (smin - smax)) ** RHO)).map((t, i) =>
        i === 0 ? top : i === steps - 1 ? 1 : t
      );
    }
  }
}

function distinct(ts: number[]): number[] {
  return ts.filter((t, i) => i === 0 || t !== ts[i - 1]);
}

/**
 * The integer grid of `steps` timesteps of an integer spacing, descending; a RangeError naming the
 * spacing for the real-valued ones (samplers that step on the schedule's own timesteps: DDPM, DDIM).
 */
export function integerGrid(schedule: Schedule, steps: number, spacing: Spacing): number[] {
  if (!INTEGER_SPACINGS.includes(spacing)) {
    throw new RangeError(
      `this sampler steps on the schedule's timesteps: spacing must be one of ${
        INTEGER_SPACINGS.join(", ")
      }, got ${JSON.stringify(spacing)}`,
    );
  }
  return spacing === "linspace"
    ? linspaceTimesteps(schedule.T, steps)
    : timeGrid(new NoiseLevels(schedule), steps, spacing);
}
