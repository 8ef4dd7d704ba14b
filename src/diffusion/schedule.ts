/**
 * Noise schedules as plain data: betas and every table derived from them, in float64.
 *
 * Timesteps are 1-based as in the seeds: t = 1..T, and table index t - 1 holds the value for t.
 *
 * @module
 */

import { MAX_T } from "../limits.ts";

/** Linear betas from `betaStart` (t = 1) to `betaEnd` (t = T), inclusive (Ho et al. 2020). */
export interface LinearScheduleConfig {
  /** The kind. */
  kind: "linear";
  /** Number of diffusion steps, at least 2. */
  T: number;
  /** beta_1, in (0, 1). */
  betaStart: number;
  /** beta_T, in (0, 1). */
  betaEnd: number;
}

/** The cosine schedule of Nichol & Dhariwal (2021): alphaBar(t) = cos²(((t/T + s) / (1 + s)) π/2). */
export interface CosineScheduleConfig {
  /** The kind. */
  kind: "cosine";
  /** Number of diffusion steps, at least 2. */
  T: number;
  /** Offset s (default 0.008). */
  s?: number;
  /** Largest beta (default 0.999). */
  maxBeta?: number;
}

/**
 * The sigmoid schedule (Jabri et al. 2022): alphaBar follows a scaled sigmoid between `start` and
 * `end` with temperature `tau`.
 */
export interface SigmoidScheduleConfig {
  /** The kind. */
  kind: "sigmoid";
  /** Number of diffusion steps, at least 2. */
  T: number;
  /** Left end of the sigmoid's argument (default -3). */
  start?: number;
  /** Right end (default 3). */
  end?: number;
  /** Temperature (default 1). */
  tau?: number;
  /** Largest beta (default 0.999). */
  maxBeta?: number;
}

/**
 * The variance-exploding noise levels of score matching (Song & Ermon 2019, NCSN; seed 001 §3):
 * sigma_t = sigmaMin (sigmaMax / sigmaMin)^((t - 1) / (T - 1)) for t = 1..T, a geometric sequence
 * from sigmaMin (t = 1) up to sigmaMax (t = T), with x_t = x_0 + sigma_t z. They are held as the
 * variance-preserving schedule with the same noise levels, alphaBar_t = 1 / (1 + sigma_t^2)
 * (x_vp = x_ve / sqrt(1 + sigma^2)), so that its sigma_VE = sqrt((1 - alphaBar) / alphaBar) is
 * sigma_t (see {@link geometricSigmas}, src/diffusion/noise_level.ts). The schedule of a model
 * trained with `objective: "dsm"`.
 */
export interface VeScheduleConfig {
  /** The kind. */
  kind: "ve";
  /** Number of noise levels, at least 2. */
  T: number;
  /** The smallest noise level sigma_1, positive and finite. */
  sigmaMin: number;
  /** The largest noise level sigma_T, finite and above sigmaMin. */
  sigmaMax: number;
}

/** A noise schedule's configuration. */
export type ScheduleConfig =
  | LinearScheduleConfig
  | CosineScheduleConfig
  | SigmoidScheduleConfig
  | VeScheduleConfig;

/** A schedule and its derived tables (index t - 1 for timestep t). */
export interface Schedule {
  /** The configuration it was built from. */
  readonly config: ScheduleConfig;
  /** Number of steps. */
  readonly T: number;
  /** beta_t. */
  readonly betas: Float64Array;
  /** alpha_t = 1 - beta_t. */
  readonly alphas: Float64Array;
  /** alphaBar_t = prod_{s<=t} alpha_s. */
  readonly alphasCumprod: Float64Array;
  /** alphaBar_{t-1} (1 for t = 1). */
  readonly alphasCumprodPrev: Float64Array;
  /** sqrt(alphaBar_t). */
  readonly sqrtAlphasCumprod: Float64Array;
  /** sqrt(1 - alphaBar_t). */
  readonly sqrtOneMinusAlphasCumprod: Float64Array;
  /** Variance of q(x_{t-1} | x_t, x_0): beta_t (1 - alphaBar_{t-1}) / (1 - alphaBar_t). */
  readonly posteriorVariance: Float64Array;
  /** Coefficient of x_0 in the posterior mean: beta_t sqrt(alphaBar_{t-1}) / (1 - alphaBar_t). */
  readonly posteriorMeanCoef1: Float64Array;
  /** Coefficient of x_t in the posterior mean: (1 - alphaBar_{t-1}) sqrt(alpha_t) / (1 - alphaBar_t). */
  readonly posteriorMeanCoef2: Float64Array;
}

