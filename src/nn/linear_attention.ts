/**
 * Linear attention (Shen et al. 2018, "Efficient attention"), the seed's `LinearAttention` inside
 * its `Residual(GNorm(...))` wrapping (../shared/seeds/004): x + GroupNorm(1)(1x1 conv(A)), where A
 * is computed from GroupNorm(1)(x) by a 1x1 convolution to q, k, v (3c channels, laid out
 * [3, heads, c/heads] like the full attention block), per head
 *
 *   q <- softmax of q over the feature axis (per position), scaled by (c/heads)^-1/2,
 *   k <- softmax of k over the positions (per feature),
 *   context = k vᵀ  [d x d],  A = contextᵀ q  [d x positions],
 *
 * which costs time and memory linear in the number of positions. The keys' softmax runs over the
 * positions as in lucidrains' original (the seed's listing writes `dim=-2` for both, a slip that
 * would make the keys' normalisation the queries'). Heads split the c channels as in the full
 * attention block (d = c/heads), instead of the seed's fixed 32 channels a head.
 *
 * @module
 */

import { add, affine } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { softmax } from "../ops/norm.ts";
import { permute, reshape, slice } from "../ops/shape.ts";
import type { Tensor } from "../tensor.ts";
import { Conv2d } from "./conv.ts";
import { GroupNorm } from "./groupnorm.ts";
import type { ParamSource } from "./params.ts";

/** Options of a {@link LinearAttention} block. */
export interface LinearAttentionOptions {
  /** Number of heads; divides the channels (default 4). */
  heads?: number;
}

/** A linear attention block bound to its parameters. */
export class LinearAttention {
  /** The input normalisation, GroupNorm(1). */
  readonly norm: GroupNorm;
  /** The 1x1 convolution to q, k, v. */
  readonly qkv: Conv2d;
  /** The output 1x1 convolution. */
  readonly out: Conv2d;
  /** The output normalisation, GroupNorm(1). */
  readonly outNorm: GroupNorm;
  /** Number of heads. */
  readonly heads: number;

  /**
   * Declares the parameters of the block `name` over `channels`: `name.n` (the input
   * GroupNorm(1)), `name.qkv` (1x1 conv to 3c), `name.o` (1x1 conv), `name.on` (the output
   * GroupNorm(1)).
   */
  constructor(
    params: ParamSource,
    name: string,
    channels: number,
    options: LinearAttentionOptions = {},
  ) {
    const c = channels;
    this.norm = new GroupNorm(params, `${name}.n`, c, 1);
    this.qkv = new Conv2d(params, `${name}.qkv`, c, 3 * c, 1);
    this.out = new Conv2d(params, `${name}.o`, c, c, 1);
    this.outNorm = new GroupNorm(params, `${name}.on`, c, 1);
    this.heads = options.heads ?? 4;
    if (!Number.isInteger(this.heads) || this.heads < 1 || c % this.heads !== 0) {
      throw new RangeError(`${name}: ${c} channels do not split into ${this.heads} heads`);
    }
  }

  /** x [b, c, h, w] -> x + linear attention(x), same shape. */
  forward(x: Tensor): Tensor {
    const [b, c, hh, ww] = x.shape;
    const hw = hh * ww, d = c / this.heads;
    // [b, 3c, h, w] viewed as [b, 3, heads, d, hw]: q, k, v are the three slices of axis 1.
    const qkv = reshape(this.qkv.forward(this.norm.forward(x)), [b, 3, c * hw]);
    const part = (i: number) => reshape(slice(qkv, 1, i, 1), [b * this.heads, d, hw]);
    // qT [bh, hw, d]: the queries' softmax over the d features of each position.
    const qT = softmax(permute(part(0), [0, 2, 1]));
    const k = softmax(part(1)), v = part(2);
    // context[d, e] = sum_n k[d, n] v[e, n]; out[e, n] = sum_d context[d, e] q[d, n] / sqrt(d).
    const context = matmul(k, v, { transB: true });
    const o = affine(matmul(context, qT, { transA: true, transB: true }), 1 / Math.sqrt(d));
    return add(x, this.outNorm.forward(this.out.forward(reshape(o, [b, c, hh, ww]))));
  }
}
