/**
 * Predictor–corrector sampling (Song et al. 2021, Algorithms 4 and 5): after each step of a
 * predictor (the ancestral sampler by default; or Euler–Maruyama on the reverse SDE, or the ODE's
 * Euler step) that lands on a model time t, `correctorSteps` Langevin steps toward p_t correct
 * the sample:
 *
 *   z ~ N(0, I),  g = score(x, t),  x <- x + e g + sqrt(2 e) z,  e = 2 alpha_t (r ||z|| / ||g||)^2,
 *
 * with alpha_t = 1 - beta_t and the signal-to-noise ratio r (seed 001 uses r = 0.05). The norms are
 * taken at their expected values, ||z||^2 = d and ||g||^2 = d / sigma_t^2 (the score is
 * -eps / sigma_t with eps of unit variance), so e = 2 alpha_t (r sigma_t)^2: in high dimension the
 * norms concentrate there and this is Song et al.'s rule; in the two dimensions of the toy data a
 * per-sample ratio swings by orders of magnitude (a sample near a mode has a tiny score and takes a
 * huge step), and the batch mean Song et al.'s code uses would make a sample depend on its batch.
 * No correction follows the last step (it lands on the clean sample). Network calls: the
 * predictor's, plus `correctorSteps` after each step but the last.
 *
 * @module
 */

import type { Prediction } from "../diffusion/parameterization.ts";
import type { Schedule } from "../diffusion/schedule.ts";
import type { Tensor } from "../tensor.ts";
import { DdpmSampler } from "./ddpm.ts";
import { EulerSampler } from "./euler.ts";
import { EulerMaruyamaSampler } from "./euler_maruyama.ts";
import { NoiseLevels } from "../diffusion/noise_level.ts";
import { langevinStep } from "./langevin_step.ts";
import type {
  PredictorKind,
  Sampler,
  SamplerDefinition,
  SamplerOptions,
  StepContext,
} from "./sampler.ts";

/** Every predictor, for validation of user options. */
export const PREDICTORS: readonly PredictorKind[] = ["ddpm", "euler-maruyama", "euler"];

/** Options of {@link PredictorCorrectorSampler}. */
export interface PredictorCorrectorOptions {
  /**
   * The predictor (default "ddpm", the ancestral step, Song et al.'s "ancestral sampling"
   * predictor: on the MNIST model it makes PC at N steps as good as the ancestral sampler alone,
   * where Euler–Maruyama's cruder step made it worse).
   */
  predictor?: PredictorKind;
  /** Langevin steps after each predictor step (default 1). */
  correctorSteps?: number;
  /** The signal-to-noise ratio r (default 0.05). */
  snr?: number;
}

/** A predictor followed by Langevin corrector steps. */
export class PredictorCorrectorSampler implements Sampler {
  /** The predictor's model times. */
  readonly timesteps: readonly number[];
  /** The predictor's calls plus the corrector's. */
  readonly evaluations: number;
  readonly #predictor: Sampler;
  readonly #steps: number;
  readonly #snr: number;
  readonly #alphas: Float64Array;
  readonly #levels: NoiseLevels;

  /** `predictor` over `schedule`, corrected as `options` say. */
  constructor(
    schedule: Schedule,
    prediction: Prediction,
    options: SamplerOptions & PredictorCorrectorOptions = {},
  ) {
    const kind = options.predictor ?? "ddpm";
    if (!PREDICTORS.includes(kind)) {
      throw new RangeError(
        `predictor must be one of ${PREDICTORS.join(", ")}, got ${JSON.stringify(kind)}`,
      );
    }
    this.#predictor = kind === "ddpm"
      ? new DdpmSampler(schedule, prediction, {
        steps: options.steps,
        variance: options.variance,
        clip: options.clip,
      })
      : kind === "euler"
      ? new EulerSampler(schedule, prediction, { steps: options.steps, spacing: options.spacing })
      : new EulerMaruyamaSampler(schedule, prediction, {
        steps: options.steps,
        spacing: options.spacing,
      });
    this.#steps = options.correctorSteps ?? 1;
    if (!Number.isInteger(this.#steps) || this.#steps < 0) {
      throw new RangeError(`correctorSteps must be a non-negative integer, got ${this.#steps}`);
    }
    this.#snr = options.snr ?? 0.05;
    if (!(this.#snr > 0)) throw new RangeError(`snr must be positive, got ${this.#snr}`);
    this.timesteps = this.#predictor.timesteps;
    this.evaluations = this.#predictor.evaluations + this.#steps * (this.timesteps.length - 1);
    this.#alphas = schedule.alphas;
    this.#levels = new NoiseLevels(schedule);
  }

  /** The predictor's step from step index `i`, then the corrector's at the time it lands on. */
  step(ctx: StepContext, i: number, x: Tensor): Tensor {
    let y = this.#predictor.step(ctx, i, x);
    if (i + 1 === this.timesteps.length) return y;
    const t = this.timesteps[i + 1], alpha = this.#alphas[Math.round(t) - 1];
    const e = 2 * alpha * (this.#snr * this.#levels.level(t).s) ** 2;
    for (let j = 0; j < this.#steps; j++) {
      // x + e g + sqrt(2 e) z is a Langevin step of size 2 e.
      y = langevinStep(y, ctx.denoiser.score(y, t), ctx.noise(1 + j), 2 * e);
    }
    return y;
  }

  /** Forgets the predictor's history. */
  reset(): void {
    this.#predictor.reset?.();
  }
}

/** The registry's entry: `sampler: "pc"` (options: steps, predictor, correctorSteps, snr, ...). */
export const predictorCorrector: SamplerDefinition = {
  summary:
    "predictor-corrector: a predictor step, then Langevin corrector steps (Song et al. 2021)",
  create: (schedule, prediction, o) => new PredictorCorrectorSampler(schedule, prediction, o),
};
