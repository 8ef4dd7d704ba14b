/**
 * What every denoising network offers the diffusion code.
 *
 * @module
 */

import type { RandomDraw } from "../backend.ts";
import type { Tensor } from "../tensor.ts";

/**
 * How a forward pass runs: whether it is a training step (dropout active) and where its random
 * fills draw from. `train` passes one per step; sampling and evaluation pass none, so their forward
 * passes are deterministic.
 */
export interface ForwardContext {
  /** True in a training step; false (or no context at all) turns dropout off. */
  readonly training: boolean;
  /**
   * Where the `site`-th random fill of this forward pass (0, 1, 2, ... in the order the network
   * makes them), of `size` values, draws from. Training derives it from (seed, step, site) alone,
   * so a step's draws never depend on earlier steps and resuming reproduces them.
   */
  draw(site: number, size: number): RandomDraw;
}

/**
 * A denoiser: maps noisy samples x [B, ...] and timesteps t [B] (1..T, as floats) to an output
 * shaped like x; a conditional one (configured with `classes`) also takes class labels. A network
 * configured with `learnSigma` returns twice the channels, [B, 2 C, ...] for x [B, C, ...]: the
 * prediction in the first C, the raw variance output v in the last C (Improved DDPM's
 * `torch.split(model_output, C, dim=1)`; see src/diffusion/learned_variance.ts).
 */
export interface Network {
  /**
   * One forward pass; `ctx` only matters to networks with dropout (see {@link ForwardContext}).
   * `labels` [B] (integral floats in [0, classes], `classes` meaning "no class") condition a
   * conditional network, which without them predicts unconditionally; an unconditional network
   * throws a RangeError when given labels.
   */
  forward(x: Tensor, t: Tensor, ctx?: ForwardContext, labels?: Tensor): Tensor;
}

/** Throws unless a network configured with `classes` (absent: unconditional) may take `labels`. */
export function checkLabels(classes: number | undefined, labels: Tensor | undefined): void {
  if (labels && !classes) {
    throw new RangeError("the network is unconditional (no classes): it takes no labels");
  }
}

/**
 * Throws a RangeError naming the field unless a network configuration's `learnSigma` is absent or
 * `true` (it is written only when set, so that older configurations stay as they were).
 */
export function checkLearnSigma(prefix: string, learnSigma: unknown): void {
  if (learnSigma !== undefined && learnSigma !== true) {
    throw new RangeError(
      `${prefix}: learnSigma must be true or absent, got ${JSON.stringify(learnSigma)}`,
    );
  }
}

/** The output's first-axis multiplier of a configuration: 2 with `learnSigma`, else 1. */
export function outputFactor(config: { learnSigma?: true }): 1 | 2 {
  return config.learnSigma ? 2 : 1;
}