function checkT(T: number): void {
  if (!Number.isInteger(T) || T < 2 || T > MAX_T) {
    throw new RangeError(`schedule: T must be an integer in [2, ${MAX_T}], got ${T}`);
  }
}

function cosineAlphaBar(u: number, s: number): number {
  return Math.cos(((u + s) / (1 + s)) * Math.PI / 2) ** 2;
}

/** betas from a cumulative product alphaBar(u) on u = t/T, clipped to maxBeta. */
function betasFromAlphaBar(T: number, f: (u: number) => number, maxBeta: number): Float64Array {
  const betas = new Float64Array(T);
  for (let t = 1; t <= T; t++) {
    betas[t - 1] = Math.min(1 - f(t / T) / f((t - 1) / T), maxBeta);
  }
  return betas;
}

/**
 * The geometric noise levels of a "ve" schedule, index t - 1 for t = 1..T: sigma_t = sigmaMin
 * (sigmaMax / sigmaMin)^((t - 1) / (T - 1)), increasing from sigmaMin to sigmaMax (NCSN's
 * sigma_1 > ... > sigma_L in the other order: its level i is t = T + 1 - i). Throws a RangeError
 * naming the bad field.
 */
export function geometricSigmas(config: VeScheduleConfig): Float64Array {
  checkT(config.T);
  const { sigmaMin: lo, sigmaMax: hi, T } = config;
  if (!(typeof lo === "number" && lo > 0 && Number.isFinite(lo))) {
    throw new RangeError(`schedule: sigmaMin must be positive and finite, got ${lo}`);
  }
  if (!(typeof hi === "number" && hi > lo && Number.isFinite(hi))) {
    throw new RangeError(
      `schedule: sigmaMax must be finite and above sigmaMin = ${lo}, got ${hi}`,
    );
  }
  const logLo = Math.log(lo), span = Math.log(hi) - logLo;
  return Float64Array.from({ length: T }, (_, i) => Math.exp(logLo + (span * i) / (T - 1)));
}

/** The betas of a schedule configuration, validated. */
export function makeBetas(config: ScheduleConfig): Float64Array {
  checkT(config.T);
  const T = config.T;
  switch (config.kind) {
    case "linear": {
      const { betaStart: b1, betaEnd: bT } = config;
      for (const [name, b] of [["betaStart", b1], ["betaEnd", bT]] as const) {
        if (!(b > 0 && b < 1)) {
          throw new RangeError(`schedule: ${name} must lie in (0, 1), got ${b}`);
        }
      }
      const betas = new Float64Array(T);
      for (let t = 1; t <= T; t++) betas[t - 1] = b1 + ((t - 1) / (T - 1)) * (bT - b1);
      return betas;
    }
    case "cosine": {
      const s = config.s ?? 0.008, maxBeta = config.maxBeta ?? 0.999;
      if (!(s >= 0)) throw new RangeError(`schedule: cosine offset s must be >= 0, got ${s}`);
      return betasFromAlphaBar(T, (u) => cosineAlphaBar(u, s), maxBeta);
    }
    case "sigmoid": {
      const start = config.start ?? -3, end = config.end ?? 3, tau = config.tau ?? 1;
      const maxBeta = config.maxBeta ?? 0.999;
      if (!(end > start) || !(tau > 0)) {
        throw new RangeError(`schedule: sigmoid needs end > start and tau > 0`);
      }
      const sig = (z: number) => 1 / (1 + Math.exp(-z));
      const vStart = sig(start / tau), vEnd = sig(end / tau);
      const f = (u: number) => (vEnd - sig((u * (end - start) + start) / tau)) / (vEnd - vStart);
      return betasFromAlphaBar(T, f, maxBeta);
    }
    case "ve": {
      // alphaBar_t = 1 / (1 + sigma_t^2), alphaBar_0 = 1: beta_t = 1 - alphaBar_t / alphaBar_{t-1}.
      const sigmas = geometricSigmas(config), betas = new Float64Array(T);
      let prev = 0;
      for (let t = 1; t <= T; t++) {
        const v = sigmas[t - 1] ** 2;
        betas[t - 1] = (v - prev) / (1 + v);
        prev = v;
      }
      return betas;
    }
    default:
      throw new RangeError(
        `schedule: kind must be "linear", "cosine", "sigmoid" or "ve", got ${
          JSON.stringify((config as { kind: unknown }).kind)
        }`,
      );
  }
}

