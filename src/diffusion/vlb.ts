/**
 * The variational bound on the negative log-likelihood of data, in bits per dimension (Ho et al.
 * 2020, §3.3 and eq. 5; Nichol & Dhariwal 2021, "Improved DDPM", §2, eqs. 4–7, their
 * `_vb_terms_bpd`, `_prior_bpd` and `calc_bpd_loop`):
 *
 *   -log p(x_0) <= L = L_T + sum_{t=2..T} L_{t-1} + L_0, with
 *   L_T     = KL(q(x_T | x_0) || N(0, I))                  (the prior term, in closed form),
 *   L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))  (t = 2..T, x_t ~ q(x_t | x_0)),
 *   L_0     = -log p(x_0 | x_1)                            (the discretised decoder, eq. 13 of Ho et al.).
 *
 * q(x_{t-1} | x_t, x_0) = N(c1_t x_0 + c2_t x_t, betaTilde_t I) is the true posterior (Ho et al.
 * eqs. 6–7: the schedule's `posteriorMeanCoef1/2` and `posteriorVariance`). The model's
 * p(x_{t-1} | x_t) has the same form of mean with x_0 replaced by the network's estimate, clipped
 * to [-1, 1] as Improved DDPM does (`clip_denoised=True`), and a fixed variance: betaTilde_t
 * ("posterior", the "small" one) or beta_t ("beta", the "large" one). At t = 1 both use
 * betaTilde_2: betaTilde_1 = 0 would make the decoder a point mass, and both papers' code uses
 * betaTilde_2 there for both fixed variances (Improved DDPM's `posterior_log_variance_clipped` and
 * `np.append(posterior_variance[1], betas[1:])` for "fixedlarge", Ho et al.'s diffusion_utils_2.py
 * the same), so the figures compare with theirs. A learned-variance model (`learnSigma`) has a
 * third choice, its own variance ("learned", its default): exp(frac log beta_t + (1 - frac) log
 * betaTilde_t) per value, frac = (v + 1) / 2 (Improved DDPM's eq. 15, `LEARNED_RANGE`), betaTilde_1
 * replaced by betaTilde_2, at t = 1 too (frac log beta_1 + (1 - frac) log betaTilde_2: theirs).
 *
 * The Gaussian CDF is computed from an erfc accurate to about 1e-15 relative (A&S 7.1.6's series
 * below 1.5, the continued fraction A&S 7.1.14 above), and bin probabilities are taken in log space
 * from the nearer tail, so that even far-off bins get their true (tiny) probability. Improved DDPM
 * uses a tanh approximation of the CDF and floors probabilities at 1e-12; this bound does neither.
 *
 * The network runs on the model's backend, one call per (batch of images, t); the bound's
 * arithmetic runs on the host in float64 on the read-back estimates.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { checkChoice, checkInt, OptionError } from "../errors.ts";
import { MAX_SAMPLES } from "../limits.ts";
import type { DiffusionModel, WeightsChoice } from "../model.ts";
import { blocksFor, fillNormal } from "../random.ts";
import { STREAMS } from "../random_streams.ts";
import { sizeOf } from "../shape.ts";
import { noGrad, tensor } from "../tensor.ts";
import type { Denoiser } from "./denoiser.ts";
import { clippedLogPosteriorVariance, learnedLogVariance } from "./learned_variance.ts";
import type { Schedule } from "./schedule.ts";

/** Numbers elementwise: an array, or one number for every element. */
export type Values = ArrayLike<number> | number;

/**
 * The variance of the model's reverse step p(x_{t-1} | x_t): one of the two fixed ones, or a
 * learned-variance model's own ("learned").
 */
export type BoundVariance = "posterior" | "beta" | "learned";

/** The valid {@link BoundVariance}s. */
export const BOUND_VARIANCES: readonly BoundVariance[] = ["posterior", "beta", "learned"];

/** Half the bin width of 8-bit data scaled to [-1, 1]: bins are x ± 1/255. */
const HALF_BIN = 1 / 255;
/** Pixels beyond these take the whole tail as their bin (Improved DDPM's ±0.999 thresholds). */
const EDGE = 0.999;

