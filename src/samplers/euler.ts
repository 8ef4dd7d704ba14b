/**
 * Euler steps on the probability-flow ODE (Song et al. 2021, eq. 13), in the variance-exploding
 * variables of Karras et al. 2022 (Algorithm 1 without its second-order correction): with
 * x^ = x / alpha_t and sigma = sigma_t / alpha_t the ODE is dx^/dsigma = eps(x, t), so one step
 * from t to t' is
 *
 *   x' = alpha_t' (x / alpha_t + (sigma'_VE - sigma_VE) eps(x, t)),
 *
 * and the last step, to sigma = 0, returns the x0 estimate. On the schedule's own timesteps this is
 * DDIM with eta = 0; its default grid is Karras's, which spends the steps where the image forms.
 * One network call a step; deterministic.
 *
 * @module
 */

import { NoiseLevels } from "../diffusion/noise_level.ts";
import type { Prediction } from "../diffusion/parameterization.ts";
import type { Schedule } from "../diffusion/schedule.ts";
import { combine } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor.ts";
import type { Sampler, SamplerDefinition, StepContext } from "./sampler.ts";
import { type Spacing, timeGrid } from "./spacing.ts";

/** Options of {@link EulerSampler}. */
export interface EulerOptions {
  /** Number of steps, one network call each (default the schedule's T). */
  steps?: number;
  /** Where the steps fall (default "karras"; see spacing.ts). */
  spacing?: Spacing;
}

/** The probability-flow ODE's Euler sampler. */
export class EulerSampler implements Sampler {
  /** Model times, descending. */
  readonly timesteps: readonly number[];
  /** One network call a step. */
  readonly evaluations: number;
  readonly #levels: NoiseLevels;

  /** A sampler over `schedule` (the prediction type is the denoiser's business). */
  constructor(schedule: Schedule, _prediction: Prediction, options: EulerOptions = {}) {
    this.#levels = new NoiseLevels(schedule);
    this.timesteps = timeGrid(
      this.#levels,
      options.steps ?? schedule.T,
      options.spacing ?? "karras",
    );
    this.evaluations = this.timesteps.length;
  }

  /** x at the next time from x at step index `i`. */
  step(ctx: StepContext, i: number, x: Tensor): Tensor {
    const e = ctx.denoiser.estimate(x, this.timesteps[i]);
    if (i + 1 === this.timesteps.length) return e.x0;
    const l = e.level, n = this.#levels.level(this.timesteps[i + 1]);
    return combine([[x, n.a / l.a], [e.eps, n.s - (n.a * l.s) / l.a]]);
  }
}

/** The registry's entry: `sampler: "euler"` (options: steps, spacing, clip). */
export const euler: SamplerDefinition = {
  summary: "Euler steps on the probability-flow ODE (Song et al. 2021; Karras et al. 2022)",
  create: (schedule, prediction, o) =>
    new EulerSampler(schedule, prediction, { steps: o.steps, spacing: o.spacing }),
};
