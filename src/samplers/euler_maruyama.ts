/**
 * Euler–Maruyama on the reverse-time VP SDE (Song et al. 2021, eq. 6 with the VP SDE of eq. 11)
 * whose discretisation is the model's schedule.
 *
 * The VP SDE dx = -beta(t)/2 x dt + sqrt(beta(t)) dw has alphaBar(t) = exp(-int beta), so in the
 * integrated time B = int beta the schedule's alphaBar_t is exact at every timestep. Reversed, from
 * model time t down to t' the step spans B = log(alphaBar_t' / alphaBar_t), and Euler–Maruyama
 * gives
 *
 *   x' = x + B (x / 2 + score(x, t)) + sqrt(B) z,      score = -eps / sigma_t,
 *
 * which on every timestep (B close to beta_t) is the ancestral sampler to first order. The last
 * step, to the clean sample (alphaBar = 1), adds no noise (Song et al.'s "denoise" at the end).
 * One network call a step.
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

/** Options of {@link EulerMaruyamaSampler}. */
export interface EulerMaruyamaOptions {
  /** Number of steps, one network call each (default the schedule's T). */
  steps?: number;
  /** Where the steps fall (default "linspace": the schedule's own timesteps; see spacing.ts). */
  spacing?: Spacing;
}

/** The reverse VP SDE's Euler–Maruyama sampler. */
export class EulerMaruyamaSampler implements Sampler {
  /** Model times, descending. */
  readonly timesteps: readonly number[];
  /** One network call a step. */
  readonly evaluations: number;
  /** log alphaBar at each time, then 0 (the clean sample). */
  readonly #logAlphaBar: number[];

  /** A sampler over `schedule` (the prediction type is the denoiser's business). */
  constructor(schedule: Schedule, _prediction: Prediction, options: EulerMaruyamaOptions = {}) {
    const levels = new NoiseLevels(schedule);
    this.timesteps = timeGrid(levels, options.steps ?? schedule.T, options.spacing ?? "linspace");
    this.evaluations = this.timesteps.length;
    this.#logAlphaBar = [...this.timesteps.map((t) => 2 * Math.log(levels.level(t).a)), 0];
  }

  /** The integrated beta of step `i`: log(alphaBar_next / alphaBar_now). */
  span(i: number): number {
    return this.#logAlphaBar[i + 1] - this.#logAlphaBar[i];
  }

  /** x at the next time from x at step index `i`. */
  step(ctx: StepContext, i: number, x: Tensor): Tensor {
    const b = this.span(i);
    const score = ctx.denoiser.score(x, this.timesteps[i]);
    // The drift step (1 + b/2) x + b score, and before the last step its noise sqrt(b) z: one kernel.
    const mean: [Tensor, number][] = [[x, 1 + b / 2], [score, b]];
    if (i + 1 === this.timesteps.length) return combine(mean);
    return combine([...mean, [ctx.noise(), Math.sqrt(b)]]);
  }
}

/** The registry's entry: `sampler: "euler-maruyama"` (options: steps, spacing, clip). */
export const eulerMaruyama: SamplerDefinition = {
  summary: "Euler–Maruyama on the reverse VP SDE (Song et al. 2021)",
  create: (schedule, prediction, o) =>
    new EulerMaruyamaSampler(schedule, prediction, { steps: o.steps, spacing: o.spacing }),
};
