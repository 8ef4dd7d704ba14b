/**
 * Adam and AdamW over the flat parameter buffer: one fused kernel per step, with optional
 * global-norm gradient clipping computed on the device.
 *
 * @module
 */

import type { Storage } from "../backend.ts";
import type { ParamStore } from "../nn/params.ts";

/** Options of {@link Adam}. */
export interface AdamOptions {
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.999). */
  beta2?: number;
  /** Denominator epsilon (default 1e-8). */
  eps?: number;
  /** Weight decay (default 0). */
  weightDecay?: number;
  /** AdamW's decoupled weight decay instead of Adam's L2 term (default false). */
  decoupled?: boolean;
  /** Clip the gradient's global norm to this value; null for no clipping (default null). */
  clipNorm?: number | null;
}

/** The optimizer's state, for checkpoints. */
export interface AdamState {
  /** Steps taken. */
  step: number;
  /** First moments, flat. */
  m: Storage;
  /** Second moments, flat. */
  v: Storage;
}

/** Adam/AdamW bound to a parameter store. */
export class Adam {
  /** Moments and step count. */
  readonly state: AdamState;
  readonly #store: ParamStore;
  readonly #o: Required<AdamOptions>;

  /** An optimizer for `store` (which must have gradients), continuing from `state` when given. */
  constructor(store: ParamStore, options: AdamOptions = {}, state: AdamState | null = null) {
    if (!store.grads) throw new Error("Adam needs a parameter store with gradients");
    this.#store = store;
    this.#o = {
      beta1: options.beta1 ?? 0.9,
      beta2: options.beta2 ?? 0.999,
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0,
      decoupled: options.decoupled ?? false,
      clipNorm: options.clipNorm ?? null,
    };
    const be = store.backend, n = store.layout.length;
    if (state && (state.m.length !== n || state.v.length !== n)) {
      throw new RangeError(
        `optimizer state has ${state.m.length} moments, the parameters need ${n}`,
      );
    }
    this.state = state ?? { step: 0, m: be.alloc(n), v: be.alloc(n) };
  }

  /** Applies the accumulated gradients with learning rate `lr`. */
  step(lr: number): void {
    const be = this.#store.backend, o = this.#o, grads = this.#store.grads!;
    this.state.step++;
    const clip = o.clipNorm === null ? null : {
      maxNorm: o.clipNorm,
      gradSquaredNorm: be.sumSquares([grads]),
    };
    be.adam({ params: this.#store.values, grads, m: this.state.m, v: this.state.v }, {
      lr,
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      weightDecay: o.weightDecay,
      decoupled: o.decoupled,
      step: this.state.step,
      clip,
    });
  }
}
