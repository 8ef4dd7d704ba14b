/**
 * DDIM (Song, Meng & Ermon 2021): a non-Markovian reverse process with the same marginals, on any
 * subsequence of timesteps. eta = 0 is deterministic (the probability-flow ODE's first-order step);
 * eta = 1 matches DDPM's ancestral sampler with the posterior variance.
 *
 *   x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - sigma^2) eps + sigma z,
 *   sigma  = eta sqrt((1 - ab_prev) / (1 - ab)) sqrt(1 - ab / ab_prev).
 *
 * @module
 */

import { combine } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor.ts";
import { predictEpsilon, type Prediction, predictX0 } from "../diffusion/parameterization.ts";
import { clipOption, type Sampler, type SamplerDefinition, type StepContext } from "./sampler.ts";
import { integerGrid, type Spacing } from "./spacing.ts";
import type { Schedule } from "../diffusion/schedule.ts";

/** Options of {@link DdimSampler}. */
export interface DdimOptions {
  /** Number of sampling steps over the schedule (default its T). */
  steps?: number;
  /** Noise scale: 0 deterministic (default), 1 ancestral. */
  eta?: number;
  /** Clip the x0 estimate to [-clip, clip]; null for none. */
  clip?: number | null;
  /** Which integer timesteps: "linspace" (default), "leading" or "trailing" (see spacing.ts). */
  spacing?: Spacing;
}

/** The DDIM sampler. */
export class DdimSampler implements Sampler {
  /** Model timesteps, descending. */
  readonly timesteps: readonly number[];
  /** One network call a step. */
  readonly evaluations: number;
  readonly #ab: number[];
  readonly #prediction: Prediction;
  readonly #eta: number;
  readonly #clip: number | null;

  /** A sampler over `schedule` for a network predicting `prediction`. */
  constructor(schedule: Schedule, prediction: Prediction, options: DdimOptions = {}) {
    this.timesteps = integerGrid(
      schedule,
      options.steps ?? schedule.T,
      options.spacing ?? "linspace",
    );
    this.evaluations = this.timesteps.length;
    this.#ab = this.timesteps.map((t) => schedule.alphasCumprod[t - 1]);
    this.#prediction = prediction;
    const eta = options.eta ?? 0;
    if (!(eta >= 0)) throw new RangeError(`eta must be >= 0, got ${eta}`);
    this.#eta = eta;
    this.#clip = clipOption(options.clip);
  }

  #abPrev(i: number): number {
    return i + 1 < this.#ab.length ? this.#ab[i + 1] : 1;
  }

  /** Noise standard deviation of step i. */
  sigma(i: number): number {
    const ab = this.#ab[i], abPrev = this.#abPrev(i);
    if (this.#eta === 0 || abPrev >= 1) return 0;
    return this.#eta * Math.sqrt(((1 - abPrev) / (1 - ab)) * (1 - ab / abPrev));
  }

  /** The next x from x_t at step index `i`. */
  step(ctx: StepContext, i: number, xt: Tensor): Tensor {
    const output = ctx.denoiser.output(xt, this.timesteps[i]);
    const ab = this.#ab[i], abPrev = this.#abPrev(i);
    const level = { a: Math.sqrt(ab), s: Math.sqrt(1 - ab) };
    const x0 = predictX0(this.#prediction, output, xt, level, this.#clip);
    // With clipping, eps is kept consistent with the clipped x0.
    const eps = this.#clip === null
      ? predictEpsilon(this.#prediction, output, xt, level)
      : combine([[xt, 1], [x0, -level.a]], { scale: 1 / level.s });
    const sigma = this.sigma(i);
    const dirScale = Math.sqrt(Math.max(0, 1 - abPrev - sigma * sigma));
    // sqrt(abPrev) x0 + dirScale eps (+ sigma z): one kernel.
    const mean: [Tensor, number][] = [[x0, Math.sqrt(abPrev)], [eps, dirScale]];
    return combine(sigma > 0 ? [...mean, [ctx.noise(), sigma]] : mean);
  }
}

/** The registry's entry: `sampler: "ddim"` (options: steps, eta, spacing, clip). */
export const ddim: SamplerDefinition = {
  summary: "DDIM (Song, Meng & Ermon 2021): eta 0 deterministic, 1 ancestral",
  create: (schedule, prediction, o) =>
    new DdimSampler(schedule, prediction, {
      eta: o.eta,
      clip: o.clip,
      steps: o.steps,
      spacing: o.spacing,
    }),
};
