/**
 * Classifier-free guidance (Ho & Salimans 2022): a class-conditional network trained with label
 * dropout predicts both with the class c and with the null class; sampling follows
 *
 *   out = out_uncond + w (out_cond - out_uncond),
 *
 * w = 0 the unconditional model, w = 1 the conditional one, w > 1 sharper and more typical of the
 * class at the cost of variety. The combination is taken on the network's raw output: eps, x0 and
 * v are each affine in it with the same x, so guiding any one of them is guiding all three. Both
 * predictions come from one network call on the doubled batch [x; x] with labels [c; null].
 *
 * Guidance rescale (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps Are
 * Flawed", eq. 15-16) scales each sample's guided output to the standard deviation of its
 * conditional one and mixes: out <- phi out (std_cond / std_guided) + (1 - phi) out, which tames the
 * over-exposure of large w.
 *
 * A learned-variance network's output (the prediction and v along axis 1) is split first: only
 * the prediction is guided (and rescaled), and v is the conditional half's, as Improved DDPM's and
 * GLIDE's guided sampling take it (GLIDE's `model_fn` guides eps and keeps the conditional
 * variance output); the result is joined back, so the Denoiser splits it as any output.
 *
 * @module
 */

import { affine, combine, div, mul, sqrt, sub, unary } from "../ops/elementwise.ts";
import { mean } from "../ops/reduce.ts";
import { concat, slice } from "../ops/shape.ts";
import { type Tensor, tensor } from "../tensor.ts";
import type { Network } from "../models/network.ts";
import { joinLearnedOutput, splitLearnedOutput } from "./learned_variance.ts";

/** How a conditional network is steered at sampling time. */
export interface Guidance {
  /** The guidance scale w (0: unconditional, 1: conditional). */
  readonly scale: number;
  /** Guidance rescale phi in [0, 1] (0: none). */
  readonly rescale: number;
}

/** Each sample's standard deviation over all axes but the first, shaped [B, 1, ...]. */
function perSampleStd(x: Tensor): Tensor {
  const axes = x.shape.slice(1).map((_, i) => i + 1);
  const centred = sub(x, mean(x, axes, true));
  return sqrt(mean(unary("square", centred), axes, true));
}

/**
 * The guided output of `net` for x [B, ...] at timesteps t [B] toward `labels` [B], from one call
 * on the doubled batch (the second half with the null class `classes`). With `learnSigma` the
 * network's output is [prediction; v] along axis 1: the prediction is guided, v is the
 * conditional half's, and the result has the same layout.
 */
export function guidedOutput(
  net: Network,
  inputs: { x: Tensor; t: Tensor; labels: Tensor },
  classes: number,
  guidance: Guidance,
  learnSigma = false,
): Tensor {
  const { x, t, labels } = inputs, m = x.shape[0];
  const none = tensor(x.backend, new Float32Array(m).fill(classes), [m]);
  const out = net.forward(
    concat([x, x], 0),
    concat([t, t], 0),
    undefined,
    concat([labels, none], 0),
  );
  const condRaw = slice(out, 0, 0, m), uncondRaw = slice(out, 0, m, m);
  const condSplit = learnSigma ? splitLearnedOutput(condRaw) : null;
  const cond = condSplit ? condSplit.output : condRaw;
  const uncond = learnSigma ? splitLearnedOutput(uncondRaw).output : uncondRaw;
  // uncond + w (cond - uncond), the difference scaled as one kernel, the sum as another.
  const delta = combine([[cond, 1], [uncond, -1]], { scale: guidance.scale });
  const guided = rescaled(cond, combine([[uncond, 1], [delta, 1]]), guidance);
  return condSplit ? joinLearnedOutput(guided, condSplit.v) : guided;
}

/** Guidance rescale of `guided` toward the spread of `cond` (none at phi = 0). */
function rescaled(cond: Tensor, guided: Tensor, guidance: Guidance): Tensor {
  const phi = guidance.rescale;
  if (phi === 0) return guided;
  // A tiny floor keeps an all-constant output (std 0) finite.
  const ratio = div(perSampleStd(cond), affine(perSampleStd(guided), 1, 1e-12));
  return combine([[mul(guided, ratio), phi], [guided, 1 - phi]]);
}
