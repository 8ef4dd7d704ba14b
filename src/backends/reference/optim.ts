/**
 * The reference backend's Adam/AdamW update and weight EMA.
 *
 * @module
 */

import type { AdamBuffers, AdamSettings, OptimOps, Storage } from "../../backend.ts";
import { arr } from "./memory.ts";

/** The reference backend's optimizer updates. */
export function optimOps(): OptimOps {
  return {
    adam(b: AdamBuffers, s: AdamSettings): void {
      const P = arr(b.params), G = arr(b.grads), M = arr(b.m), V = arr(b.v);
      let gs = 1;
      if (s.clip) {
        const norm = Math.sqrt(arr(s.clip.gradSquaredNorm)[0]);
        if (norm > s.clip.maxNorm) gs = s.clip.maxNorm / norm;
      }
      const bc1 = 1 - s.beta1 ** s.step, bc2 = 1 - s.beta2 ** s.step;
      const wd = s.weightDecay;
      for (let i = 0; i < P.length; i++) {
        let g = G[i] * gs;
        if (!s.decoupled && wd !== 0) g += wd * P[i];
        M[i] = s.beta1 * M[i] + (1 - s.beta1) * g;
        V[i] = s.beta2 * V[i] + (1 - s.beta2) * g * g;
        let p = P[i];
        if (s.decoupled && wd !== 0) p -= s.lr * wd * p;
        P[i] = p - s.lr * (M[i] / bc1) / (Math.sqrt(V[i] / bc2) + s.eps);
      }
    },

    ema(target: Storage, source: Storage, decay: number): void {
      const T = arr(target), S = arr(source);
      for (let i = 0; i < T.length; i++) T[i] = decay * T[i] + (1 - decay) * S[i];
    },
  };
}
