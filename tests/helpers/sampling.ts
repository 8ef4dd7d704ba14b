/**
 * Running a sampler by hand in tests: a step context over a host-side model function, and the
 * exact model of Gaussian and Gaussian-mixture data (the posterior mean of the noise), at any real
 * model time.
 */

import type { Backend } from "../../src/backend.ts";
import { arr } from "../../src/backends/reference/memory.ts";
import { type DenoiseFn, Denoiser } from "../../src/diffusion/denoiser.ts";
import { NoiseLevels } from "../../src/diffusion/noise_level.ts";
import type { Prediction } from "../../src/diffusion/parameterization.ts";
import type { Schedule } from "../../src/diffusion/schedule.ts";
import type { Sampler, StepContext } from "../../src/samplers/sampler.ts";
import { type Tensor, tensor } from "../../src/tensor.ts";

/** A step context over `model`, drawing step noise from `noise(j)`. */
export function stepContext(
  schedule: Schedule,
  prediction: Prediction,
  model: DenoiseFn,
  noise: (j: number) => Tensor,
  clip: number | null = null,
): StepContext {
  return {
    denoiser: new Denoiser(model, schedule, prediction, clip),
    noise: (j = 0) => noise(j),
    keep: () => {},
  };
}

/** Runs every step of `sampler` from x, calling `noiseFor(i, j)` for step i's draw j. */
export function runSampler(
  sampler: Sampler,
  schedule: Schedule,
  prediction: Prediction,
  model: DenoiseFn,
  x: Tensor,
  noiseFor: (i: number, j: number) => Tensor,
): Tensor {
  sampler.reset?.();
  for (let i = 0; i < sampler.timesteps.length; i++) {
    x = sampler.step(stepContext(schedule, prediction, model, (j) => noiseFor(i, j)), i, x);
  }
  return x;
}

/** A 1-D Gaussian mixture: weights (summing to 1), means and standard deviations. */
export interface Mixture {
  /** Component weights. */
  w: number[];
  /** Component means. */
  mu: number[];
  /** Component standard deviations. */
  sd: number[];
}

/**
 * The exact network output for data drawn from `mix` (a single Gaussian is a one-component
 * mixture): at level (a, s), x_t's density is the mixture of N(a mu_k, a^2 sd_k^2 + s^2), its score
 * is the responsibility-weighted -(x - a mu_k) / v_k, eps = -s score, and x0 and v follow from eps.
 * Computed on the host from the reference backend's arrays (x is [N, 1]).
 */
export function exactModel(
  be: Backend,
  schedule: Schedule,
  prediction: Prediction,
  mix: Mixture,
): DenoiseFn {
  const levels = new NoiseLevels(schedule);
  return (x, t) => {
    const { a, s } = levels.level(t), xs = arr(x.storage), out = new Float64Array(xs.length);
    for (let i = 0; i < xs.length; i++) {
      let num = 0, den = 0;
      const logs = mix.w.map((w, k) => {
        const v = a * a * mix.sd[k] ** 2 + s * s, d = xs[i] - a * mix.mu[k];
        return Math.log(w) - 0.5 * Math.log(v) - (d * d) / (2 * v);
      });
      const top = Math.max(...logs);
      mix.w.forEach((_, k) => {
        const v = a * a * mix.sd[k] ** 2 + s * s, r = Math.exp(logs[k] - top);
        num += r * (-(xs[i] - a * mix.mu[k]) / v);
        den += r;
      });
      const eps = -s * (num / den), x0 = (xs[i] - s * eps) / a;
      out[i] = prediction === "epsilon" ? eps : prediction === "x0" ? x0 : a * eps - s * x0;
    }
    return tensor(be, out, x.shape);
  };
}

/** Mean and variance of values. */
export function meanVar(v: ArrayLike<number>): [number, number] {
  let m = 0;
  for (let i = 0; i < v.length; i++) m += v[i];
  m /= v.length;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] - m) ** 2;
  return [m, s / v.length];
}
