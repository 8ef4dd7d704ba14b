/**
 * The group normalisation layer (PyTorch's nn.GroupNorm with affine parameters).
 *
 * @module
 */

import { groupNorm, groupNormSilu } from "../ops/norm.ts";
import type { Tensor } from "../tensor.ts";
import type { ParamSource } from "./params.ts";

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

  /**
   * Declares `name.weight` (ones) and `name.bias` (zeros), both [channels]; `groups` divides the
   * channels.
   */
  constructor(params: ParamSource, name: string, channels: number, groups: number, eps = 1e-5) {
    this.weight = params.param(`${name}.weight`, [channels], { kind: "constant", value: 1 });
    this.bias = params.param(`${name}.bias`, [channels], { kind: "constant", value: 0 });
    if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) {
      throw new RangeError(`${name}: ${channels} channels do not split into ${groups} groups`);
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
