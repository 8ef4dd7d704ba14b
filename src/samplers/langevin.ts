/**
 * Annealed Langevin dynamics (Song & Ermon 2019, NCSN, Algorithm 1; seed 001 §3): sample p_t at a
 * sequence of noise levels from large to small, each level's Langevin chain starting where the
 * previous one stopped,
 *
 *   x <- x + (a_i / 2) score(x, t_i) + sqrt(a_i) z,   a_i = delta sigma_i^2,
 *
 * `langevinSteps` times per level, with sigma_i = sqrt(1 - alphaBar_{t_i}) the level's noise. NCSN
 * writes a_i = epsilon (sigma_i / sigma_L)^2 with sigma_L the smallest level; `stepSize` is delta =
 * epsilon / sigma_L^2, the step relative to the level's variance, so that it means the same on
 * every schedule. NCSN's epsilon = 2e-5 at sigma_L = 0.01 is delta = 0.2 with 100 steps a level;
 * with a few steps a level the chain lags the shrinking levels unless the steps are larger, so the
 * default is delta = 1 (stable while a_i / (2 v) < 2 for a level of variance v >= sigma_i^2). The
 * chain starts from N(0, I) (the VP prior) and, after the last level, one more network call
 * returns the x0 estimate there (Tweedie's denoising step, as NCSN++ samplers end). Network calls:
 * levels x langevinSteps + 1.
 *
 * On a score model (objective "dsm", src/diffusion/score_matching.ts) the chain runs in the model's
 * own variance-exploding coordinates x = x0 + sigma z, as NCSN does: sigma_i is the level's
 * sigma_VE (the "ve" schedule's geometric sigma), so a_i = delta sigma_i^2 is NCSN's
 * epsilon sigma_i^2 / sigma_L^2 with the same delta = epsilon / sigma_L^2; the score is the
 * network's output / sigma_i; the chain starts from N(0, sigma_1^2 I), sigma_1 the first (largest)
 * level, sigmaMax with the default levels (NCSN starts from uniform noise; the Gaussian of the
 * largest level is the distribution that level's chain targets when sigma_1 dwarfs the data);
 * and the final x0 estimate is x + sigma_L^2 score.
 *
 * @module
 */

import { NoiseLevels } from "../diffusion/noise_level.ts";
import type { Prediction } from "../diffusion/parameterization.ts";
import type { Schedule } from "../diffusion/schedule.ts";
import type { ObjectiveKind } from "../diffusion/score_matching.ts";
import type { Tensor } from "../tensor.ts";
import { langevinStep } from "./langevin_step.ts";
import type { Sampler, SamplerDefinition, StepContext } from "./sampler.ts";
import { type Spacing, timeGrid } from "./spacing.ts";

/** Options of {@link AnnealedLangevinSampler}. */
export interface AnnealedLangevinOptions {
  /** Number of noise levels (default the schedule's T). */
  steps?: number;
  /** Where the levels fall (default "linspace": the schedule's own timesteps). */
  spacing?: Spacing;
  /** Langevin steps per level (default 2). */
  langevinSteps?: number;
  /** The step relative to each level's variance, delta (default 1). */
  stepSize?: number;
  /**
   * Run on a score model's variance-exploding levels (objective "dsm"; see the module's comment):
   * the steps scale with sigma_VE^2 and the chain starts from N(0, sigma_VE(t_1)^2 I). Default
   * false.
   */
  varianceExploding?: boolean;
}

/** Annealed Langevin dynamics over the schedule's noise levels. */
export class AnnealedLangevinSampler implements Sampler {
  /** The levels' model times, descending. */
  readonly timesteps: readonly number[];
  /** levels x langevinSteps + 1 (the final denoising call). */
  readonly evaluations: number;
  /** True on a score model's variance-exploding levels. */
  readonly varianceExploding: boolean;
  readonly #steps: number;
  readonly #sizes: number[];

  /** Langevin chains over the levels of `schedule`. */
  constructor(schedule: Schedule, _prediction: Prediction, options: AnnealedLangevinOptions = {}) {
    const levels = new NoiseLevels(schedule);
    this.timesteps = timeGrid(levels, options.steps ?? schedule.T, options.spacing ?? "linspace");
    this.#steps = options.langevinSteps ?? 2;
    if (!Number.isInteger(this.#steps) || this.#steps < 1) {
      throw new RangeError(`langevinSteps must be a positive integer, got ${this.#steps}`);
    }
    const delta = options.stepSize ?? 1;
    if (!(delta > 0)) throw new RangeError(`stepSize must be positive, got ${delta}`);
    this.varianceExploding = options.varianceExploding ?? false;
    const sigma = (t: number) => this.varianceExploding ? levels.sigmaVE(t) : levels.level(t).s;
    this.#sizes = this.timesteps.map((t) => delta * sigma(t) ** 2);
    this.evaluations = this.timesteps.length * this.#steps + 1;
  }

  /** The Langevin step size at level `i`. */
  stepSize(i: number): number {
    return this.#sizes[i];
  }

  /** `langevinSteps` Langevin steps at level `i` (then, at the last level, the x0 estimate). */
  step(ctx: StepContext, i: number, x: Tensor): Tensor {
    const t = this.timesteps[i];
    for (let k = 0; k < this.#steps; k++) {
      x = langevinStep(x, ctx.denoiser.score(x, t), ctx.noise(k), this.#sizes[i]);
    }
    return i + 1 === this.timesteps.length ? ctx.denoiser.estimate(x, t).x0 : x;
  }
}

/**
 * The registry's entry: `sampler: "langevin"` (options: steps, langevinSteps, stepSize, ...), in a
 * score model's variance-exploding coordinates when the objective is "dsm".
 */
export const annealedLangevin: SamplerDefinition = {
  summary: "annealed Langevin dynamics over the noise levels (Song & Ermon 2019)",
  create: (schedule, prediction, o, objective?: ObjectiveKind) =>
    new AnnealedLangevinSampler(schedule, prediction, {
      steps: o.steps,
      spacing: o.spacing,
      langevinSteps: o.langevinSteps,
      stepSize: o.stepSize,
      varianceExploding: objective === "dsm",
    }),
};
