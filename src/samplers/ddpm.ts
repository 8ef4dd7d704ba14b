/**
 * The DDPM ancestral sampler (Ho et al. 2020), diffusers-style: it knows its timesteps and turns
 * (model output, step, x_t) into x_{t-1}. Optionally on a respaced subsequence of timesteps.
 *
 * @module
 */

import { add, affine, clamp } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor.ts";
import { type Prediction, predictX0 } from "../diffusion/parameterization.ts";
import {
  clipOption,
  type Sampler,
  type SamplerDefinition,
  samplerSteps,
  type SamplerVariance,
  type StepContext,
} from "./sampler.ts";
import { respace, type Schedule } from "../diffusion/schedule.ts";
import { integerGrid, type Spacing } from "./spacing.ts";

export type { SamplerVariance } from "./sampler.ts";

/**
 * Options of {@link DdpmSampler}.
 */
export interface DdpmOptions {
  /** sigma_t^2 = beta_t ("beta", the seeds' choice) or the posterior variance ("posterior"). */
  variance?: SamplerVariance;
  /** Clip the x0 estimate to [-clip, clip] at each step; null for no clipping. */
  clip?: number | null;
  /** Number of sampling steps (respaced); default the schedule's T. */
  steps?: number;
  /** Which integer timesteps: "linspace" (default), "leading" or "trailing" (see spacing.ts). */
  spacing?: Spacing;
}

/** The ancestral sampler. Use `timesteps` (descending) to call the model, then `step`. */
export class DdpmSampler implements Sampler {
  /** The model timesteps to visit, from T down to 1. */
  readonly timesteps: readonly number[];
  /** One network call a step. */
  readonly evaluations: number;
  readonly #schedule: Schedule;
  readonly #prediction: Prediction;
  readonly #variance: SamplerVariance;
  readonly #clip: number | null;

  /** A sampler over `schedule` for a network predicting `prediction`. */
  constructor(schedule: Schedule, prediction: Prediction, options: DdpmOptions = {}) {
    const spacing = options.spacing ?? "linspace";
    const r = spacing === "linspace"
      ? samplerSteps(schedule, options.steps)
      : respaced(schedule, integerGrid(schedule, options.steps ?? schedule.T, spacing));
    this.#schedule = r.schedule;
    this.timesteps = r.timesteps;
    this.evaluations = r.timesteps.length;
    this.#prediction = prediction;
    this.#variance = options.variance ?? "posterior";
    this.#clip = clipOption(options.clip);
  }

  /** Standard deviation of the noise added at step index `i` of `timesteps` (0 at the last step). */
  sigma(i: number): number {
    const j = this.timesteps.length - 1 - i; // index into the (respaced) schedule
    if (j === 0) return 0;
    const s = this.#schedule;
    return Math.sqrt(this.#variance === "beta" ? s.betas[j] : s.posteriorVariance[j]);
  }

  /** x_{t-1} from x_t at step index `i`, adding the step's noise (none at the last step). */
  step(ctx: StepContext, i: number, xt: Tensor): Tensor {
    const output = ctx.denoiser.output(xt, this.timesteps[i]);
    const s = this.#schedule, j = this.timesteps.length - 1 - i;
    let x0 = predictX0(this.#prediction, output, xt, {
      a: s.sqrtAlphasCumprod[j],
      s: s.sqrtOneMinusAlphasCumprod[j],
    });
    if (this.#clip !== null) x0 = clamp(x0, -this.#clip, this.#clip);
    const mean = add(affine(x0, s.posteriorMeanCoef1[j]), affine(xt, s.posteriorMeanCoef2[j]));
    const sigma = this.sigma(i);
    if (sigma === 0) return mean;
    return add(mean, affine(ctx.noise(), sigma));
  }
}

/** The registry's entry: `sampler: "ddpm"` (options: steps, spacing, variance, clip). */
export const ddpm: SamplerDefinition = {
  summary: "ancestral DDPM (Ho et al. 2020), optionally respaced",
  create: (schedule, prediction, o) =>
    new DdpmSampler(schedule, prediction, {
      variance: o.variance,
      clip: o.clip,
      steps: o.steps,
      spacing: o.spacing,
    }),
};

/** The schedule respaced to descending `timesteps`, and those timesteps. */
function respaced(schedule: Schedule, timesteps: number[]) {
  const r = respace(schedule, [...timesteps].reverse());
  return { schedule: r.schedule, timesteps: [...r.timesteps].reverse() };
}
