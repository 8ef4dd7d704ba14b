/**
 * Denoising score matching (Vincent 2011; Song & Ermon 2019, NCSN; seed 001 §3), the training
 * objective beside the DDPM regression of objective.ts (`train({ objective: "dsm" })`).
 *
 * The noise levels are the geometric sigmas of a "ve" schedule (src/diffusion/schedule.ts):
 * sigma_t = sigmaMin (sigmaMax / sigmaMin)^((t - 1) / (T - 1)), t = 1..T. Each training sample
 * draws a level t uniformly, is noised to x = x0 + sigma_t z (z ~ N(0, I)), and the network, asked
 * at (x, t), is read as sigma_t times the score s_theta(x, sigma_t). The loss is seed 001's
 * lambda(sigma) = sigma^2 weighting of denoising score matching,
 *
 *   sigma^2 || s_theta(x, sigma) + z / sigma ||^2  =  || sigma s_theta(x, sigma) + z ||^2,
 *
 * taken in the second form: the network's output sigma s_theta regresses onto -z, a target of unit
 * variance at every level, so no 1 / sigma^2 (up to 10^4 at sigma = 0.01) enters the arithmetic.
 * Both forms are the same number; the optimum is sigma s_theta = -E[z | x], that is
 * s_theta = grad log p_sigma(x). Like the DDPM losses here, the squared error is averaged over the
 * batch and the sample's values: seed 001's 1/2 E[...] summed over the D values is D/2 times it,
 * the same minimiser.
 *
 * Conditioning on the noise level: the network keeps its timestep input and is asked at
 *
 *   t(sigma) = 1 + (T - 1) log(sigma / sigmaMin) / log(sigmaMax / sigmaMin)   ({@link scoreTime}),
 *
 * linear in log sigma: t = 1 at sigmaMin, t = T at sigmaMax, and t = i exactly at the i-th level.
 * The MLP's scalar time input, (t - 1) / (T - 1) - 1/2, is then log sigma rescaled to [-1/2, 1/2];
 * the sinusoidal embeddings embed the same t. Between levels (samplers at real model times)
 * NoiseLevels interpolates log sigma linearly in t, which for geometric sigmas is this map again.
 *
 * A score model also samples with every DDPM sampler through the exact change of coordinates
 * ({@link epsilonFromScore}): x_vp = x / sqrt(1 + sigma^2), alphaBar = 1 / (1 + sigma^2) (the "ve"
 * schedule's own alphaBar) and eps = -sigma score = -output.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Network } from "../models/network.ts";
import { add, affine, mul, sub } from "../ops/elementwise.ts";
import { regressionLoss } from "../ops/loss.ts";
import { mean } from "../ops/reduce.ts";
import { gather, reshape } from "../ops/shape.ts";
import { type Tensor, tensor } from "../tensor.ts";
import type { DenoiseFn } from "./denoiser.ts";
import { NoiseLevels } from "./noise_level.ts";
import type { ObjectiveBatchOptions, ObjectiveTerms } from "./objective.ts";
import type { Schedule, VeScheduleConfig } from "./schedule.ts";

/**
 * The training objectives: "ddpm", the regression of eps, x0 or v under a noise schedule (Ho et al.
 * 2020; objective.ts), and "dsm", denoising score matching over variance-exploding levels.
 */
export const OBJECTIVES = ["ddpm", "dsm"] as const;

/** A training objective: "ddpm" (the default) or "dsm" (denoising score matching). */
export type ObjectiveKind = typeof OBJECTIVES[number];

/**
 * The noise levels `objective: "dsm"` trains over when no schedule is given: 50 levels from 0.01 to
 * 10. sigmaMax should be about the data's largest pairwise distance (Song & Ermon 2020, technique
 * 1), 10 covers standardized low-dimensional data; sigmaMin well below the data's finest detail.
 */
export const DEFAULT_VE_SCHEDULE: Readonly<VeScheduleConfig> = {
  kind: "ve",
  T: 50,
  sigmaMin: 0.01,
  sigmaMax: 10,
};

/**
 * The model time a score network is asked at for noise level `sigma` (its conditioning):
 * 1 + (T - 1) log(sigma / sigmaMin) / log(sigmaMax / sigmaMin), linear in log sigma, the i-th level
 * at t = i. Levels outside [sigmaMin, sigmaMax] map outside [1, T].
 */
export function scoreTime(config: VeScheduleConfig, sigma: number): number {
  const { T, sigmaMin, sigmaMax } = config;
  return 1 + ((T - 1) * Math.log(sigma / sigmaMin)) / Math.log(sigmaMax / sigmaMin);
}

/** The denoising-score-matching loss over a schedule's levels, its sigma table on the backend. */
export class ScoreMatchingObjective {
  /** sigma_VE indexed by t (entry 0 unused, so t = 1..T index directly). */
  readonly sigmas: Tensor;

  /** The objective over the noise levels of `schedule` (a "ve" schedule's geometric sigmas). */
  constructor(backend: Backend, schedule: Schedule) {
    const levels = new NoiseLevels(schedule), table = new Float64Array(schedule.T + 1);
    for (let t = 1; t <= schedule.T; t++) table[t] = levels.sigmaVE(t);
    this.sigmas = tensor(backend, table, [schedule.T + 1]);
  }

  /**
   * The loss of `net` on clean samples x0 [B, ...] at levels t [B] (integral floats in 1..T) with
   * standard normal noise z (shaped like x0): the mean of (net(x0 + sigma_t z, t) + z)^2, which is
   * sigma_t^2 || s_theta + z / sigma_t ||^2 per value (see the module's comment). `rootWeights`
   * scale both sides per sample, as in {@link DenoisingObjective.loss}.
   */
  loss(
    net: Network,
    x0: Tensor,
    t: Tensor,
    z: Tensor,
    options: ObjectiveBatchOptions = {},
  ): ObjectiveTerms {
    const shape = [t.size, ...new Array<number>(x0.shape.length - 1).fill(1)];
    const sigma = reshape(gather(this.sigmas, t), shape);
    const x = add(x0, mul(sigma, z));
    let pred = net.forward(x, t, options.ctx, options.labels), goal = affine(z, -1);
    if (options.rootWeights) {
      const w = reshape(options.rootWeights, shape);
      pred = mul(w, pred);
      goal = mul(w, goal);
    }
    const loss = regressionLoss("l2", pred, goal);
    if (!options.perSample) return { loss, perSample: null, vlb: null };
    const diff = sub(pred, goal);
    const perSample = mean(mul(diff, diff), diff.shape.slice(1).map((_, i) => i + 1));
    return { loss, perSample, vlb: null };
  }
}

/**
 * A score network `fn` (output sigma score at x = x0 + sigma z) as the epsilon-prediction network
 * of the variance-preserving schedule with the same levels (the "ve" schedule's alphaBar_t =
 * 1 / (1 + sigma_t^2)): eps(x_vp, t) = -fn(x_vp sqrt(1 + sigma_t^2), t), exact at every real t.
 * Every DDPM sampler then draws from a score model as it does from an epsilon model.
 */
export function epsilonFromScore(fn: DenoiseFn, levels: NoiseLevels): DenoiseFn {
  return (x, t) => {
    const sigma = levels.sigmaVE(t);
    return affine(fn(affine(x, Math.sqrt(1 + sigma * sigma)), t), -1);
  };
}
