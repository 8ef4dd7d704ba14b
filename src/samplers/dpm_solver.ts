/**
 * DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
 * Probabilistic Models", Algorithm 2): a second-order multistep solver of the probability-flow ODE
 * written for the data prediction x0(x, t), with the half log-SNR lambda = log(alpha / sigma) as
 * its time. From t_{i-1} to t_i, with h_i = lambda_{t_i} - lambda_{t_{i-1}}:
 *
 *   x_{t_i} = (sigma_{t_i} / sigma_{t_{i-1}}) x_{t_{i-1}} - alpha_{t_i} (e^{-h_i} - 1) D_i,
 *   D_i = (1 + 1 / (2 r_i)) x0_{i-1} - 1 / (2 r_i) x0_{i-2},  r_i = h_{i-1} / h_i,
 *
 * with D_1 = x0_0 (the first step is first order, DDIM's), each x0 from one network call. The last
 * step goes to sigma = 0 in first order (diffusers' `lower_order_final`), returning the last x0
 * estimate. The grid is uniform in lambda by default (the paper's choice for pixel models; "time"
 * and "karras" also work), and `clip` clamps every x0 estimate (static thresholding). One network
 * call a step.
 *
 * `dpm++2m-sde` is the same multistep solver of the reverse SDE instead (SDE-DPM-Solver++(2M), Lu et
 * al. 2022; k-diffusion's `sample_dpmpp_2m_sde` with its midpoint correction): noise is taken out
 * and put back at each step, as the ancestral sampler does,
 *
 *   x_{t_i} = (sigma_{t_i} / sigma_{t_{i-1}}) e^{-h_i} x_{t_{i-1}} - alpha_{t_i} (e^{-2 h_i} - 1) D_i
 *             + sigma_{t_i} sqrt(1 - e^{-2 h_i}) z,
 *
 * with the same D_i: on an imperfect model the injected noise corrects errors the ODE carries along.
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

/** Options of {@link DpmSolverSampler}. */
export interface DpmSolverOptions {
  /** Number of steps, one network call each (default the schedule's T). */
  steps?: number;
  /** Where the steps fall (default "logsnr"; see spacing.ts). */
  spacing?: Spacing;
  /** Solve the reverse SDE (noise put back each step) instead of the probability-flow ODE. */
  sde?: boolean;
}

/** DPM-Solver++(2M). */
export class DpmSolverSampler implements Sampler {
  /** Model times, descending. */
  readonly timesteps: readonly number[];
  /** One network call a step. */
  readonly evaluations: number;
  readonly #levels: NoiseLevels;
  readonly #lambdas: number[];
  readonly #sde: boolean;
  /** The previous step's x0 estimate and log-SNR step, for the second-order term. */
  #previous: { x0: Tensor; h: number } | null = null;
  /**
   * The history as step index `i` found it: taken again at the same index (RePaint's resampling
   * passes), the step pairs its estimate with the previous grid time's, not with its own last pass.
   */
  #entry: { i: number; previous: { x0: Tensor; h: number } | null } | null = null;

  /** A solver over `schedule` (the prediction type is the denoiser's business). */
  constructor(schedule: Schedule, _prediction: Prediction, options: DpmSolverOptions = {}) {
    this.#levels = new NoiseLevels(schedule);
    this.timesteps = timeGrid(
      this.#levels,
      options.steps ?? schedule.T,
      options.spacing ?? "logsnr",
    );
    this.evaluations = this.timesteps.length;
    this.#lambdas = this.timesteps.map((t) => this.#levels.lambda(t));
    this.#sde = options.sde ?? false;
  }

  /** Forgets the history (a new batch starts). */
  reset(): void {
    this.#previous = null;
    this.#entry = null;
  }

  /** x at the next time from x at step index `i`. */
  step(ctx: StepContext, i: number, x: Tensor): Tensor {
    if (i === 0) this.#previous = null;
    if (this.#entry?.i === i) this.#previous = this.#entry.previous;
    else this.#entry = { i, previous: this.#previous };
    const e = ctx.denoiser.estimate(x, this.timesteps[i]), x0 = e.x0;
    if (i + 1 === this.timesteps.length) return x0;
    const next = this.#levels.level(this.timesteps[i + 1]);
    const h = this.#lambdas[i + 1] - this.#lambdas[i];
    const prev = this.#previous;
    let d = x0;
    if (prev) {
      const k = 1 / (2 * (prev.h / h));
      d = combine([[x0, 1 + k], [prev.x0, -k]]);
    }
    ctx.keep(x0);
    this.#previous = { x0, h };
    if (!this.#sde) return combine([[x, next.s / e.level.s], [d, -next.a * Math.expm1(-h)]]);
    return combine([
      [x, (next.s / e.level.s) * Math.exp(-h)],
      [d, -next.a * Math.expm1(-2 * h)],
      [ctx.noise(), next.s * Math.sqrt(-Math.expm1(-2 * h))],
    ]);
  }
}

/** The registry's entry: `sampler: "dpm++2m"` (options: steps, spacing, clip). */
export const dpmSolver: SamplerDefinition = {
  summary: "DPM-Solver++(2M), second-order multistep on the data prediction (Lu et al. 2022)",
  create: (schedule, prediction, o) =>
    new DpmSolverSampler(schedule, prediction, { steps: o.steps, spacing: o.spacing }),
};

/** The registry's entry: `sampler: "dpm++2m-sde"` (options: steps, spacing, clip). */
export const dpmSolverSde: SamplerDefinition = {
  summary: "SDE-DPM-Solver++(2M), the multistep solver of the reverse SDE (Lu et al. 2022)",
  create: (schedule, prediction, o) =>
    new DpmSolverSampler(schedule, prediction, { steps: o.steps, spacing: o.spacing, sde: true }),
};
