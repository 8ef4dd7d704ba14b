/**
 * The DDPM ancestral sampler (Ho et al. 2020), diffusers-style: it knows its timesteps and turns
 * (model output, step, x_t) into x_{t-1}. Optionally on a respaced subsequence of timesteps.
 *
 * With `variance: "learned"` (a learned-variance model: Nichol & Dhariwal 2021, §3.1, their
 * `p_sample` under `LEARNED_RANGE`) each value's noise has the variance
 * exp(frac log beta_t + (1 - frac) log beta~_t), frac = (v + 1) / 2, from the model's v at that
 * step; on a respaced schedule beta_t and beta~_t are the respaced schedule's, as Improved DDPM's
 * respacing takes them, and beta~_1 is replaced by beta~_2 (no noise is added at the last step).
 *
 * @module
 */

import { add, affine, combine, exp, mul } from "../ops/elementwise.ts";
import { learnedLogVarianceCoefficients } from "../diffusion/learned_variance.ts";
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
  /**
   * sigma_t^2 = beta_t ("beta", the seeds' choice), the posterior variance ("posterior", the
   * default) or a learned-variance model's ("learned": needs the model's v).
   */
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

  /**
   * Standard deviation of the noise added at step index `i` of `timesteps` (0 at the last step),
   * for the fixed variances; with "learned" it differs per value (see {@link DdpmSampler.step})
   * and this throws a RangeError, except at the last step.
   */
  sigma(i: number): number {
    const j = this.timesteps.length - 1 - i; // index into the (respaced) schedule
    if (j === 0) return 0;
    const s = this.#schedule;
    if (this.#variance === "learned") {
      throw new RangeError(`the learned variance differs per value: it has no one sigma`);
    }
    return Math.sqrt(this.#variance === "beta" ? s.betas[j] : s.posteriorVariance[j]);
  }

  /**
   * The log-variance of step index `i` as an affine map of the model's v: log sigma^2 = scale v +
   * shift (eq. 15 at the step's, possibly respaced, timestep j + 1; see learned_variance.ts).
   */
  learnedCoefficients(i: number): { scale: number; shift: number } {
    return learnedLogVarianceCoefficients(this.#schedule, this.timesteps.length - i);
  }

  /** x_{t-1} from x_t at step index `i`, adding the step's noise (none at the last step). */
  step(ctx: StepContext, i: number, xt: Tensor): Tensor {
    const { output, v } = ctx.denoiser.outputs(xt, this.timesteps[i]);
    const s = this.#schedule, j = this.timesteps.length - 1 - i;
    if (this.#variance === "learned" && v === null) {
      throw new RangeError(
        `variance "learned" needs a model trained with learnSigma (this one predicts no variance)`,
      );
    }
    const level = { a: s.sqrtAlphasCumprod[j], s: s.sqrtOneMinusAlphasCumprod[j] };
    const x0 = predictX0(this.#prediction, output, xt, level, this.#clip);
    // The posterior mean c1 x0 + c2 x_t, and with a fixed variance its noise sigma z: one kernel.
    const mean: [Tensor, number][] = [[x0, s.posteriorMeanCoef1[j]], [xt, s.posteriorMeanCoef2[j]]];
    if (this.#variance === "learned") {
      if (j === 0) return combine(mean);
      // sigma = exp(log sigma^2 / 2), per value.
      const { scale, shift } = this.learnedCoefficients(i);
      return add(combine(mean), mul(exp(affine(v!, scale / 2, shift / 2)), ctx.noise()));
    }
    const sigma = this.sigma(i);
    return combine(sigma === 0 ? mean : [...mean, [ctx.noise(), sigma]]);
  }
}

/**
 * The registry's entry: `sampler: "ddpm"` (options: steps, spacing, variance, clip); the one
 * sampler (with pc's ddpm predictor) that reads a learned-variance model's v.
 */
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
