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
import { Conv2d, conv2dSpecs } from "./conv.ts";
import { DepthwiseConv2d, depthwiseConv2dSpecs } from "./depthwise_conv.ts";
import type { DropoutFn } from "./dropout.ts";
import { GroupNorm, groupNormSpecs } from "./groupnorm.ts";
import { Linear, linearSpecs } from "./linear.ts";
import type { ParamSpec, ParamStore } from "./params.ts";

/** Kernel size of the depthwise convolution (the seed's 7, padding 3). */
export const CONVNEXT_KERNEL = 7;

/** The parameters of a ConvNeXt block called `name` (order t, dw, n1, c1, n2, c2, skip). */
export function convNextBlockSpecs(
  name: string,
  inChannels: number,
  outChannels: number,
  timeDim: number,
  mult: number,
): ParamSpec[] {
  const hidden = outChannels * mult;
  return [
    ...linearSpecs(`${name}.t`, timeDim, inChannels),
    ...depthwiseConv2dSpecs(`${name}.dw`, inChannels, CONVNEXT_KERNEL),
    ...groupNormSpecs(`${name}.n1`, inChannels),
    ...conv2dSpecs(`${name}.c1`, inChannels, hidden, 3),
    ...groupNormSpecs(`${name}.n2`, hidden),
    ...conv2dSpecs(`${name}.c2`, hidden, outChannels, 3),
    ...(inChannels !== outChannels ? conv2dSpecs(`${name}.skip`, inChannels, outChannels, 1) : []),
  ];
}

/** A ConvNeXt block bound to its parameters. */
export class ConvNextBlock {
  readonly #t: Linear;
  readonly #dw: DepthwiseConv2d;
  readonly #n1: GroupNorm;
  readonly #c1: Conv2d;
  readonly #n2: GroupNorm;
  readonly #c2: Conv2d;
  readonly #skip: Conv2d | null;

  /** Binds the block `name` in `store`; `skip` when the channel count changes. */
  constructor(store: ParamStore, name: string, skip: boolean) {
    this.#t = new Linear(store, `${name}.t`);
    this.#dw = new DepthwiseConv2d(store, `${name}.dw`, (CONVNEXT_KERNEL - 1) / 2);
    this.#n1 = new GroupNorm(store, `${name}.n1`, 1);
    this.#c1 = new Conv2d(store, `${name}.c1`, { padding: 1 });
    this.#n2 = new GroupNorm(store, `${name}.n2`, 1);
    this.#c2 = new Conv2d(store, `${name}.c2`, { padding: 1 });
    this.#skip = skip ? new Conv2d(store, `${name}.skip`) : null;
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
