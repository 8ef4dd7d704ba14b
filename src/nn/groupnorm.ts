/**
 * The group normalisation layer (PyTorch's nn.GroupNorm with affine parameters).
 *
 * @module
 */

import { groupNorm, groupNormSilu } from "../ops/norm.ts";
import type { Tensor } from "../tensor.ts";
import type { ParamSpec, ParamStore } from "./params.ts";

/** The parameters of a GroupNorm layer called `name` over `channels`: weight ones, bias zeros. */
export function groupNormSpecs(name: string, channels: number): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [channels], init: { kind: "constant", value: 1 } },
    { name: `${name}.bias`, shape: [channels], init: { kind: "constant", value: 0 } },
  ];
}

/** A GroupNorm layer bound to its parameters. */
export class GroupNorm {
  /** Per-channel scale [c]. */
  readonly weight: Tensor;
  /** Per-channel shift [c]. */
  readonly bias: Tensor;
  /** Number of groups. */
  readonly groups: number;
  /** Added to the variance. */
  readonly eps: number;

  /** Binds the parameters `name.weight` and `name.bias` of `store`. */
  constructor(store: ParamStore, name: string, groups: number, eps = 1e-5) {
    this.weight = store.param(`${name}.weight`);
    this.bias = store.param(`${name}.bias`);
    const c = this.weight.size;
    if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
      throw new RangeError(`${name}: ${c} channels do not split into ${groups} groups`);
    }
    this.groups = groups;
    this.eps = eps;
  }

  /**
   * x [n, c, ...] -> same shape. With `shift` (n*c values, e.g. [n, c]), normalises x + shift
   * broadcast over the trailing axes, the add fused into the kernel (see {@link groupNorm}).
   */
  forward(x: Tensor, shift: Tensor | null = null): Tensor {
    return groupNorm(x, this.weight, this.bias, this.groups, this.eps, shift);
  }

  /**
   * silu(this.forward(x, shift)) as one fused kernel forward and one backward (the norm -> SiLU
   * pair of ResNet blocks and the UNet's output head): x [n, c, ...] -> same shape, same values
   * and gradients as `silu(norm.forward(x, shift))` without the intermediate tensor. `shift`
   * (n*c values, optional) is added per (sample, channel) before the normalisation: the ResBlock's
   * time embedding, so that its add costs no pass of its own.
   */
  forwardSilu(x: Tensor, shift: Tensor | null = null): Tensor {
    return groupNormSilu(x, this.weight, this.bias, this.groups, this.eps, shift);
  }
}
