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
 * @module
 */

import { add, affine, div, mul, sqrt, sub, unary } from "../ops/elementwise.ts";
import { mean } from "../ops/reduce.ts";
import { concat, slice } from "../ops/shape.ts";
import { type Tensor, tensor } from "../tensor.ts";
import type { Network } from "../models/network.ts";

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
 * on the doubled batch (the second half with the null class `classes`).
 */
export function guidedOutput(
  net: Network,
  inputs: { x: Tensor; t: Tensor; labels: Tensor },
  classes: number,
  guidance: Guidance,
): Tensor {
  const { x, t, labels } = inputs, m = x.shape[0];
  const none = tensor(x.backend, new Float32Array(m).fill(classes), [m]);
  const out = net.forward(
    concat([x, x], 0),
    concat([t, t], 0),
    undefined,
    concat([labels, none], 0),
  );
  const cond = slice(out, 0, 0, m), uncond = slice(out, 0, m, m);
  const guided = add(uncond, affine(sub(cond, uncond), guidance.scale));
  const phi = guidance.rescale;
  if (phi === 0) return guided;
  // A tiny floor keeps an all-constant output (std 0) finite.
  const ratio = div(perSampleStd(cond), affine(perSampleStd(guided), 1, 1e-12));
  return add(affine(mul(guided, ratio), phi), affine(guided, 1 - phi));
}
