/**
 * Learned reverse variances (Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic
 * Models", §3.1; their code's `p_mean_variance` with `model_var_type == LEARNED_RANGE`, and the
 * hybrid loss of `training_losses`).
 *
 * A network trained with `learnSigma` outputs, beside its prediction of eps, a second set of
 * channels v (the output [B, 2C, ...] is split along axis 1: eps in the first C, v in the last C).
 * The reverse step p(x_{t-1} | x_t) = N(mu_theta(x_t, t), Sigma_theta(x_t, t)) takes the variance
 * (their eq. 15)
 *
 *   Sigma_theta = exp(frac log beta_t + (1 - frac) log betaTilde_t),   frac = (v + 1) / 2,
 *
 * a log-domain interpolation between Ho et al.'s two fixed variances (frac = 1: beta_t, frac = 0:
 * the posterior's betaTilde_t), betaTilde_1 = 0 replaced by betaTilde_2 in the log (their
 * `posterior_log_variance_clipped`). v is the raw output, not squashed: frac may leave [0, 1].
 *
 * The simple loss does not depend on Sigma_theta, so such a model trains on the hybrid loss (their
 * eq. 16)
 *
 *   L_hybrid = L_simple + lambda L_vlb,   lambda = 0.001,   L_vlb = T E_t[L_t],
 *
 * so each sample adds lambda T L_t, where L_t is in bits per dimension (the mean over the sample's
 * values, divided by ln 2):
 *
 *   t >= 2:  L_t = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))   (two Gaussians, per value),
 *   t = 1:   L_t = -log p(x_0 | x_1)   (the discretised Gaussian decoder of Ho et al., eq. 13),
 *
 * with p's mean formed from a stop-gradient copy of the predicted eps (§3.1: "we apply a
 * stop-gradient to the mu_theta(x_t, t) output for the L_vlb term"): L_vlb trains the variance
 * only, L_simple the mean. The mean is c1_t x0_hat + c2_t x_t with x0_hat = (x_t - s_t eps) / a_t,
 * unclipped, as their training takes it (`clip_denoised=False`). For T = 1000, lambda T L_t is
 * their `vb` term at weight 1 (`RESCALED_MSE` scales it by T / 1000).
 *
 * On the device the decoder's normal CDF is Improved DDPM's tanh approximation,
 * Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2 (`approx_standard_normal_cdf`; absolute
 * error below 2e-4), with bin probabilities floored at 1e-12 as theirs are: every backend has tanh
 * among its differentiable ops, while erf is none of them. The host-side bound (vlb.ts) keeps its
 * exact erfc.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import {
  add,
  affine,
  div,
  exp,
  log,
  mul,
  relu,
  square,
  sub,
  tanh,
  unary,
} from "../ops/elementwise.ts";
import { mean } from "../ops/reduce.ts";
import { concat, gather, reshape, slice } from "../ops/shape.ts";
import { detach, type Tensor, tensor } from "../tensor.ts";
import type { NoiseLevel } from "./parameterization.ts";
import type { Schedule } from "./schedule.ts";

/** lambda of the hybrid loss L_simple + lambda L_vlb (Nichol & Dhariwal 2021, §3.1). */
export const HYBRID_VLB_WEIGHT = 0.001;

/** Half the bin width of 8-bit data scaled to [-1, 1]: bins are x ± 1/255. */
const HALF_BIN = 1 / 255;
/** Values beyond ±0.999 take the whole tail as their bin (Improved DDPM's thresholds). */
const EDGE = 0.999;
/** Improved DDPM's floor on bin probabilities. */
const PROBABILITY_FLOOR = 1e-12;

/** A learnSigma network's output split along axis 1: the prediction and the variance output. */
export interface LearnedOutput {
  /** The prediction (eps), [B, C, ...]. */
  output: Tensor;
  /** The raw variance output v, [B, C, ...]: frac = (v + 1) / 2. */
  v: Tensor;
}

/**
 * Splits a learnSigma network's output [B, 2C, ...] into the prediction (the first C along axis 1)
 * and v (the last C), as Improved DDPM's `torch.split(model_output, C, dim=1)`.
 */
export function splitLearnedOutput(out: Tensor): LearnedOutput {
  const c2 = out.shape[1];
  if (out.shape.length < 2 || c2 % 2 !== 0) {
    throw new RangeError(
      `a learned-variance output needs an even axis 1 (prediction and v), got [${out.shape}]`,
    );
  }
  const c = c2 / 2;
  return { output: slice(out, 1, 0, c), v: slice(out, 1, c, c) };
}

