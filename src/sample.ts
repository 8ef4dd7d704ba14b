/**
 * `sample(model, options)`: draws samples by running a sampler from pure noise down to t = 1.
 * x_t stays on the backend for all steps and is read back once.
 *
 * @module
 */

import { DdimSampler } from "./diffusion/ddim.ts";
import { DdpmSampler, type SamplerVariance } from "./diffusion/ddpm.ts";
import { HeunSampler } from "./diffusion/heun.ts";
import type { Sampler } from "./diffusion/sampler.ts";

/** The samplers {@link sample} offers. */
export type SamplerKind = "ddpm" | "ddim" | "heun";

/** Every sampler name, for validation of user options. */
export const SAMPLERS: readonly SamplerKind[] = ["ddpm", "ddim", "heun"];
import { checkChoice, checkInt, checkNumber } from "./errors.ts";
import type { DiffusionModel, WeightsChoice } from "./model.ts";
import { blocksFor } from "./random.ts";
import { sizeOf } from "./shape.ts";
import { noGrad, Tensor } from "./tensor.ts";
import { STREAMS } from "./train.ts";

/** Options of {@link sample}. */
export interface SampleOptions {
  /** How many samples (default 1,000). */
  count?: number;
  /**
   * The sampler: "ddpm" (ancestral, the default), "ddim" (eta 0: deterministic) or "heun"
   * (second-order probability-flow ODE; two network calls a step, far less error per step).
   */
  sampler?: SamplerKind;
  /** DDIM's noise scale: 0 deterministic (default), 1 ancestral. */
  eta?: number;
  /** Reverse-step variance: "posterior" (default) or "beta" (the seeds' sigma_t^2 = beta_t). */
  variance?: SamplerVariance;
  /** Clip the x0 estimate to [-clip, clip] at each step (default null: off). */
  clip?: number | null;
  /** Number of sampling steps, respaced over the schedule (default its T). */
  steps?: number;
  /** Seed of the noise (default 0). */
  seed?: number;
  /** The weights to use (default "ema" when the model keeps them). */
  weights?: WeightsChoice;
  /** Called after each sampling step. */
  onProgress?: (p: { step: number; steps: number }) => void;
  /** Called with x_t after the steps whose model timestep is listed in `trajectoryAt`. */
  onTrajectory?: (t: number, x: Float32Array) => void;
  /** Model timesteps at which to report x_t through `onTrajectory`. */
  trajectoryAt?: readonly number[];
}

/** Samples and their shape [count, ...sampleShape]. */
export interface Samples {
  /** The values, row-major. */
  values: Float32Array;
  /** [count, ...sampleShape]. */
  shape: number[];
}

/** Draws `count` samples from the model. */
export async function sample(model: DiffusionModel, options: SampleOptions = {}): Promise<Samples> {
  const count = options.count ?? 1000, seed = options.seed ?? 0;
  checkInt("count", count, 1);
  checkInt("seed", seed, 0);
  const kind = options.sampler ?? "ddpm";
  checkChoice("sampler", kind, SAMPLERS);
  if (options.eta !== undefined) checkNumber("eta", options.eta, { ge: 0 });
  checkChoice("variance", options.variance ?? "posterior", ["posterior", "beta"] as const);
  if (options.clip !== undefined && options.clip !== null) {
    checkNumber("clip", options.clip, { gt: 0 });
  }
  const T = model.schedule.T;
  if (options.steps !== undefined) checkInt("steps", options.steps, 1, T);
  const be = model.backend;
  const sampler: Sampler = kind === "heun"
    ? new HeunSampler(model.schedule, model.config.prediction, {
      steps: options.steps,
      clip: options.clip,
    })
    : kind === "ddim"
    ? new DdimSampler(model.schedule, model.config.prediction, {
      eta: options.eta,
      clip: options.clip,
      steps: options.steps,
    })
    : new DdpmSampler(model.schedule, model.config.prediction, {
      variance: options.variance,
      clip: options.clip,
      steps: options.steps,
    });
  const net = model.network(options.weights ?? "ema");
  const shape = [count, ...model.config.sampleShape], n = sizeOf(shape);
  const draw = (k: number) => ({ seed, stream: STREAMS.sample, counter: k * blocksFor(n) });
  let x = new Tensor(be, be.alloc(n), shape);
  be.randomNormal(x.storage, draw(0));
  const t = new Tensor(be, be.alloc(count), [count]);
  const noise = new Tensor(be, be.alloc(n), shape);
  const steps = sampler.timesteps.length;
  const want = new Set(options.trajectoryAt ?? []);
  for (let i = 0; i < steps; i++) {
    const ti = sampler.timesteps[i];
    if (sampler.sigma(i) > 0) be.randomNormal(noise.storage, draw(i + 1));
    be.beginScope();
    const prev = x;
    const denoise = (xi: Tensor, ti: number) => {
      be.fill(t.storage, ti);
      return net.forward(xi, t);
    };
    x = noGrad(() => sampler.step(denoise, i, prev, noise));
    be.flush();
    be.endScope([x.storage]);
    be.free(prev.storage);
    if (want.has(ti) && options.onTrajectory) {
      options.onTrajectory(ti, Float32Array.from(await be.read(x.storage)));
    }
    options.onProgress?.({ step: i + 1, steps });
    if ((i + 1) % 20 === 0) await new Promise((r) => setTimeout(r, 0));
  }
  const values = Float32Array.from(await be.read(x.storage));
  for (const s of [x.storage, t.storage, noise.storage]) be.free(s);
  return { values, shape };
}
