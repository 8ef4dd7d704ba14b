/**
 * The reference backend's regression losses and their gradient.
 *
 * @module
 */

import type { LossOps, LossSpec, Storage } from "../../backend.ts";
import { arr, type ReferenceMemory } from "./memory.ts";

/** The reference backend's losses. */
export function lossOps(mem: ReferenceMemory): LossOps {
  return {
    loss(spec: LossSpec, pred: Storage, target: Storage): Storage {
      const { kind, delta } = spec;
      const P = arr(pred), T = arr(target);
      let s = 0;
      for (let i = 0; i < P.length; i++) {
        const d = P[i] - T[i], a = Math.abs(d);
        s += kind === "l2"
          ? d * d
          : kind === "l1"
          ? a
          : a <= delta
          ? 0.5 * d * d
          : delta * (a - 0.5 * delta);
      }
      const out = mem.alloc(1);
      out.data[0] = s / P.length;
      return out;
    },

    lossBackward(spec: LossSpec, pred: Storage, target: Storage, scale: Storage): Storage {
      const { kind, delta } = spec;
      const P = arr(pred), T = arr(target), k = arr(scale)[0] / P.length;
      const out = mem.alloc(P.length), O = out.data;
      for (let i = 0; i < P.length; i++) {
        const d = P[i] - T[i];
        O[i] = k *
          (kind === "l2"
            ? 2 * d
            : kind === "l1"
            ? Math.sign(d)
            : Math.abs(d) <= delta
            ? d
            : delta * Math.sign(d));
      }
      return out;
    },
  };
}