/** The inverse of {@link splitLearnedOutput}: [output; v] along axis 1. */
export function joinLearnedOutput(output: Tensor, v: Tensor): Tensor {
  return concat([output, v], 1);
}

/**
 * log betaTilde_t for t = 1..T (index t - 1), with betaTilde_1 = 0 replaced by betaTilde_2
 * (Improved DDPM's `posterior_log_variance_clipped`): the lower end of the learned range.
 */
export function clippedLogPosteriorVariance(schedule: Schedule): Float64Array {
  const pv = schedule.posteriorVariance;
  return Float64Array.from(pv, (v, i) => Math.log(i === 0 && pv.length > 1 ? pv[1] : v));
}

/**
 * The learned log-variance of one value (eq. 15): frac log beta_t + (1 - frac) log betaTilde_t
 * with frac = (v + 1) / 2, given `logBeta` = log beta_t and `logPosterior` = the clipped
 * log betaTilde_t ({@link clippedLogPosteriorVariance}).
 */
export function learnedLogVariance(v: number, logBeta: number, logPosterior: number): number {
  const frac = (v + 1) / 2;
  return frac * logBeta + (1 - frac) * logPosterior;
}

/**
 * The learned log-variance at timestep t (1..T) of `schedule` as an affine map of v:
 * log Sigma = scale v + shift, scale = (log beta_t - log betaTilde_t) / 2 and
 * shift = (log beta_t + log betaTilde_t) / 2 (eq. 15 rearranged; betaTilde clipped at t = 1).
 * On a respaced schedule these are the respaced betas, as Improved DDPM's respacing takes them.
 */
export function learnedLogVarianceCoefficients(
  schedule: Schedule,
  t: number,
): { scale: number; shift: number } {
  const pv = schedule.posteriorVariance;
  const hi = Math.log(schedule.betas[t - 1]);
  const lo = Math.log(t === 1 && pv.length > 1 ? pv[1] : pv[t - 1]);
  return { scale: (hi - lo) / 2, shift: (hi + lo) / 2 };
}

/**
 * The standard normal CDF by Improved DDPM's tanh approximation (`approx_standard_normal_cdf`):
 * Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2, differentiable on every backend.
 */
export function approxStandardNormalCdf(x: Tensor): Tensor {
  const cubic = add(x, affine(mul(x, square(x)), 0.044715));
  return affine(tanh(affine(cubic, Math.sqrt(2 / Math.PI))), 0.5, 0.5);
}

/** 1 where `x` (held constant) exceeds `threshold`, else 0. */
function above(x: Tensor, threshold: number): Tensor {
  return relu(unary("sign", affine(detach(x), 1, -threshold)));
}

/**
 * The log-likelihood, in nats and elementwise, of 8-bit data x in [-1, 1] under N(mean,
 * exp(logScale)^2) discretised to the bins [x - 1/255, x + 1/255], the edge bins (x < -0.999,
 * x > 0.999) open to infinity (Ho et al. 2020, eq. 13; Improved DDPM's
 * `discretized_gaussian_log_likelihood`): log max(Phi(hi) - Phi(lo), 1e-12) with the tanh
 * approximation of Phi ({@link approxStandardNormalCdf}). Differentiable in `mean` and `logScale`;
 * `x` is data (no gradient). Shapes broadcast.
 */
export function approxDiscretizedGaussianLogLikelihood(
  x: Tensor,
  mean: Tensor,
  logScale: Tensor,
): Tensor {
  const centred = sub(detach(x), mean), inv = exp(affine(logScale, -1));
  const cdfPlus = approxStandardNormalCdf(mul(affine(centred, 1, HALF_BIN), inv));
  const cdfMin = approxStandardNormalCdf(mul(affine(centred, 1, -HALF_BIN), inv));
  // The upper end is +inf above 0.999 (Phi = 1), the lower end -inf below -0.999 (Phi = 0).
  const upper = add(cdfPlus, mul(above(x, EDGE), affine(cdfPlus, -1, 1)));
  const lower = mul(cdfMin, affine(above(affine(x, -1), EDGE), -1, 1));
  // max(p, floor) = relu(p - floor) + floor.
  const p = sub(upper, lower);
  return log(affine(relu(affine(p, 1, -PROBABILITY_FLOOR)), 1, PROBABILITY_FLOOR));
}

