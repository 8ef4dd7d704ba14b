/**
 * What every denoising network offers the diffusion code.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";

/** A denoiser: maps noisy samples x [B, ...] and timesteps t [B] (1..T, as floats) to an output shaped like x. */
export interface Network {
  /** One forward pass. */
  forward(x: Tensor, t: Tensor): Tensor;
}
