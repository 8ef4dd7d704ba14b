/**
 * The sinusoidal timestep embedding (Vaswani et al. 2017; as in the PyTorch twin): frequencies
 * exp(-ln(10000) i / (half - 1)) for i < half, output [sin(t f), cos(t f)].
 *
 * @module
 */

import { cos, mul, sin } from "../ops/elementwise.ts";
import { concat, reshape } from "../ops/shape.ts";
import { type Tensor, tensor } from "../tensor.ts";

/** Embeds timesteps t [B] into [B, dim] (dim even, at least 4). */
export function timestepEmbedding(t: Tensor, dim: number): Tensor {
  if (dim % 2 !== 0 || dim < 4) {
    throw new RangeError(`embedding size must be even and >= 4, got ${dim}`);
  }
  const half = dim / 2;
  const freqs = new Float64Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(10000) * i) / (half - 1));
  const args = mul(reshape(t, [t.size, 1]), tensor(t.backend, freqs, [1, half]));
  return concat([sin(args), cos(args)], 1);
}
