/**
 * What every sampler offers the sampling loop (diffusers' scheduler idea): the model timesteps it
 * visits, from noisy to clean, and a step that turns (model output, x_t) into the next x; and what
 * a sampler file exports so that the registry (registry.ts) can build it by name.
 *
 * @module
 */

import type { Prediction } from "../diffusion/parameterization.ts";
import type { Tensor } from "../tensor.ts";
import { respace, type Schedule } from "../diffusion/schedule.ts";

/** The network as a sampler sees it: its raw output for x at model timestep t (1..T). */
export type DenoiseFn = (x: Tensor, t: number) => Tensor;

/** A reverse-process sampler. */
export interface Sampler {
  /** Model timesteps to visit, descending (T ... 1 or a subsequence). */
  readonly timesteps: readonly number[];
  /** Standard deviation of the fresh noise step `i` adds (0: the step is deterministic). */
  sigma(i: number): number;
  /**
   * The next x from x_t at step index `i`: calls `model(x, t)` (the network's raw output at model
   * timestep t) as often as the method needs, and uses standard normal `noise` if it adds noise.
   */
  step(model: DenoiseFn, i: number, xt: Tensor, noise: Tensor | null): Tensor;
}

/** The variance of each ancestral reverse step: beta_t, or the true posterior's beta~_t. */
export type SamplerVariance = "beta" | "posterior";

/**
 * The options every sampler is built from; each sampler reads the ones it documents and ignores
 * the others.
 */
export interface SamplerOptions {
  /** Number of sampling steps, respaced over the schedule (default its T). */
  steps?: number;
  /** Clip the x0 estimate to [-clip, clip] at each step (default null: off). */
  clip?: number | null;
  /** DDIM's noise scale: 0 deterministic (default), 1 ancestral. */
  eta?: number;
  /** The ancestral sampler's step variance: "posterior" (default) or "beta". */
  variance?: SamplerVariance;
}

/** What a sampler file exports: how to build the sampler, and one line saying what it is. */
export interface SamplerDefinition {
  /** One line for help texts, e.g. "ancestral DDPM (Ho et al. 2020)". */
  readonly summary: string;
  /** The sampler over `schedule` for a network predicting `prediction`. */
  create(schedule: Schedule, prediction: Prediction, options: SamplerOptions): Sampler;
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
