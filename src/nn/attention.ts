/**
 * Multi-head self-attention over the pixels of a feature map, with a residual connection: the
 * PyTorch twin's `Attn`. GroupNorm -> 1x1 convolution to q, k, v (3c channels, laid out
 * [3, heads, c/heads]) -> per head softmax(qᵀk / sqrt(d)) over the keys -> v aᵀ -> 1x1 convolution
 * -> added to the input. Built from differentiable ops (matmul, softmax, reshape, slice), so
 * autograd needs nothing more.
 *
 * @module
 */

import { add, affine } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { softmax } from "../ops/norm.ts";
import { reshape, slice } from "../ops/shape.ts";
import type { Tensor } from "../tensor.ts";
import { Conv2d } from "./conv.ts";
import { GroupNorm } from "./groupnorm.ts";
import type { ParamSource } from "./params.ts";

/** Options of an {@link Attention} block. */
export interface AttentionOptions {
  /** Number of heads; divides the channels (default 4). */
  heads?: number;
  /** Groups of the GroupNorm (default 8). */
  groups?: number;
}

/** An attention block bound to its parameters. */
export class Attention {
  /** The input normalisation. */
  readonly norm: GroupNorm;
  /** The 1x1 convolution to q, k, v. */
  readonly qkv: Conv2d;
  /** The output 1x1 convolution. */
  readonly out: Conv2d;
  /** Number of heads. */
  readonly heads: number;

  /**
   * Declares the parameters of the block `name` over `channels`, in the twin's order: `name.n`
   * (GroupNorm), `name.qkv` (1x1 conv to 3c), `name.o` (1x1 conv).
   */
  constructor(
    params: ParamSource,
    name: string,
    channels: number,
    options: AttentionOptions = {},
  ) {
    const c = channels;
    this.norm = new GroupNorm(params, `${name}.n`, c, options.groups ?? 8);
    this.qkv = new Conv2d(params, `${name}.qkv`, c, 3 * c, 1);
    this.out = new Conv2d(params, `${name}.o`, c, c, 1);
    this.heads = options.heads ?? 4;
    if (!Number.isInteger(this.heads) || this.heads < 1 || c % this.heads !== 0) {
      throw new RangeError(`${name}: ${c} channels do not split into ${this.heads} heads`);
    }
  }

  /** x [b, c, h, w] -> x + attention(x), same shape. */
  forward(x: Tensor): Tensor {
    const [b, c, hh, ww] = x.shape;
    const hw = hh * ww, d = c / this.heads;
    // [b, 3c, h, w] viewed as [b, 3, heads, d, hw]: q, k, v are the three slices of axis 1.
    const qkv = reshape(this.qkv.forward(this.norm.forward(x)), [b, 3, c * hw]);
    const part = (i: number) => reshape(slice(qkv, 1, i, 1), [b * this.heads, d, hw]);
    const q = part(0), k = part(1), v = part(2);
    // a[i, j] = softmax_j(sum_d q[d, i] k[d, j] / sqrt(d)).
    const a = softmax(affine(matmul(q, k, { transA: true }), 1 / Math.sqrt(d)));
    // out[d, i] = sum_j v[d, j] a[i, j].
    const o = reshape(matmul(v, a, { transB: true }), [b, c, hh, ww]);
    return add(x, this.out.forward(o));
  }
}
