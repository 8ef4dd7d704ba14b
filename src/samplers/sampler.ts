/**
 * What every sampler offers the sampling loop (diffusers' scheduler idea): the model times it
 * visits, from noisy to clean, and a step that turns x at step i into x at step i + 1, calling the
 * model through a {@link Denoiser} (raw output, x0, eps or score at any model time) and drawing
 * fresh noise through its context; and what a sampler file exports so that the registry
 * (registry.ts) can build it by name.
 *
 * @module
 */

import type { Denoiser } from "../diffusion/denoiser.ts";
import type { Prediction } from "../diffusion/parameterization.ts";
import { respace, type Schedule } from "../diffusion/schedule.ts";
import type { ObjectiveKind } from "../diffusion/score_matching.ts";
import type { Tensor } from "../tensor.ts";
import type { Spacing } from "./spacing.ts";

export type { DenoiseFn } from "../diffusion/denoiser.ts";

/** What a sampler's step can call on. */
export interface StepContext {
  /** The model: estimates and the score at any model time in [1, T]. */
  readonly denoiser: Denoiser;
  /**
   * A fresh standard normal tensor shaped like x: the `j`-th draw of this step (default 0). The
   * draws are fixed by (seed, step, j, sample index), so samples do not depend on the batch size.
   */
  noise(j?: number): Tensor;
  /** Keeps `t` alive until the end of the next step (a multistep solver's history). */
  keep(t: Tensor): void;
}

/** A reverse-process sampler. */
export interface Sampler {
  /** The model time of each step's first network call, descending (for progress and pictures). */
  readonly timesteps: readonly number[];
  /** Network calls a whole run takes. */
  readonly evaluations: number;
  /** The next x from x at step index `i` (0 .. timesteps.length - 1); the last step returns x0. */
  step(ctx: StepContext, i: number, x: Tensor): Tensor;
  /** Forgets any history, before a new batch's first step (multistep solvers). */
  reset?(): void;
  /**
   * True when the sampler runs a score model (objective "dsm") in the model's own
   * variance-exploding coordinates x = x0 + sigma_VE z, from N(0, sigma_VE(timesteps[0])^2 I), its
   * denoiser reading the model as a score model (annealed Langevin). Absent or false: the
   * variance-preserving coordinates, from N(0, I), a score model seen as an epsilon model through
   * `epsilonFromScore`.
   */
  readonly varianceExploding?: boolean;
}

/**
 * The variance of each ancestral reverse step: beta_t, the true posterior's beta~_t, or a
 * learned-variance model's own exp(frac log beta_t + (1 - frac) log beta~_t), frac = (v + 1) / 2
 * (Nichol & Dhariwal 2021, eq. 15; src/diffusion/learned_variance.ts).
 */
export type SamplerVariance = "beta" | "posterior" | "learned";

/** Every {@link SamplerVariance}, for validation of user options. */
export const SAMPLER_VARIANCES: readonly SamplerVariance[] = ["posterior", "beta", "learned"];

/** Which predictor a predictor-corrector sampler uses. */
export type PredictorKind = "euler-maruyama" | "ddpm" | "euler";

/**
 * The options every sampler is built from; each sampler reads the ones it documents and ignores
 * the others.
 */
export interface SamplerOptions {
  /** Number of sampling steps (default: each sampler's own; at most T). */
  steps?: number;
  /** Clip the x0 estimate to [-clip, clip] at each step (default null: off). */
  clip?: number | null;
  /** DDIM's noise scale: 0 deterministic (default), 1 ancestral. */
  eta?: number;
  /**
   * The ancestral sampler's step variance (ddpm, and pc's ddpm predictor): "posterior", "beta" or
   * "learned" (a learned-variance model's; `sample` defaults to it for such a model and to
   * "posterior" for the others). The other samplers ignore it, and a learned-variance model's v.
   */
  variance?: SamplerVariance;
  /** Where the steps fall over [1, T] (see spacing.ts); each sampler has its default. */
  spacing?: Spacing;
  /** The predictor-corrector sampler's predictor (default "ddpm"). */
  predictor?: PredictorKind;
  /** Langevin corrector steps after each predictor step (default 1). */
  correctorSteps?: number;
  /** The corrector's signal-to-noise ratio r (default 0.05, seed 001's). */
  snr?: number;
  /** Annealed Langevin: steps per noise level (default 2). */
  langevinSteps?: number;
  /** Annealed Langevin: the step relative to each level's variance (default 1; langevin.ts). */
  stepSize?: number;
}

/** What a sampler file exports: how to build the sampler, and one line saying what it is. */
export interface SamplerDefinition {
  /** One line for help texts, e.g. "ancestral DDPM (Ho et al. 2020)". */
  readonly summary: string;
  /**
   * The sampler over `schedule` for a network predicting `prediction`, trained with `objective`
   * (default "ddpm"; a sampler with a form of its own for score models reads "dsm", the others
   * ignore it and see a score model as an epsilon model).
   */
  create(
    schedule: Schedule,
    prediction: Prediction,
    options: SamplerOptions,
    objective?: ObjectiveKind,
  ): Sampler;
}

/**
 * What a sampler of `steps` steps walks: `schedule` itself when steps is its T, else the respaced
 * schedule (see {@linkcode respace}); and the model timesteps, descending.
 */
export function samplerSteps(
  schedule: Schedule,
  steps: number = schedule.T,
): { schedule: Schedule; timesteps: number[] } {
  const r = steps === schedule.T
    ? { schedule, timesteps: Array.from({ length: schedule.T }, (_, i) => i + 1) }
    : respace(schedule, steps);
  return { schedule: r.schedule, timesteps: [...r.timesteps].reverse() };
}

/** A sampler's `clip` option, checked: null for none, else the positive bound. */
export function clipOption(clip: number | null | undefined): number | null {
  const c = clip ?? null;
  if (c !== null && !(c > 0)) throw new RangeError(`clip must be positive, got ${c}`);
  return c;
}
