/**
 * The `webgpu` backend's optimizer kernels: Adam/AdamW (with optional clipping by a global norm
 * read on the GPU) and the EMA update, in place, a thread per parameter.
 *
 * @module
 */

import type { AdamBuffers, AdamSettings, OptimOps, Storage } from "../../src/backend.ts";
import { adamKernel, emaKernel } from "../kernels/optim.ts";
import type { GpuRuntime } from "../runtime.ts";
import { linearGrid } from "../wgsl.ts";

/** The `webgpu` backend's optimizer kernels on `rt`. */
export function optimOps(rt: GpuRuntime): OptimOps {
  return {
    adam(b: AdamBuffers, s: AdamSettings): void {
      const { params, grads, m, v } = b;
      const P = rt.storage(params), G = rt.storage(grads), M = rt.storage(m), V = rt.storage(v);
      const n = P.length;
      if (G.length !== n || M.length !== n || V.length !== n) {
        throw new RangeError(`adam: lengths ${n}, ${G.length}, ${M.length}, ${V.length} differ`);
      }
      if (n === 0) return;
      const values = [
        n,
        s.decoupled ? 1 : 0,
        s.lr,
        s.beta1,
        1 - s.beta1,
        s.beta2,
        1 - s.beta2,
        s.eps,
        s.weightDecay,
        s.lr * s.weightDecay,
        1 - s.beta1 ** s.step,
        1 - s.beta2 ** s.step,
        s.clip ? s.clip.maxNorm : 0,
      ];
      const args = [P, G, M, V];
      if (s.clip) args.push(rt.storage(s.clip.gradSquaredNorm));
      rt.run(adamKernel(s.clip !== null), args, values, linearGrid(n));
    },

    ema(target: Storage, source: Storage, decay: number): void {
      const T = rt.storage(target), S = rt.storage(source);
      if (T.length !== S.length) throw new RangeError(`ema: lengths ${T.length} and ${S.length}`);
      if (T.length) {
        rt.run(emaKernel(), [T, S], [T.length, decay, 1 - decay], linearGrid(T.length));
      }
    },
  };
}
