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
 * @module
 */

import { add, affine, clamp } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor.ts";
import { type Level, NoiseLevels } from "./noise_level.ts";
import { predictEpsilon, type Prediction, predictX0 } from "./parameterization.ts";
import type { Schedule } from "./schedule.ts";
import type { ObjectiveKind } from "./score_matching.ts";

/** The network as a sampler calls it: its raw output for x at model time t (real, in [1, T]). */
export type DenoiseFn = (x: Tensor, t: number) => Tensor;

/** What one network call at model time t says about x. */
export interface Estimate {
  /** alpha_t and sigma_t at the call's time (1 and sigma_VE for a score model). */
  readonly level: Level;
  /** The network's raw output. */
  readonly output: Tensor;
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
  readonly #x: Tensor;
  readonly #d: Denoiser;
  #x0: Tensor | null = null;
  #eps: Tensor | null = null;

  constructor(d: Denoiser, x: Tensor, output: Tensor, level: Level) {
    this.#d = d;
    this.#x = x;
    this.output = output;
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
      const x0 = this.#d.objective === "dsm"
        ? predictX0("epsilon", this.#rawEps(), this.#x, this.level)
        : predictX0(this.#d.prediction, this.output, this.#x, this.level);
      const c = this.#d.clip;
      this.#x0 = c === null ? x0 : clamp(x0, -c, c);
    }
    return this.#x0;
  }

  get eps(): Tensor {
    if (!this.#eps) {
      const l = this.level;
      this.#eps = this.#d.clip === null
        ? this.#rawEps()
        : affine(add(this.#x, affine(this.x0, -l.a)), 1 / l.s);
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
  readonly #model: DenoiseFn;

  /**
   * `model` over `schedule`, predicting `prediction` (or, with `objective` "dsm", a score model
   * over the schedule's variance-exploding levels); x0 clamped to [-clip, clip] when set.
   */
  constructor(
    model: DenoiseFn,
    schedule: Schedule,
    prediction: Prediction,
    clip: number | null,
    objective: ObjectiveKind = "ddpm",
  ) {
    this.#model = model;
    this.levels = new NoiseLevels(schedule);
    this.prediction = prediction;
    this.clip = clip;
    this.objective = objective;
  }

  /** The level at model time t: (alpha_t, sigma_t), or (1, sigma_VE(t)) for a score model. */
  level(t: number): Level {
    return this.objective === "dsm" ? { a: 1, s: this.levels.sigmaVE(t) } : this.levels.level(t);
  }

  /** The network's raw output at model time t (one network call). */
  output(x: Tensor, t: number): Tensor {
    return this.#model(x, t);
  }

  /** The estimates of one network call at model time t. */
  estimate(x: Tensor, t: number): Estimate {
    return new LazyEstimate(this, x, this.#model(x, t), this.level(t));
  }

  /**
   * The score grad log p_t(x) = -eps(x, t) / sigma_t (one network call); for a score model,
   * output / sigma_VE(t), at x in its variance-exploding coordinates.
   */
  score(x: Tensor, t: number): Tensor {
    return this.estimate(x, t).score;
  }
}