function lengthOf(name: string, args: readonly Values[]): number {
  let n = -1;
  for (const a of args) {
    if (typeof a === "number") continue;
    if (n >= 0 && a.length !== n) {
      throw new RangeError(`${name}: the arrays' lengths differ (${n} and ${a.length})`);
    }
    n = a.length;
  }
  return n < 0 ? 1 : n;
}

const at = (v: Values, i: number) => (typeof v === "number" ? v : v[i]);

/**
 * KL(N(m1, exp(lv1)) || N(m2, exp(lv2))) of two 1-D Gaussians, in nats:
 * (lv2 - lv1 + exp(lv1 - lv2) + (m1 - m2)^2 exp(-lv2) - 1) / 2.
 */
function kl(m1: number, lv1: number, m2: number, lv2: number): number {
  const d = m1 - m2;
  return 0.5 * (-1 + lv2 - lv1 + Math.exp(lv1 - lv2) + d * d * Math.exp(-lv2));
}

/**
 * The KL divergence KL(N(mean1, exp(logVar1)) || N(mean2, exp(logVar2))) elementwise, in nats:
 * (logVar2 - logVar1 + exp(logVar1 - logVar2) + (mean1 - mean2)^2 exp(-logVar2) - 1) / 2
 * (Improved DDPM's `normal_kl`). Each argument is an array or one number for all; the arrays must
 * have one length, which the result has (1 when all are numbers).
 */
export function normalKl(
  mean1: Values,
  logVar1: Values,
  mean2: Values,
  logVar2: Values,
): Float64Array {
  const n = lengthOf("normalKl", [mean1, logVar1, mean2, logVar2]), out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = kl(at(mean1, i), at(logVar1, i), at(mean2, i), at(logVar2, i));
  }
  return out;
}

const RSQRT_PI = 1 / Math.sqrt(Math.PI);

/** Below this erf's series, above it erfc's continued fraction. */
const SPLIT = 1.5;

/** erfc(x) exp(x^2) for x >= 1.5, by the continued fraction A&S 7.1.14 (evaluated backwards). */
function erfcxLarge(x: number): number {
  // 1 / (x + (1/2) / (x + (2/2) / (x + (3/2) / (x + ...)))), 120 levels: converged to double
  // precision for x >= 1.5 (checked against a 500-level evaluation).
  let f = x;
  for (let n = 120; n >= 1; n--) f = x + (n / 2) / f;
  return RSQRT_PI / f;
}

