/**
 * The ConvNeXt block of the seed's UNet (../shared/seeds/004, `ConvNextBlock`; Liu et al. 2022 as
 * used by lucidrains' denoising-diffusion UNet): a 7x7 depthwise convolution, plus a Linear of the
 * GELU of the time embedding (one value per input channel), then GroupNorm(1) -> 3x3 conv to
 * out·mult channels -> GELU -> GroupNorm(1) -> [dropout] -> 3x3 conv to out channels, plus the input
 * (through a 1x1 convolution when the channel count changes).
 *
 * The seed's listing assigns the time projection instead of adding it (`h = rearrange(...)`), a
 * slip against lucidrains' original and its own description; here it is added. GELU is the tanh
 * form every backend computes (PyTorch's `GELU(approximate="tanh")`). Dropout, when passed
 * (training), sits before the last convolution, as in the ResBlock.
 *
 * Parameter names, in the seed's registration order (mlp, ds_conv, net, res_conv): `t` (its
 * `mlp.1`), `dw` (`ds_conv`), `n1` (`net.0`), `c1` (`net.1`), `n2` (`net.3`), `c2` (`net.4`),
 * `skip` (`res_conv`, only when the channel count changes).
 *
 * @module
 */

import { add, gelu } from "../ops/elementwise.ts";
import { reshape } from "../ops/shape.ts";
import type { Tensor } from "../tensor.ts";
import { Conv2d } from "./conv.ts";
import { DepthwiseConv2d } from "./depthwise_conv.ts";
import type { DropoutFn } from "./dropout.ts";
import { GroupNorm } from "./groupnorm.ts";
import { Linear } from "./linear.ts";
import type { ParamSource } from "./params.ts";

/** Kernel size of the depthwise convolution (the seed's 7, padding 3). */
export const CONVNEXT_KERNEL = 7;

/** A ConvNeXt block bound to its parameters. */
export class ConvNextBlock {
  readonly #t: Linear;
  readonly #dw: DepthwiseConv2d;
  readonly #n1: GroupNorm;
  readonly #c1: Conv2d;
  readonly #n2: GroupNorm;
  readonly #c2: Conv2d;
  readonly #skip: Conv2d | null;

  /**
   * Declares the block `name` from `inChannels` to `outChannels` with hidden width
   * outChannels·`mult` and a time embedding of `timeDim`, in the order t, dw, n1, c1, n2, c2, and
   * skip (a 1x1 convolution) when the channel count changes.
   */
  constructor(
    params: ParamSource,
    name: string,
    inChannels: number,
    outChannels: number,
    timeDim: number,
    mult: number,
  ) {
    const ci = inChannels, co = outChannels, hidden = co * mult, k = CONVNEXT_KERNEL;
    this.#t = new Linear(params, `${name}.t`, timeDim, ci);
    this.#dw = new DepthwiseConv2d(params, `${name}.dw`, ci, k, (k - 1) / 2);
    this.#n1 = new GroupNorm(params, `${name}.n1`, ci, 1);
    this.#c1 = new Conv2d(params, `${name}.c1`, ci, hidden, 3, { padding: 1 });
    this.#n2 = new GroupNorm(params, `${name}.n2`, hidden, 1);
    this.#c2 = new Conv2d(params, `${name}.c2`, hidden, co, 3, { padding: 1 });
    this.#skip = ci !== co ? new Conv2d(params, `${name}.skip`, ci, co, 1) : null;
  }

  /**
   * x [b, in, h, w], time embedding te [b, tdim] -> [b, out, h, w]; `drop` (training only) is
   * applied before the last convolution.
   */
  forward(x: Tensor, te: Tensor, drop: DropoutFn | null = null): Tensor {
    const time = this.#t.forward(gelu(te));
    let h = this.#dw.forward(x);
    h = add(h, reshape(time, [time.shape[0], time.shape[1], 1, 1]));
    h = gelu(this.#c1.forward(this.#n1.forward(h)));
    h = this.#n2.forward(h);
    if (drop) h = drop(h);
    h = this.#c2.forward(h);
    return add(h, this.#skip ? this.#skip.forward(x) : x);
  }
}
