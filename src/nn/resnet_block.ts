/**
 * The PyTorch twin's ResBlock (../shared/bench/torch_twin.py): GroupNorm -> SiLU -> 3x3 conv, plus a
 * Linear of the time embedding, then GroupNorm -> SiLU -> [dropout] -> 3x3 conv, plus the input
 * (through a 1x1 convolution when the channel count changes). The dropout sits where DDPM and
 * lucidrains' UNet put it, before the second convolution, and only runs when a dropout function is
 * passed (training).
 *
 * @module
 */

import { add } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor.ts";
import { Conv2d } from "./conv.ts";
import type { DropoutFn } from "./dropout.ts";
import { GroupNorm } from "./groupnorm.ts";
import { Linear } from "./linear.ts";
import type { ParamSource } from "./params.ts";

/** The twin's ResBlock: two GroupNorm -> SiLU -> 3x3 conv stages, the time added after the first. */
export class ResBlock {
  readonly #n1: GroupNorm;
  readonly #c1: Conv2d;
  readonly #t: Linear;
  readonly #n2: GroupNorm;
  readonly #c2: Conv2d;
  readonly #skip: Conv2d | null;

  /**
   * Declares the block `name` from `inChannels` to `outChannels` with a time embedding of
   * `timeDim`, in the twin's order: n1, c1, t, n2, c2, and skip (a 1x1 convolution) when the
   * channel count changes. `groups` divides both channel counts.
   */
  constructor(
    params: ParamSource,
    name: string,
    inChannels: number,
    outChannels: number,
    timeDim: number,
    groups: number,
  ) {
    const ci = inChannels, co = outChannels;
    this.#n1 = new GroupNorm(params, `${name}.n1`, ci, groups);
    this.#c1 = new Conv2d(params, `${name}.c1`, ci, co, 3, { padding: 1 });
    this.#t = new Linear(params, `${name}.t`, timeDim, co);
    this.#n2 = new GroupNorm(params, `${name}.n2`, co, groups);
    this.#c2 = new Conv2d(params, `${name}.c2`, co, co, 3, { padding: 1 });
    this.#skip = ci !== co ? new Conv2d(params, `${name}.skip`, ci, co, 1) : null;
  }

  /**
   * x [b, in, h, w], time embedding te [b, tdim] -> [b, out, h, w]; `drop` (training only) is
   * applied before the second convolution.
   */
  forward(x: Tensor, te: Tensor, drop: DropoutFn | null = null): Tensor {
    const time = this.#t.forward(te);
    let h = this.#c1.forward(this.#n1.forwardSilu(x));
    // silu(n2(h + time)) with the time embedding [b, out] added per channel inside the norm.
    h = this.#n2.forwardSilu(h, time);
    if (drop) h = drop(h);
    h = this.#c2.forward(h);
    return add(h, this.#skip ? this.#skip.forward(x) : x);
  }
}