/** erf(x) for 0 <= x < 1.5 by the series A&S 7.1.6: 2/sqrt(pi) exp(-x^2) sum 2^n x^(2n+1) / (2n+1)!!. */
function erfSmall(x: number): number {
  let term = x, sum = x;
  const x2 = 2 * x * x;
  for (let n = 1; n < 200; n++) {
    term *= x2 / (2 * n + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return 2 * RSQRT_PI * Math.exp(-x * x) * sum;
}

/**
 * The complementary error function erfc(x) = 1 - erf(x), accurate to about 1e-15 relative for all
 * x (A&S 7.1.6 and 7.1.14), without underflow's loss of precision down to its smallest values.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < SPLIT) return 1 - erfSmall(x);
  return Math.exp(-x * x) * erfcxLarge(x);
}

/** log Q(z) = log P(Z > z) of a standard normal Z, for z >= 0 (no underflow). */
function logUpperTail(z: number): number {
  if (z === Infinity) return -Infinity;
  const x = z / Math.SQRT2;
  if (x < SPLIT) return Math.log(0.5 * (1 - erfSmall(x)));
  return -x * x + Math.log(0.5 * erfcxLarge(x));
}

/** log(Q(lo) - Q(hi)) for 0 <= lo < hi <= Infinity, Q the standard normal's upper tail. */
function logTailDifference(lo: number, hi: number): number {
  const a = logUpperTail(lo), b = logUpperTail(hi);
  return a + Math.log1p(-Math.exp(b - a));
}

/** log P(lo < Z < hi) of a standard normal Z, lo < hi, either end possibly infinite. */
function logNormalInterval(lo: number, hi: number): number {
  if (lo >= 0) return logTailDifference(lo, hi);
  if (hi <= 0) return logTailDifference(-hi, -lo);
  // The interval holds 0: at least P(lo < Z < 0) or P(0 < Z < hi), no cancellation.
  const below = lo === -Infinity ? 0 : Math.exp(logUpperTail(-lo));
  const above = hi === Infinity ? 0 : Math.exp(logUpperTail(hi));
  return Math.log1p(-(below + above));
}

/** log P(bin of x) under N(mean, exp(logScale)^2); see {@link discretizedGaussianLogLikelihood}. */
function logBinProbability(x: number, mean: number, logScale: number): number {
  const inv = Math.exp(-logScale), c = x - mean;
  const lo = x < -EDGE ? -Infinity : (c - HALF_BIN) * inv;
  const hi = x > EDGE ? Infinity : (c + HALF_BIN) * inv;
  return logNormalInterval(lo, hi);
}

/**
 * The log-likelihood, in nats and elementwise, of 8-bit data x scaled to [-1, 1] (256 levels
 * -1 + 2k/255) under a Gaussian N(mean, exp(logScale)^2) discretised to the levels' bins: the
 * probability of [x - 1/255, x + 1/255], with the edge bins open to infinity (below -0.999 the bin
 * is (-inf, x + 1/255], above 0.999 it is [x - 1/255, inf)). Ho et al. 2020 eq. 13; Improved
 * DDPM's `discretized_gaussian_log_likelihood`, with an accurate CDF (see the module notes) and no
 * floor on the probabilities. x is not snapped to the levels: the bin is centred on x as given.
 * `mean` and `logScale` are arrays of x's length or one number for all.
 */
export function discretizedGaussianLogLikelihood(
  x: ArrayLike<number>,
  mean: Values,
  logScale: Values,
): Float64Array {
  const n = lengthOf("discretizedGaussianLogLikelihood", [x, mean, logScale]);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = logBinProbability(x[i], at(mean, i), at(logScale, i));
  return out;
}

/** Images (or any samples) to evaluate: `shape[0]` of them, each of the model's sample shape. */
export interface NllImages {
  /** The values, row-major, each in [-1, 1] (8-bit data as -1 + 2k/255). */
  values: ArrayLike<number>;
  /** [count, ...sampleShape]. */
  shape: readonly number[];
}

/** Options of {@link nll}. */
export interface NllOptions {
  /**
   * The variance of the model's reverse step: "posterior" (betaTilde_t, the "small" one, the
   * default) or "beta" (beta_t, the "large" one), betaTilde_2 at t = 1 for both; or, for a
   * learned-variance model (and its default), "learned": its own, from its v (module notes).
   */
  variance?: BoundVariance;
  /** The weights to use (default "ema" when the model keeps them). */
  weights?: WeightsChoice;
  /** Seed of the noise of x_t (default 0); the result does not depend on the batch size. */
  seed?: number;
  /** Images per network call (default 256); every call is at one t. */
  batchSize?: number;
  /**
   * A quick estimate: the sum over t = 2..T evaluated at this many timesteps, one in each of as
   * many strata of [2, T] that widen geometrically, each term weighted by its stratum's width:
   * the terms fall steeply with t, so even strata would miss the first, largest ones. Default: all
   * T - 1, the exact sum.
   */
  timesteps?: number;
  /** Called after each network call with the calls done and the calls in all. */
  onProgress?: (done: number, total: number) => void;
}

/** The bound's terms in bits per dimension, each averaged over the images. */
export interface NllTerms {
  /** L_T, the prior term KL(q(x_T | x_0) || N(0, I)). */
  prior: number;
  /** sum_{t=2..T} L_{t-1}, the KL terms of the reverse steps. */
  vlb: number;
  /** L_0, minus the discretised decoder's log-likelihood at t = 1. */
  decoder: number;
}

/** What {@link nll} returns. */
export interface NllResult {
  /** The bound, in bits per dimension, averaged over the images: prior + vlb + decoder. */
  bitsPerDim: number;
  /** Its terms. */
  terms: NllTerms;
  /** The bound of each image, in bits per dimension. */
  perImage: Float64Array;
}

/** The checked inputs of {@link variationalBound}. */
export interface BoundInputs {
  /**
   * The model's estimates (x0 clipped to [-1, 1] for the bound as {@link nll} computes it); with
   * variance "learned", a learned-variance denoiser (its estimates carry v).
   */
  denoiser: Denoiser;
  /** Where the network runs. */
  backend: Backend;
  /** The denoiser's schedule. */
  schedule: Schedule;
  /** One sample's shape. */
  sampleShape: readonly number[];
  /** The images: count x sampleShape values. */
  values: ArrayLike<number>;
  /** How many. */
  count: number;
  /** The reverse step's variance. */
  variance: BoundVariance;
  /** Seed of the noise. */
  seed: number;
  /** Images per network call. */
  batchSize: number;
  /** The timesteps of the sum over t = 2..T evaluated, with their weights ({@link boundTimesteps}). */
  timesteps: readonly BoundStep[];
  /** Progress, in network calls. */
  onProgress?: (done: number, total: number) => void;
  /**
   * For a network in other coordinates than x_t = a x0 + s eps: the factor x_t is scaled by
   * before the call at t (a score model's variance-exploding x = x_t / a). Default 1.
   */
  inputScale?: (t: number) => number;
  /**
   * Tests: receives each image's terms in nats, [count, T + 1]: column 0 the prior L_T, column t
   * the term of timestep t (t = 1: the decoder L_0; t >= 2: L_{t-1}, unscaled), 0 where not
   * evaluated.
   */
  terms?: Float64Array;
}

/** A timestep of the sum over t = 2..T and the weight of its term (the timesteps it stands for). */
export interface BoundStep {
  /** The timestep, in [2, T]. */
  t: number;
  /** Its term's weight. */
  weight: number;
}

/**
 * `k` timesteps (1 <= k <= T - 1) that estimate the sum over t = 2..T: [2, T] cut into k strata at
 * e_i = 2 ((T + 1) / 2)^(i / k) (rounded, each at least one timestep wide), each stratum
 * [e_i, e_{i+1}) represented by its geometric middle and weighted by its width. The terms L_{t-1}
 * fall by orders of magnitude over the first timesteps (Nichol & Dhariwal 2021, fig. 2), so the
 * strata are narrow there (one timestep each: exact) and wide at large t. k = T - 1 is every
 * timestep with weight 1.
 */
export function boundTimesteps(T: number, k: number): BoundStep[] {
  const edges = [2];
  for (let i = 1; i < k; i++) {
    const e = Math.round(2 * ((T + 1) / 2) ** (i / k));
    edges.push(Math.min(Math.max(edges[i - 1] + 1, e), T + 1 - (k - i)));
  }
  edges.push(T + 1);
  const out: BoundStep[] = [];
  for (let i = 0; i < k; i++) {
    const lo = edges[i], hi = edges[i + 1] - 1;
    out.push({
      t: Math.min(hi, Math.max(lo, Math.round(Math.sqrt(lo * hi)))),
      weight: hi - lo + 1,
    });
  }
  return out;
}

/**
 * The bound for `inputs` (checked: see {@link nll}), on any {@link Denoiser}: the core of
 * {@link nll}, which builds the denoiser from a model's network.
 */
export async function variationalBound(inputs: BoundInputs): Promise<NllResult> {
  const { denoiser, backend: be, sampleShape, values, count, variance, seed } = inputs;
  const inputScale = inputs.inputScale ?? (() => 1);
  const schedule = inputs.schedule;
  const T = schedule.T, D = sizeOf(sampleShape), blocks = blocksFor(D);
  const { betas, posteriorVariance: pv, posteriorMeanCoef1: c1, posteriorMeanCoef2: c2 } = schedule;
  const learned = variance === "learned";
  if (learned && !denoiser.learnSigma) {
    throw new RangeError(`variance "learned" needs a learned-variance model (learnSigma)`);
  }
  const logPosterior = clippedLogPosteriorVariance(schedule);
  const steps = inputs.timesteps, weights = new Float64Array(T + 1);
  for (const { t, weight } of steps) weights[t] = weight;
  const batch = Math.min(inputs.batchSize, count), batches = Math.ceil(count / batch);
  const totalCalls = batches * (steps.length + 1);
  const prior = new Float64Array(count), vlb = new Float64Array(count);
  const dec = new Float64Array(count);
  // L_T: q(x_T | x_0) = N(sqrt(alphaBar_T) x_0, 1 - alphaBar_T) against N(0, 1).
  const aT = schedule.sqrtAlphasCumprod[T - 1], lvT = Math.log(1 - schedule.alphasCumprod[T - 1]);
  for (let i = 0; i < count; i++) {
    let sum = 0;
    for (let k = i * D; k < (i + 1) * D; k++) sum += kl(aT * values[k], lvT, 0, 0);
    prior[i] = sum;
    if (inputs.terms) inputs.terms[i * (T + 1)] = sum;
  }
  // The decoder's (and t = 1's) variance: betaTilde_2 (see the module notes).
  const logScale1 = 0.5 * Math.log(pv[1]);
  let calls = 0;
  for (let start = 0; start < count; start += batch) {
    const m = Math.min(batch, count - start), n = m * D;
    const x0 = new Float64Array(n), eps = new Float64Array(n), xt = new Float32Array(n);
    for (let k = 0; k < n; k++) x0[k] = values[start * D + k];
    for (const t of [1, ...steps.map((s) => s.t)]) {
      const a = schedule.sqrtAlphasCumprod[t - 1], s = schedule.sqrtOneMinusAlphasCumprod[t - 1];
      for (let j = 0; j < m; j++) {
        const counter = ((start + j) * T + t - 1) * blocks;
        fillNormal(eps.subarray(j * D, (j + 1) * D), { seed, stream: STREAMS.vlb, counter });
      }
      for (let k = 0; k < n; k++) xt[k] = a * x0[k] + s * eps[k];
      const f = inputScale(t);
      be.beginScope();
      const x = tensor(be, f === 1 ? xt : xt.map((v) => v * f), [m, ...sampleShape]);
      const est = noGrad(() => denoiser.estimate(x, t));
      const kept = learned ? [est.x0.storage, est.v!.storage] : [est.x0.storage];
      be.flush();
      be.endScope(kept);
      const x0hat = await be.read(kept[0]), v = learned ? await be.read(kept[1]) : null;
      const k1 = c1[t - 1], k2 = c2[t - 1], logBeta = Math.log(betas[t - 1]);
      // A learned-variance model's log-variance of value k (module notes).
      const lvp = v ? (k: number) => learnedLogVariance(v[k], logBeta, logPosterior[t - 1]) : null;
      for (let j = 0; j < m; j++) {
        let sum = 0;
        if (t === 1) {
          for (let k = j * D; k < (j + 1) * D; k++) {
            const logScale = lvp ? 0.5 * lvp(k) : logScale1;
            sum -= logBinProbability(x0[k], k1 * x0hat[k] + k2 * xt[k], logScale);
          }
          dec[start + j] = sum;
        } else {
          const lvq = Math.log(pv[t - 1]), fixed = variance === "beta" ? logBeta : lvq;
          for (let k = j * D; k < (j + 1) * D; k++) {
            const mq = k1 * x0[k] + k2 * xt[k], mp = k1 * x0hat[k] + k2 * xt[k];
            sum += kl(mq, lvq, mp, lvp ? lvp(k) : fixed);
          }
          vlb[start + j] += weights[t] * sum;
        }
        if (inputs.terms) inputs.terms[(start + j) * (T + 1) + t] = sum;
      }
      for (const st of kept) be.free(st);
      inputs.onProgress?.(++calls, totalCalls);
      if (calls % 20 === 0) await new Promise((r) => setTimeout(r, 0));
    }
  }
  const bits = 1 / (D * Math.LN2), perImage = new Float64Array(count);
  const terms = { prior: 0, vlb: 0, decoder: 0 };
  for (let i = 0; i < count; i++) {
    perImage[i] = (prior[i] + vlb[i] + dec[i]) * bits;
    terms.prior += (prior[i] * bits) / count;
    terms.vlb += (vlb[i] * bits) / count;
    terms.decoder += (dec[i] * bits) / count;
  }
  if (!perImage.every(Number.isFinite)) {
    throw new RangeError("nll: the bound is not finite (the network's output is not finite)");
  }
  const bitsPerDim = perImage.reduce((p, v) => p + v, 0) / count;
  return { bitsPerDim, terms, perImage };
}

/**
 * The negative log-likelihood bound of `images` under `model`, in bits per dimension: the
 * variational bound L of the module notes, each image's x_t drawn once per timestep from q(x_t |
 * x_0) with counter-based noise fixed by (seed, image index, t), and L divided by (dimensions ln 2).
 * Costs T network calls per batch of images (`timesteps` fewer for a quick estimate). A
 * class-conditional model is evaluated unconditionally (its null class): the bound on p(x).
 * Throws an OptionError naming the option for a bad one (images of another shape than the model's
 * samples, values outside [-1, 1], no images), before any work.
 *
 * @example The bound of eight training points under a briefly trained toy model
 * ```ts
 * import { nll, train } from "../../mod.ts";
 *
 * const values = Float32Array.from({ length: 400 }, (_, i) => ((i % 7) - 3) / 4);
 * const model = await train({ data: { values, shape: [200, 2] }, steps: 20 });
 * const points = { values: values.subarray(0, 16), shape: [8, 2] };
 * const { bitsPerDim, terms } = await nll(model, points, { timesteps: 50 });
 * console.log(bitsPerDim > terms.prior); // true
 * ```
 */
export async function nll(
  model: DiffusionModel,
  images: NllImages,
  options: NllOptions = {},
): Promise<NllResult> {
  const shape = model.config.sampleShape, T = model.schedule.T;
  const D = sizeOf(shape);
  if (!images || !Array.isArray(images.shape) || !images.values) {
    throw new OptionError("images must be { values, shape: [count, ...sampleShape] }");
  }
  if (images.shape.slice(1).join() !== shape.join() || images.shape.length !== shape.length + 1) {
    throw new OptionError(
      `images are [${images.shape}], but the model's samples are [${shape}]: pass ` +
        `[count, ${shape.join(", ")}] (is this the right model for these images?)`,
    );
  }
  const count = images.shape[0];
  checkInt("images count (shape[0])", count, 1, MAX_SAMPLES);
  if (images.values.length !== count * D) {
    throw new OptionError(
      `images hold ${images.values.length} values, but their shape [${images.shape}] needs ${
        count * D
      }`,
    );
  }
  for (let k = 0; k < images.values.length; k++) {
    const v = images.values[k];
    if (!(v >= -1 && v <= 1)) {
      throw new OptionError(
        `images must lie in [-1, 1] (8-bit data as -1 + 2k/255), but value ${k} (image ${
          Math.floor(k / D)
        }) is ${v}`,
      );
    }
  }
  const variance = options.variance ?? (model.learnSigma ? "learned" : "posterior");
  const weights = options.weights ?? "ema";
  checkChoice("variance", variance, BOUND_VARIANCES);
  if (variance === "learned" && !model.learnSigma) {
    throw new OptionError(
      `variance "learned" needs a model trained with learnSigma (this one predicts no variance); ` +
        `use "posterior" or "beta"`,
    );
  }
  checkChoice("weights", weights, ["ema", "raw"] as const);
  const seed = options.seed ?? 0, batchSize = options.batchSize ?? 256;
  checkInt("seed", seed, 0);
  checkInt("batchSize", batchSize, 1);
  const k = options.timesteps ?? T - 1;
  checkInt("timesteps", k, 1, T - 1);
  if (options.onProgress !== undefined && typeof options.onProgress !== "function") {
    throw new OptionError("onProgress must be a function (done, total) => void");
  }
  if (!Number.isSafeInteger(count * T * blocksFor(D))) {
    throw new OptionError(`images: ${count} images of ${D} values over T = ${T} are too many`);
  }
  // A score model (objective "dsm") reads x in variance-exploding coordinates, x_t / a.
  const dsm = (model.config as { objective?: string }).objective === "dsm";
  const a = model.schedule.sqrtAlphasCumprod;
  return await variationalBound({
    inputScale: dsm ? (t) => 1 / a[t - 1] : undefined,
    denoiser: model.denoiser(weights, 1),
    backend: model.backend,
    schedule: model.schedule,
    sampleShape: shape,
    values: images.values,
    count,
    variance,
    seed,
    batchSize,
    timesteps: boundTimesteps(T, k),
    onProgress: options.onProgress,
  });
}
