/**
 * The denoising objective, apart from the training loop (lucidrains' `p_losses`): noise a batch of
 * clean samples x0 to x_t = sqrt(alphaBar_t) x0 + sqrt(1 - alphaBar_t) eps in closed form, ask the
 * network for its prediction (epsilon, x0 or v), weight prediction and target per sample, and take
 * the regression loss between them (Ho et al. 2020, eq. 14, with the weighting and loss as
 * configured).
 *
 * The weights are square roots applied to both sides, so that the mean squared error is weighted
 * by their squares: min-SNR-gamma's min(SNR_t, gamma) in x0 units (Hang et al. 2023), or, with
 * importance-sampled timesteps, the caller's per-sample sqrt(lambda_t / (T p_t)).
 *
 * With `learnSigma` the network also outputs the variance channels v, and the loss is Improved
 * DDPM's hybrid L_simple + lambda L_vlb (Nichol & Dhariwal 2021, §3.1, eq. 16): the loss above on
 * the eps channels, plus lambda T L_t per sample (src/diffusion/learned_variance.ts), L_t from a
 * stop-gradient copy of eps so that it trains the variance alone. Min-SNR weighting and the
 * importance sampler's statistics stay on the simple loss; with importance-sampled timesteps the
 * L_vlb term takes the caller's 1 / (T p_t) (`vlbWeights`), so the loss stays an unbiased estimate
 * of the uniform-t hybrid loss.
 *
 * @module
 */

import type { Backend, LossKind } from "../backend.ts";
import type { ForwardContext, Network } from "../models/network.ts";
import { add, affine, mul, sub } from "../ops/elementwise.ts";
import { regressionLoss } from "../ops/loss.ts";
import { mean } from "../ops/reduce.ts";
import { gather, reshape } from "../ops/shape.ts";
import type { Tensor } from "../tensor.ts";
import { DeviceSchedule, qSample } from "./forward.ts";
import { HYBRID_VLB_WEIGHT, HybridVlbTerm, splitLearnedOutput } from "./learned_variance.ts";
import { type Prediction, predictionTarget } from "./parameterization.ts";
import type { Schedule } from "./schedule.ts";

/** What the objective is: the prediction, the loss and its weighting. */
export interface ObjectiveConfig {
  /** What the network predicts. */
  prediction: Prediction;
  /** The regression loss. */
  loss: LossKind;
  /** Huber's threshold. */
  huberDelta: number;
  /** Min-SNR-gamma weighting's gamma; null for none. Needs the "l2" loss. */
  minSnrGamma: number | null;
  /**
   * Learned variances: the network outputs eps and v, and the loss is the hybrid
   * L_simple + lambda L_vlb (needs prediction "epsilon"). Default false.
   */
  learnSigma?: boolean;
  /** lambda of the hybrid loss (default {@link HYBRID_VLB_WEIGHT}, 0.001). */
  vlbWeight?: number;
}

/** One batch's terms of the objective. */
export interface ObjectiveTerms {
  /** The mean loss (one element), differentiable. */
  loss: Tensor;
  /** Each sample's mean weighted squared error [B], when asked for (importance sampling). */
  perSample: Tensor | null;
  /** With `learnSigma`: each sample's L_t [B] in bits per dimension (unweighted); else null. */
  vlb: Tensor | null;
}

/** Optional inputs of one batch's loss. */
export interface ObjectiveBatchOptions {
  /** How the forward pass runs (training: dropout on, with its draws). */
  ctx?: ForwardContext;
  /**
   * Per-sample square-root weights [B], replacing min-SNR's table (the importance sampler's
   * sqrt(lambda_t / (T p_t)), which includes min-SNR's lambda).
   */
  rootWeights?: Tensor | null;
  /** Also return each sample's mean weighted squared error. */
  perSample?: boolean;
  /** A conditional network's class labels [B] (the null class where dropped). */
  labels?: Tensor;
  /**
   * With `learnSigma`: per-sample weights [B] of the L_vlb term (importance sampling's
   * 1 / (T p_t)); default 1.
   */
  vlbWeights?: Tensor | null;
}

/** The denoising objective over one schedule, its tables resident on the backend. */
export class DenoisingObjective {
  /** The configuration. */
  readonly config: ObjectiveConfig;
  /** The schedule's tables on the backend. */
  readonly schedule: DeviceSchedule;
  readonly #minSnrRoots: Tensor | null;
  readonly #vlb: HybridVlbTerm | null;

  /** The objective `config` over `schedule`, with its tables uploaded to `backend`. */
  constructor(backend: Backend, schedule: Schedule, config: ObjectiveConfig) {
    if (config.learnSigma && config.prediction !== "epsilon") {
      throw new RangeError(
        `learnSigma needs prediction "epsilon", got ${JSON.stringify(config.prediction)}`,
      );
    }
    this.config = config;
    this.schedule = new DeviceSchedule(backend, schedule);
    this.#vlb = config.learnSigma ? new HybridVlbTerm(backend, schedule) : null;
    this.#minSnrRoots = config.minSnrGamma === null
      ? null
      : this.schedule.minSnrRootWeights(config.prediction, config.minSnrGamma);
  }

  /**
   * The loss of `net` on clean samples x0 [B, ...] noised at timesteps t [B] (integral floats in
   * 1..T) with standard normal noise eps (shaped like x0). With `learnSigma` the hybrid loss
   * L_simple + lambda T mean_b(w_b L_t(b)) (w: `vlbWeights`, or 1).
   */
  loss(
    net: Network,
    x0: Tensor,
    t: Tensor,
    eps: Tensor,
    options: ObjectiveBatchOptions = {},
  ): ObjectiveTerms {
    const c = this.config;
    const lvl = this.schedule.level(t, x0.shape.length);
    const xt = qSample(x0, eps, lvl);
    const target = predictionTarget(c.prediction, x0, eps, lvl);
    const out = net.forward(xt, t, options.ctx, options.labels);
    const split = this.#vlb ? splitLearnedOutput(out) : null;
    let pred = split ? split.output : out, goal = target;
    const roots = options.rootWeights ?? null;
    if (this.#minSnrRoots || roots) {
      const w = reshape(roots ?? gather(this.#minSnrRoots!, t), lvl.a.shape);
      pred = mul(w, pred);
      goal = mul(w, target);
    }
    let loss = regressionLoss(c.loss, pred, goal, c.huberDelta);
    let vlb: Tensor | null = null;
    if (split) {
      vlb = this.#vlb!.perSample({ x0, xt, t, eps: split.output, v: split.v, level: lvl });
      const w = options.vlbWeights ?? null;
      const lambda = c.vlbWeight ?? HYBRID_VLB_WEIGHT;
      loss = add(loss, affine(mean(w ? mul(vlb, w) : vlb), lambda * this.schedule.schedule.T));
    }
    if (!options.perSample) return { loss, perSample: null, vlb };
    const diff = sub(pred, goal);
    const perSample = mean(mul(diff, diff), diff.shape.slice(1).map((_, i) => i + 1));
    return { loss, perSample, vlb };
  }
}
