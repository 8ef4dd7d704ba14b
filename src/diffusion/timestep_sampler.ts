/**
 * Importance sampling of the training timestep t: t is drawn with probability p_t and each sample's
 * loss is weighted by 1 / (T p_t), so the expected loss (and its gradient) is the one of uniform t,
 * with less variance when p_t follows the size of each timestep's gradient.
 *
 * The per-sample gradient of a weighted L2 loss λ_t ‖f - y‖² is about 2 λ_t ‖f - y‖ in size, that
 * is 2 sqrt(λ_t ℓ_t) with ℓ_t = λ_t ‖f - y‖² the sample's weighted loss; so p_t ∝ sqrt(λ_t ℓ̄_t),
 * with ℓ̄ a running mean of the weighted loss in each of up to {@link TIMESTEP_BINS} bins of
 * consecutive timesteps, mixed with {@link UNIFORM_SHARE} of uniform so that no p_t is near zero
 * (improved DDPM's loss-second-moment sampler takes sqrt(E[ℓ_t²]) instead, which does worse on our
 * MNIST UNet: from per-sample gradients of a trained default model at 20 timesteps, this rule lowers
 * the gradients' second moment 1.16x against uniform t, that one raises it, 0.88x). Until every
 * bin has seen {@link WARMUP_COUNT} samples, t is uniform.
 *
 * @module
 */

import { uniformToInt } from "../random.ts";

/** The ways to draw training timesteps. */
export const TIMESTEP_SAMPLINGS = ["uniform", "importance"] as const;

/** How training timesteps are drawn: uniformly, or by {@link ImportanceSampler}. */
export type TimestepSampling = typeof TIMESTEP_SAMPLINGS[number];

/** Timesteps are grouped into at most this many bins of consecutive t for the loss statistics. */
export const TIMESTEP_BINS = 50;

/** The share of the uniform distribution mixed into p_t. */
export const UNIFORM_SHARE = 0.1;

/** Samples each bin must have seen before t leaves the uniform distribution. */
export const WARMUP_COUNT = 20;

/** The running mean forgets at this rate per sample once a bin has seen 1 / rate samples. */
export const LOSS_RATE = 0.01;

/** The per-bin loss statistics: running mean weighted loss and samples seen (saved in checkpoints). */
export interface TimestepStats {
  /** Running mean of the weighted per-sample loss in each bin. */
  loss: Float32Array;
  /** Samples seen in each bin, capped at 1 / {@link LOSS_RATE}. */
  count: Float32Array;
}

/** The number of bins for T timesteps. */
export function timestepBins(T: number): number {
  return Math.min(T, TIMESTEP_BINS);
}

/** Fresh statistics (nothing seen) for T timesteps. */
export function emptyTimestepStats(T: number): TimestepStats {
  const k = timestepBins(T);
  return { loss: new Float32Array(k), count: new Float32Array(k) };
}

/**
 * Draws timesteps 1..T in proportion to sqrt(λ_t ℓ̄_t) and gives each its weight 1 / (T p_t); keeps
 * the running means ℓ̄ from the losses it is told.
 */
export class ImportanceSampler {
  /** The statistics, updated in place by {@link ImportanceSampler.update}. */
  readonly stats: TimestepStats;
  readonly #T: number;
  readonly #lambda: Float64Array;
  readonly #bin: Int32Array;
  readonly #cdf: Float64Array;

  /**
   * A sampler over t = 1..T with loss weights `lambda` (indexed by t; entry 0 unused), continuing
   * from `stats` when given.
   */
  constructor(T: number, lambda: Float64Array, stats: TimestepStats = emptyTimestepStats(T)) {
    const k = timestepBins(T);
    if (lambda.length !== T + 1) {
      throw new RangeError(`ImportanceSampler: ${lambda.length} loss weights for T = ${T}`);
    }
    if (stats.loss.length !== k || stats.count.length !== k) {
      throw new RangeError(
        `ImportanceSampler: statistics of ${stats.loss.length} bins, T needs ${k}`,
      );
    }
    this.#T = T;
    this.#lambda = lambda;
    this.stats = stats;
    this.#bin = new Int32Array(T + 1);
    for (let t = 1; t <= T; t++) this.#bin[t] = Math.floor(((t - 1) * k) / T);
    this.#cdf = new Float64Array(T + 1);
  }

  /** Whether every bin has seen enough samples for t to leave the uniform distribution. */
  get warm(): boolean {
    return this.stats.count.every((c) => c >= WARMUP_COUNT);
  }

  /** p_t for t = 1..T (entry t - 1): uniform until {@link ImportanceSampler.warm}. */
  probabilities(): Float64Array {
    const T = this.#T, p = new Float64Array(T).fill(1 / T);
    if (!this.warm) return p;
    let z = 0;
    for (let t = 1; t <= T; t++) {
      p[t - 1] = Math.sqrt(this.#lambda[t] * this.stats.loss[this.#bin[t]]);
      z += p[t - 1];
    }
    for (let t = 0; t < T; t++) {
      p[t] = z > 0 ? (1 - UNIFORM_SHARE) * (p[t] / z) + UNIFORM_SHARE / T : 1 / T;
    }
    return p;
  }

  /**
   * Turns uniform draws `u` in [0, 1) into timesteps `t` and their loss weights 1 / (T p_t) in
   * `weight`. Before warm-up, t = uniformToInt(u, 1, T + 1), the same t as uniform sampling.
   */
  draw(u: ArrayLike<number>, t: Float32Array, weight: Float64Array): void {
    const T = this.#T;
    if (!this.warm) {
      for (let i = 0; i < u.length; i++) {
        t[i] = uniformToInt(u[i], 1, T + 1);
        weight[i] = 1;
      }
      return;
    }
    const p = this.probabilities(), cdf = this.#cdf;
    for (let s = 1; s <= T; s++) cdf[s] = cdf[s - 1] + p[s - 1];
    for (let i = 0; i < u.length; i++) {
      const x = u[i] * cdf[T];
      let lo = 1, hi = T;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cdf[mid] > x) hi = mid;
        else lo = mid + 1;
      }
      t[i] = lo;
      weight[i] = 1 / (T * p[lo - 1]);
    }
  }

  /** Adds the weighted per-sample losses `loss` of timesteps `t` to the running means. */
  update(t: ArrayLike<number>, loss: ArrayLike<number>): void {
    const { loss: mean, count } = this.stats;
    for (let i = 0; i < t.length; i++) {
      const b = this.#bin[t[i]], n = Math.min(count[b] + 1, 1 / LOSS_RATE);
      mean[b] += (loss[i] - mean[b]) / n;
      count[b] = n;
    }
  }
}
