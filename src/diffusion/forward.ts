/**
 * The forward process q(x_t | x_0) = N(sqrt(alphaBar_t) x_0, (1 - alphaBar_t) I) in closed form,
 * with the schedule's tables resident on the backend so that a training step reads nothing back.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { add, mul } from "../ops/elementwise.ts";
import { gather, reshape } from "../ops/shape.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { minSnrWeight, type NoiseLevel, type Prediction } from "./parameterization.ts";
import type { Schedule } from "./schedule.ts";

/**
 * The min-SNR-gamma loss weights ({@link minSnrWeight}) of `schedule`, indexed by t (entry 0
 * unused), or all 1 when `gamma` is null.
 */
export function minSnrWeights(
  schedule: Schedule,
  kind: Prediction,
  gamma: number | null,
): Float64Array {
  const { T, alphasCumprod } = schedule;
  const w = new Float64Array(T + 1).fill(1);
  if (gamma === null) return w;
  for (let t = 1; t <= T; t++) {
    const ab = alphasCumprod[t - 1];
    w[t] = minSnrWeight(kind, ab / (1 - ab), gamma);
  }
  return w;
}

/** The schedule's tables that the training step gathers from, on a backend. */
export class DeviceSchedule {
  /** The host schedule. */
  readonly schedule: Schedule;
  /** sqrt(alphaBar) indexed by t (entry 0 unused, so t = 1..T index directly). */
  readonly sqrtAlphasCumprod: Tensor;
  /** sqrt(1 - alphaBar) indexed by t (entry 0 unused). */
  readonly sqrtOneMinusAlphasCumprod: Tensor;

  /** Uploads the tables. */
  constructor(backend: Backend, schedule: Schedule) {
    this.schedule = schedule;
    const T = schedule.T;
    const pad = (a: Float64Array) => {
      const out = new Float64Array(T + 1);
      out.set(a, 1);
      return out;
    };
    this.sqrtAlphasCumprod = tensor(backend, pad(schedule.sqrtAlphasCumprod), [T + 1]);
    this.sqrtOneMinusAlphasCumprod = tensor(backend, pad(schedule.sqrtOneMinusAlphasCumprod), [
      T + 1,
    ]);
  }

  /**
   * The square roots of the min-SNR-gamma loss weights ({@link minSnrWeight}) indexed by t (entry 0
   * unused): scaling prediction and target by these makes the mean squared error min-SNR weighted.
   */
  minSnrRootWeights(kind: Prediction, gamma: number): Tensor {
    const w = minSnrWeights(this.schedule, kind, gamma).map(Math.sqrt);
    return tensor(this.sqrtAlphasCumprod.backend, w, [this.schedule.T + 1]);
  }

  /** Per-sample a, s for timesteps t [B] (integral floats in 1..T), shaped [B, 1, ...] for data of `rank`. */
  level(t: Tensor, rank: number): NoiseLevel {
    const shape = [t.size, ...new Array<number>(rank - 1).fill(1)];
    return {
      a: reshape(gather(this.sqrtAlphasCumprod, t), shape),
      s: reshape(gather(this.sqrtOneMinusAlphasCumprod, t), shape),
    };
  }
}

/** x_t = a x0 + s eps. */
export function qSample(x0: Tensor, eps: Tensor, lvl: NoiseLevel): Tensor {
  return add(mul(lvl.a, x0), mul(lvl.s, eps));
}
