/**
 * `sample(model, options)`: draws samples by running a sampler (chosen by name from
 * src/samplers/registry.ts) from pure noise down to t = 1, in batches. x_t stays on the backend for
 * all steps and is read back once per batch.
 *
 * @module
 */

import { checkChoice, checkInt, checkNumber } from "./errors.ts";
import type { DiffusionModel, WeightsChoice } from "./model.ts";
import { blocksFor } from "./random.ts";
import { STREAMS } from "./random_streams.ts";
import { createSampler, type SamplerKind, SAMPLERS } from "./samplers/registry.ts";
import type { SamplerVariance } from "./samplers/sampler.ts";
import { sizeOf } from "./shape.ts";
import { noGrad, Tensor } from "./tensor.ts";

export { type SamplerKind, SAMPLERS } from "./samplers/registry.ts";

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
  /** Model timesteps at which to report x_t through `onTrajectory` (for the first batch). */
  trajectoryAt?: readonly number[];
  /**
   * Samples denoised at once (default 256; rounded up so that batches start on whole random
   * blocks). The samples are the same for every batch size.
   */
  batchSize?: number;
}

/** Samples and their shape [count, ...sampleShape]. */
export interface Samples {
  /** The values, row-major. */
  values: Float32Array;
  /** [count, ...sampleShape]. */
  shape: number[];
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
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
  const sampler = createSampler(kind, model.schedule, model.config.prediction, {
    steps: options.steps,
    clip: options.clip,
    eta: options.eta,
    variance: options.variance,
  });
  const net = model.network(options.weights ?? "ema");
  const per = sizeOf(model.config.sampleShape), shape = [count, ...model.config.sampleShape];
  // Chunks start at element offsets divisible by 4, so each chunk's draws are the same Philox
  // blocks as in one big batch: the samples do not depend on the batch size.
  const align = 4 / gcd(per, 4);
  const batch = Math.max(
    align,
    Math.ceil(Math.min(options.batchSize ?? 256, count) / align) * align,
  );
  checkInt("batchSize", batch, 1);
  const totalBlocks = blocksFor(count * per);
  const values = new Float32Array(count * per);
  const steps = sampler.timesteps.length, chunks = Math.ceil(count / batch);
  const want = new Set(options.trajectoryAt ?? []);
  for (let c = 0; c < chunks; c++) {
    const start = c * batch, m = Math.min(batch, count - start), n = m * per;
    const draw = (k: number) => ({
      seed,
      stream: STREAMS.sample,
      counter: k * totalBlocks + (start * per) / 4,
    });
    let x = new Tensor(be, be.alloc(n), [m, ...model.config.sampleShape]);
    be.randomNormal(x.storage, draw(0));
    const t = new Tensor(be, be.alloc(m), [m]);
    const noise = new Tensor(be, be.alloc(n), x.shape);
    const denoise = (xi: Tensor, tm: number) => {
      be.fill(t.storage, tm);
      return net.forward(xi, t);
    };
    for (let i = 0; i < steps; i++) {
      const ti = sampler.timesteps[i];
      if (sampler.sigma(i) > 0) be.randomNormal(noise.storage, draw(i + 1));
      be.beginScope();
      const prev = x;
      x = noGrad(() => sampler.step(denoise, i, prev, noise));
      be.flush();
      be.endScope([x.storage]);
      be.free(prev.storage);
      if (c === 0 && want.has(ti) && options.onTrajectory) {
        options.onTrajectory(ti, Float32Array.from(await be.read(x.storage)));
      }
      options.onProgress?.({ step: c * steps + i + 1, steps: chunks * steps });
      if ((i + 1) % 20 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    values.set(await be.read(x.storage), start * per);
    for (const st of [x.storage, t.storage, noise.storage]) be.free(st);
  }
  return { values, shape };
}
