/**
 * The model as every sampler sees it: at any model time t in [1, T], the network's raw output and,
 * from that one call, the estimates of the clean sample x0 and of the noise eps, and the score
 * grad log p_t(x) = -eps / sigma_t (Song et al. 2021, eq. 6's denoising-score-matching link between
 * eps-prediction and the score). Every prediction type (epsilon, x0, v) and every schedule goes
 * through here, so a sampler is written once.
 *
 * With `clip` set, x0 is clamped to [-clip, clip] and eps recomputed from it (eps = (x - a x0) / s),
 * so that both estimates stay consistent (diffusers' `clip_sample`).
 *
 * A score model (objective "dsm", src/diffusion/score_matching.ts) is read in its own coordinates,
 * the variance-exploding x = x0 + sigma_t z: its level is a = 1, s = sigma_VE(t), and its output is
 * sigma_t times the score, so eps = -output, x0 = x + sigma_t output and the score is
 * output / sigma_t: the same -eps / s as for every other model.
 *
 * A learned-variance model (`learnSigma`, src/diffusion/learned_variance.ts) outputs [B, 2C, ...]:
 * the denoiser splits it here, once, along axis 1. `output` and every estimate are the first C
 * channels (its eps prediction), so every sampler runs on it unchanged; the last C, the raw
 * variance output v, ride along as the estimate's `v` (and {@link Denoiser.outputs}) for the one
 * sampler that reads them, the ancestral DDPM step with `variance: "learned"`.
 *
 * @module
 */

import { affine, combine } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor.ts";
import { type Level, NoiseLevels } from "./noise_level.ts";
import { predictEpsilon, type Prediction, predictX0 } from "./parameterization.ts";
import type { Schedule } from "./schedule.ts";
import type { ObjectiveKind } from "./score_matching.ts";
import { splitLearnedOutput } from "./learned_variance.ts";

/**
 * The network as a sampler calls it: its raw output for x at model time t (real, in [1, T]); for a
 * learned-variance model [B, 2C, ...], the prediction then v along axis 1.
 */
export type DenoiseFn = (x: Tensor, t: number) => Tensor;

/** One network call's output, split: the prediction, and a learned-variance model's v. */
export interface DenoiserOutputs {
  /** The prediction (eps, x0 or v-prediction per the model's type), shaped like x. */
  readonly output: Tensor;
  /**
   * A learned-variance model's raw variance output v, shaped like x (the step's log-variance is
   * frac log beta_t + (1 - frac) log betaTilde_t, frac = (v + 1) / 2); null for other models.
   */
  readonly v: Tensor | null;
}

/** What one network call at model time t says about x. */
export interface Estimate {
  /** alpha_t and sigma_t at the call's time (1 and sigma_VE for a score model). */
  readonly level: Level;
  /** The network's prediction (for a learned-variance model: its first half, eps). */
  readonly output: Tensor;
  /** A learned-variance model's variance output v (the second half), else null. */
  readonly v: Tensor | null;
  /** The clean-sample estimate (clamped with `clip`). */
  readonly x0: Tensor;
  /** The noise estimate (consistent with x0). */
  readonly eps: Tensor;
  /** The score, -eps / sigma_t. */
  readonly score: Tensor;
}

class LazyEstimate implements Estimate {
  readonly level: Level;
  readonly output: Tensor;
  readonly v: Tensor | null;
  readonly #x: Tensor;
  readonly #d: Denoiser;
  #x0: Tensor | null = null;
  #eps: Tensor | null = null;

  constructor(d: Denoiser, x: Tensor, outputs: DenoiserOutputs, level: Level) {
    this.#d = d;
    this.#x = x;
    this.output = outputs.output;
    this.v = outputs.v;
    this.level = level;
  }

  /** eps straight from the output (before any clamp of x0). */
  #rawEps(): Tensor {
    return this.#d.objective === "dsm"
      ? affine(this.output, -1)
      : predictEpsilon(this.#d.prediction, this.output, this.#x, this.level);
  }

  get x0(): Tensor {
    if (!this.#x0) {
      const c = this.#d.clip;
      this.#x0 = this.#d.objective === "dsm"
        ? predictX0("epsilon", this.#rawEps(), this.#x, this.level, c)
        : predictX0(this.#d.prediction, this.output, this.#x, this.level, c);
    }
    return this.#x0;
  }

  get eps(): Tensor {
    if (!this.#eps) {
      const l = this.level;
      this.#eps = this.#d.clip === null
        ? this.#rawEps()
        : combine([[this.#x, 1], [this.x0, -l.a]], { scale: 1 / l.s });
    }
    return this.#eps;
  }

  get score(): Tensor {
    return affine(this.eps, -1 / this.level.s);
  }
}

/** A network with its schedule and prediction type: estimates and scores at any model time. */
export class Denoiser {
  /** The schedule's noise levels at real model times. */
  readonly levels: NoiseLevels;
  /** What the network predicts (unused by a score model). */
  readonly prediction: Prediction;
  /** The x0 clamp, or null. */
  readonly clip: number | null;
  /**
   * How the network was trained: "ddpm" (x_t = a x0 + s eps, output per `prediction`) or "dsm" (a
   * score model: x = x0 + sigma_VE z, output sigma_VE score; see the module's comment).
   */
  readonly objective: ObjectiveKind;
  /** True for a learned-variance model: the raw output is split into the prediction and v. */
  readonly learnSigma: boolean;
  readonly #model: DenoiseFn;

  /**
   * `model` over `schedule`, predicting `prediction` (or, with `objective` "dsm", a score model
   * over the schedule's variance-exploding levels); x0 clamped to [-clip, clip] when set. With
   * `learnSigma` the model's output holds the prediction and v along axis 1 (twice the channels).
   */
  constructor(
    model: DenoiseFn,
    schedule: Schedule,
    prediction: Prediction,
    clip: number | null,
    objective: ObjectiveKind = "ddpm",
    learnSigma = false,
  ) {
    this.#model = model;
    this.levels = new NoiseLevels(schedule);
    this.prediction = prediction;
    this.clip = clip;
    this.objective = objective;
    this.learnSigma = learnSigma;
  }

  /** The level at model time t: (alpha_t, sigma_t), or (1, sigma_VE(t)) for a score model. */
  level(t: number): Level {
    return this.objective === "dsm" ? { a: 1, s: this.levels.sigmaVE(t) } : this.levels.level(t);
  }

  /**
   * The network's prediction at model time t (one network call): its raw output, or a
   * learned-variance model's first half (eps).
   */
  output(x: Tensor, t: number): Tensor {
    return this.outputs(x, t).output;
  }

  /** The network's output at model time t, split: the prediction and v (one network call). */
  outputs(x: Tensor, t: number): DenoiserOutputs {
    const raw = this.#model(x, t);
    return this.learnSigma ? splitLearnedOutput(raw) : { output: raw, v: null };
  }

  /** The estimates of one network call at model time t. */
  estimate(x: Tensor, t: number): Estimate {
    return new LazyEstimate(this, x, this.outputs(x, t), this.level(t));
  }

  /**
   * The score grad log p_t(x) = -eps(x, t) / sigma_t (one network call); for a score model,
   * output / sigma_VE(t), at x in its variance-exploding coordinates.
   */
  score(x: Tensor, t: number): Tensor {
    return this.estimate(x, t).score;
  }
}
