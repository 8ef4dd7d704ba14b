/**
 * The `webgpu` backend's losses: the mean loss as a two-pass whole-buffer reduction, and its
 * gradient a thread per element, scaled by a one-element storage.
 *
 * @module
 */

import type { LossOps, LossSpec, Storage } from "../../src/backend.ts";
import { lossGradKernel } from "../kernels/loss.ts";
import type { GpuRuntime } from "../runtime.ts";
import { linearGrid } from "../wgsl.ts";
import { reduceAll } from "./reduction.ts";

/** The `webgpu` backend's losses on `rt`. */
export function lossOps(rt: GpuRuntime): LossOps {
  return {
    loss(spec: LossSpec, pred: Storage, target: Storage): Storage {
      const { kind, delta } = spec;
      const P = rt.storage(pred), T = rt.storage(target), out = rt.alloc(1);
      if (P.length !== T.length) throw new RangeError(`loss: lengths ${P.length} and ${T.length}`);
      if (P.length === 0) rt.fill(out, NaN);
      else reduceAll(rt, kind, [[P, T]], out, 1 / P.length, delta);
      return out;
    },

    lossBackward(spec: LossSpec, pred: Storage, target: Storage, scale: Storage): Storage {
      const { kind, delta } = spec;
      const P = rt.storage(pred), T = rt.storage(target), S = rt.storage(scale);
      const out = rt.alloc(P.length);
      if (P.length) {
        rt.run(lossGradKernel(kind), [P, T, S, out], [P.length, delta], linearGrid(P.length));
      }
      return out;
    },
  };
}
