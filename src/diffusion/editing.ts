/**
 * Editing a given sample instead of drawing one from noise, with any sampler:
 *
 * - SDEdit (Meng et al. 2022): `init` is noised through q(x_t0 | x_0) = N(alpha_t0 x_0,
 *   sigma_t0^2 I) to t0 = strength T and denoised from there: the sampler's own steps from the
 *   first of its model times at or below t0. Small strengths keep the input's layout, strength 1
 *   forgets it (sampling from noise, with the same noise as `sample` without `init`).
 * - Inpainting by replacement (the masked denoising of Song et al. 2021, appendix I.2; RePaint,
 *   Lugmayr et al. 2022): where `mask` is 1 the sample is the input, re-noised to the level each
 *   step lands on, so only the region where `mask` is 0 is generated; after the last step the known
 *   region is the input exactly. With `resampling` U > 1 each step is taken U times, the result
 *   noised back to the step's start between passes (RePaint's jumps of one step).
 *
 * @module
 */

import type { Backend, RandomDraw } from "../backend.ts";
import { add, combine, mul } from "../ops/elementwise.ts";
import { Tensor } from "../tensor.ts";
import type { NoiseLevels } from "./noise_level.ts";

/** What to edit: the input, and either a strength (SDEdit) or a mask (inpainting), or both. */
export interface EditInputs {
  /** The input samples, count x ...sampleShape values, row-major. */
  init: Float32Array;
  /** Where denoising starts, as a share of T in (0, 1] (default 1 without a mask). */
  strength?: number;
  /** 1 where the input is kept, 0 where the model fills in; one sample's shape, or one a sample. */
  mask?: Float32Array;
  /** RePaint's resampling: each step taken this many times (default 1). */
  resampling?: number;
}

/**
 * The index of the first model time of `timesteps` (descending) at or below strength T: the step
 * an edit of that strength starts at (timesteps.length when none is: the input comes back as is).
 */
export function editStart(timesteps: readonly number[], strength: number, T: number): number {
  if (strength >= 1) return 0;
  const t0 = strength * T;
  const i = timesteps.findIndex((t) => t <= t0 + 1e-9);
  return i < 0 ? timesteps.length : i;
}

/** One batch's edit: its input, mask and the noise levels, on the backend. */
export class BatchEdit {
  readonly #init: Tensor;
  readonly #mask: Tensor | null;
  readonly #keep: Tensor | null;
  readonly #levels: NoiseLevels;

  /**
   * The edit of samples [start, start + m) of `inputs` (each of `per` values), shaped `shape`
   * ([m, ...sampleShape]).
   */
  constructor(
    be: Backend,
    inputs: EditInputs,
    batch: { start: number; shape: readonly number[]; per: number },
    levels: NoiseLevels,
  ) {
    const { start, shape, per } = batch, m = shape[0];
    this.#levels = levels;
    this.#init = new Tensor(
      be,
      be.upload(inputs.init.subarray(start * per, (start + m) * per)),
      shape,
    );
    const mask = inputs.mask;
    if (mask) {
      const one = mask.length === per;
      const values = one ? mask : mask.subarray(start * per, (start + m) * per);
      this.#mask = new Tensor(be, be.upload(values), one ? [1, ...shape.slice(1)] : shape);
      this.#keep = new Tensor(be, be.upload(values.map((v) => 1 - v)), this.#mask.shape);
    } else {
      this.#mask = this.#keep = null;
    }
  }

  /** The input noised to model time t with the noise z (t = 0: the input itself). */
  noised(t: number, z: Tensor | null): Tensor {
    if (t <= 0 || z === null) return this.#init;
    const { a, s } = this.#levels.level(t);
    return combine([[this.#init, a], [z, s]]);
  }

  /**
   * Inpainting after a step that landed at model time t (0 after the last): the known region
   * replaced by the input noised to t with fresh noise from `draw`; x itself without a mask.
   */
  blend(x: Tensor, t: number, draw: () => RandomDraw): Tensor {
    if (!this.#mask) return x;
    let z: Tensor | null = null;
    if (t > 0) {
      const be = x.backend;
      z = new Tensor(be, be.alloc(x.size), x.shape);
      be.randomNormal(z.storage, draw());
    }
    // x <- mask known + (1 - mask) x, written so that mask 1 gives `known` bit for bit.
    return add(mul(this.#mask, this.noised(t, z)), mul(this.#keep!, x));
  }

  /**
   * x at model time `from` noised forward to the later time `to` through q(x_to | x_from) =
   * N((a_to / a_from) x, (1 - (a_to / a_from)^2) I), with the noise of `draw` (RePaint's jump).
   */
  renoise(x: Tensor, from: number, to: number, draw: RandomDraw): Tensor {
    const r = this.#levels.level(to).a / this.#levels.level(from).a, be = x.backend;
    const z = new Tensor(be, be.alloc(x.size), x.shape);
    be.randomNormal(z.storage, draw);
    return combine([[x, r], [z, Math.sqrt(Math.max(0, 1 - r * r))]]);
  }

  /** Frees the batch's input and mask. */
  dispose(): void {
    const be = this.#init.backend;
    for (const x of [this.#init, this.#mask, this.#keep]) if (x) be.free(x.storage);
  }
}
