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
import { Conv2d, conv2dSpecs } from "./conv.ts";
import type { DropoutFn } from "./dropout.ts";
import { GroupNorm, groupNormSpecs } from "./groupnorm.ts";
import { Linear, linearSpecs } from "./linear.ts";
import type { ParamSpec, ParamStore } from "./params.ts";

/** The parameters of a ResBlock called `name` (the twin's order: n1, c1, t, n2, c2, skip). */
export function resBlockSpecs(
  name: string,
  inChannels: number,
  outChannels: number,
  timeDim: number,
): ParamSpec[] {
  return [
    ...groupNormSpecs(`${name}.n1`, inChannels),
    ...conv2dSpecs(`${name}.c1`, inChannels, outChannels, 3),
    ...linearSpecs(`${name}.t`, timeDim, outChannels),
    ...groupNormSpecs(`${name}.n2`, outChannels),
    ...conv2dSpecs(`${name}.c2`, outChannels, outChannels, 3),
    ...(inChannels !== outChannels ? conv2dSpecs(`${name}.skip`, inChannels, outChannels, 1) : []),
  ];
}

/** The twin's ResBlock: two GroupNorm -> SiLU -> 3x3 conv stages, the time added after the first. */
export class ResBlock {
  readonly #n1: GroupNorm;
  readonly #c1: Conv2d;
  readonly #t: Linear;
  readonly #n2: GroupNorm;
  readonly #c2: Conv2d;
  readonly #skip: Conv2d | null;

  /** Binds the block `name` in `store`; `skip` when the channel count changes. */
  constructor(store: ParamStore, name: string, groups: number, skip: boolean) {
    this.#n1 = new GroupNorm(store, `${name}.n1`, groups);
    this.#c1 = new Conv2d(store, `${name}.c1`, { padding: 1 });
    this.#t = new Linear(store, `${name}.t`);
    this.#n2 = new GroupNorm(store, `${name}.n2`, groups);
    this.#c2 = new Conv2d(store, `${name}.c2`, { padding: 1 });
    this.#skip = skip ? new Conv2d(store, `${name}.skip`) : null;
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
