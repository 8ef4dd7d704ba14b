/**
 * Heun's second-order method on the probability-flow ODE (Karras et al. 2022, "Elucidating the
 * design space of diffusion-based generative models", Algorithm 1 without churn), on the model's
 * discrete timesteps.
 *
 * In the variance-exploding variables x^ = x / sqrt(ab) and sigma = sqrt((1 - ab) / ab), the ODE is
 * dx^/dsigma = eps(x, t). The Euler step of it is DDIM with eta = 0; Heun corrects it with the slope
 * at the step's end (one more network call), which makes its error shrink with the square of the
 * step size. The last step, to sigma = 0, is an Euler step.
 *
 * @module
 */

import { affine, combine } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor.ts";
import { predictEpsilon, type Prediction, predictX0 } from "../diffusion/parameterization.ts";
import {
  clipOption,
  type DenoiseFn,
  type Sampler,
  type SamplerDefinition,
  type StepContext,
} from "./sampler.ts";
import { type Spacing, timeGrid } from "./spacing.ts";
import { NoiseLevels } from "../diffusion/noise_level.ts";
import type { Schedule } from "../diffusion/schedule.ts";

/** Options of {@link HeunSampler}. */
export interface HeunOptions {
  /** Number of steps (each but the last calls the network twice); default the schedule's T. */
  steps?: number;
  /**
   * Clip the x0 estimate to [-clip, clip] (and take eps consistent with it); null for none. Guards
   * the first steps, where sigma is large and an error in eps is amplified.
   */
  clip?: number | null;
  /** Where the steps fall (default "karras", from sigma_VE = 80; see spacing.ts). */
  spacing?: Spacing;
}

/** The deterministic Heun sampler. */
export class HeunSampler implements Sampler {
  /** Model times, descending. */
  readonly timesteps: readonly number[];
  /** Two network calls a step, one at the last. */
  readonly evaluations: number;
  readonly #ab: number[];
  readonly #prediction: Prediction;
  readonly #clip: number | null;

  /** A sampler over `schedule` for a network predicting `prediction`. */
  constructor(schedule: Schedule, prediction: Prediction, options: HeunOptions = {}) {
    const levels = new NoiseLevels(schedule);
    this.timesteps = timeGrid(levels, options.steps ?? schedule.T, options.spacing ?? "karras");
    this.evaluations = 2 * this.timesteps.length - 1;
    // alphaBar at each time: the schedule's own at integer times, interpolated between.
    this.#ab = this.timesteps.map((t) =>
      Number.isInteger(t) ? schedule.alphasCumprod[t - 1] : levels.level(t).a ** 2
    );
    this.#prediction = prediction;
    this.#clip = clipOption(options.clip);
  }

  #eps(model: DenoiseFn, x: Tensor, i: number): Tensor {
    const ab = this.#ab[i];
    const level = { a: Math.sqrt(ab), s: Math.sqrt(1 - ab) };
    const out = model(x, this.timesteps[i]);
    if (this.#clip === null) return predictEpsilon(this.#prediction, out, x, level);
    const x0 = predictX0(this.#prediction, out, x, level, this.#clip);
    return combine([[x, 1], [x0, -level.a]], { scale: 1 / level.s });
  }

  /** The next x from x_t at step index `i`. */
  step(ctx: StepContext, i: number, xt: Tensor): Tensor {
    const model: DenoiseFn = (x, t) => ctx.denoiser.output(x, t);
    const ab = this.#ab[i], last = i + 1 >= this.#ab.length;
    const abNext = last ? 1 : this.#ab[i + 1];
    const sig = Math.sqrt((1 - ab) / ab), sigNext = Math.sqrt((1 - abNext) / abNext);
    const eps = this.#eps(model, xt, i);
    // Euler in x^ = x / sqrt(ab), mapped back to x at the next level.
    const xHat = affine(xt, 1 / Math.sqrt(ab));
    const euler = combine([[xHat, 1], [eps, sigNext - sig]], { scale: Math.sqrt(abNext) });
    if (last) return euler;
    const epsNext = this.#eps(model, euler, i + 1);
    const slope = combine([[eps, 1], [epsNext, 1]], { scale: 0.5 * (sigNext - sig) });
    return combine([[xHat, 1], [slope, 1]], { scale: Math.sqrt(abNext) });
  }
}

/** The registry's entry: `sampler: "heun"` (options: steps, spacing, clip). */
export const heun: SamplerDefinition = {
  summary: "Heun's second-order probability-flow ODE steps (Karras et al. 2022)",
  create: (schedule, prediction, o) =>
    new HeunSampler(schedule, prediction, { steps: o.steps, clip: o.clip, spacing: o.spacing }),
};