/** Builds the schedule and its derived tables from betas (validated to lie in (0, 1)). */
export function scheduleFromBetas(config: ScheduleConfig, betas: Float64Array): Schedule {
  const T = betas.length;
  for (let i = 0; i < T; i++) {
    if (!(betas[i] > 0 && betas[i] < 1)) {
      throw new RangeError(`schedule: beta at t = ${i + 1} is ${betas[i]}, outside (0, 1)`);
    }
  }
  const mk = () => new Float64Array(T);
  const alphas = mk(), ac = mk(), acPrev = mk(), sac = mk(), s1mac = mk();
  const pv = mk(), c1 = mk(), c2 = mk();
  let prod = 1;
  for (let i = 0; i < T; i++) {
    alphas[i] = 1 - betas[i];
    acPrev[i] = prod;
    prod *= alphas[i];
    ac[i] = prod;
    sac[i] = Math.sqrt(prod);
    s1mac[i] = Math.sqrt(1 - prod);
    pv[i] = (betas[i] * (1 - acPrev[i])) / (1 - ac[i]);
    c1[i] = (betas[i] * Math.sqrt(acPrev[i])) / (1 - ac[i]);
    c2[i] = ((1 - acPrev[i]) * Math.sqrt(alphas[i])) / (1 - ac[i]);
  }
  return {
    config,
    T,
    betas,
    alphas,
    alphasCumprod: ac,
    alphasCumprodPrev: acPrev,
    sqrtAlphasCumprod: sac,
    sqrtOneMinusAlphasCumprod: s1mac,
    posteriorVariance: pv,
    posteriorMeanCoef1: c1,
    posteriorMeanCoef2: c2,
  };
}

/** Builds a schedule from its configuration. */
export function makeSchedule(config: ScheduleConfig): Schedule {
  return scheduleFromBetas(config, makeBetas(config));
}

/**
 * The schedule restricted to a subsequence of timesteps (Nichol & Dhariwal's respacing): for
 * timesteps tau_1 < ... < tau_S, beta'_i = 1 - alphaBar(tau_i) / alphaBar(tau_{i-1}), so that
 * ancestral sampling in S steps follows the same marginals q(x_tau | x_0). `steps` evenly spaced
 * timesteps from 1 to T, or the ascending `timesteps` given.
 * Returns the new schedule and the original timestep of each new step.
 */
export function respace(
  schedule: Schedule,
  steps: number | readonly number[],
): { schedule: Schedule; timesteps: number[] } {
  const T = schedule.T;
  let timesteps: number[];
  if (typeof steps === "number") {
    if (!Number.isInteger(steps) || steps < 1 || steps > T) {
      throw new RangeError(`sampling steps must be an integer in [1, ${T}], got ${steps}`);
    }
    timesteps = [];
    for (let i = 0; i < steps; i++) {
      const t = steps === 1 ? T : Math.round(1 + (i * (T - 1)) / (steps - 1));
      if (timesteps[timesteps.length - 1] !== t) timesteps.push(t);
    }
  } else {
    timesteps = [...steps];
    timesteps.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 1 || t > T || (i > 0 && t <= timesteps[i - 1])) {
        throw new RangeError(`respace: timesteps must ascend within 1..${T}, got [${steps}]`);
      }
    });
  }
  const betas = new Float64Array(timesteps.length);
  let prev = 1;
  timesteps.forEach((t, i) => {
    const ac = schedule.alphasCumprod[t - 1];
    betas[i] = 1 - ac / prev;
    prev = ac;
  });
  return { schedule: scheduleFromBetas(schedule.config, betas), timesteps };
}