/**
 * KL(N(mean1, exp(logVar1)) || N(mean2, exp(logVar2))) elementwise, in nats, on the device:
 * (logVar2 - logVar1 + exp(logVar1 - logVar2) + (mean1 - mean2)^2 exp(-logVar2) - 1) / 2
 * (Improved DDPM's `normal_kl`; the host's is vlb.ts's `normalKl`). Shapes broadcast.
 */
export function gaussianKl(mean1: Tensor, logVar1: Tensor, mean2: Tensor, logVar2: Tensor): Tensor {
  const d = sub(logVar1, logVar2);
  const quad = mul(square(sub(mean1, mean2)), exp(affine(logVar2, -1)));
  return affine(add(sub(exp(d), d), quad), 0.5, -0.5);
}

/** What {@link HybridVlbTerm.perSample} needs of one batch. */
export interface HybridVlbInputs {
  /** The clean samples x0 [B, C, ...] (data in [-1, 1]). */
  x0: Tensor;
  /** The noised samples x_t [B, C, ...]. */
  xt: Tensor;
  /** The timesteps [B] (integral floats in 1..T). */
  t: Tensor;
  /** The network's eps prediction [B, C, ...]: only a stop-gradient copy of it is used. */
  eps: Tensor;
  /** The network's variance output v [B, C, ...]. */
  v: Tensor;
  /** a_t = sqrt(alphaBar_t) and s_t = sqrt(1 - alphaBar_t), [B, 1, ...]. */
  level: NoiseLevel;
}

/**
 * The L_vlb part of the hybrid loss on one schedule, its tables resident on the backend: each
 * sample's L_t in bits per dimension (see the module notes), differentiable in v alone.
 */
export class HybridVlbTerm {
  /** The host schedule. */
  readonly schedule: Schedule;
  readonly #logBeta: Tensor;
  readonly #logPosterior: Tensor;
  readonly #c1: Tensor;
  readonly #c2: Tensor;
  readonly #decoder: Tensor;

  /** Uploads `schedule`'s tables (indexed by t, entry 0 unused) to `backend`. */
  constructor(backend: Backend, schedule: Schedule) {
    this.schedule = schedule;
    const T = schedule.T;
    const table = (values: ArrayLike<number>) => {
      const out = new Float64Array(T + 1);
      out.set(values, 1);
      return tensor(backend, out, [T + 1]);
    };
    this.#logBeta = table(schedule.betas.map(Math.log));
    this.#logPosterior = table(clippedLogPosteriorVariance(schedule));
    this.#c1 = table(schedule.posteriorMeanCoef1);
    this.#c2 = table(schedule.posteriorMeanCoef2);
    this.#decoder = table(Float64Array.from({ length: T }, (_, i) => (i === 0 ? 1 : 0)));
  }

  /**
   * Each sample's L_t [B] in bits per dimension: the KL of the true posterior from the model's
   * step for t >= 2, the decoder's negative log-likelihood of x0 for t = 1, the model's mean
   * from the stop-gradient eps and its log-variance frac log beta_t + (1 - frac) log betaTilde_t.
   */
  perSample(inputs: HybridVlbInputs): Tensor {
    const { x0, xt, t, v, level } = inputs, eps = detach(inputs.eps);
    const column = (table: Tensor) => reshape(gather(table, t), level.a.shape);
    const c1 = column(this.#c1), c2 = column(this.#c2);
    const maxLog = column(this.#logBeta), minLog = column(this.#logPosterior);
    const x0Hat = div(sub(xt, mul(level.s, eps)), level.a);
    const towardXt = mul(c2, xt);
    const trueMean = add(mul(c1, x0), towardXt), modelMean = add(mul(c1, x0Hat), towardXt);
    // log Sigma = minLog + frac (maxLog - minLog), frac = (v + 1) / 2.
    const logVar = add(minLog, mul(affine(v, 0.5, 0.5), sub(maxLog, minLog)));
    const kl = gaussianKl(trueMean, minLog, modelMean, logVar);
    const nll = affine(
      approxDiscretizedGaussianLogLikelihood(x0, modelMean, affine(logVar, 0.5)),
      -1,
    );
    // t = 1 takes the decoder's term, t >= 2 the KL: kl + decoder (nll - kl).
    const term = add(kl, mul(column(this.#decoder), sub(nll, kl)));
    const axes = term.shape.slice(1).map((_, i) => i + 1);
    return affine(mean(term, axes), 1 / Math.LN2);
  }
}
