/**
 * The wasm backend's optimizer kernels: the Adam(W) update with optional gradient clipping, and the
 * exponential moving average of weights, in place and split over threads when large.
 *
 * @module
 */

import type { AdamBuffers, AdamSettings, OptimOps, Storage } from "../../src/backend.ts";
import type { WasmRuntime } from "../runtime.ts";

/** The wasm backend's optimizer kernels over runtime `rt`. */
export function optimOps(rt: WasmRuntime): OptimOps {
  return {
    adam(b: AdamBuffers, s: AdamSettings): void {
      const { params, grads, m, v } = b;
      const ps = rt.s(params), gp = rt.p(grads), mp = rt.p(m), vp = rt.p(v);
      const clip = s.clip ? rt.p(s.clip.gradSquaredNorm) : 0;
      const bc1 = 1 - s.beta1 ** s.step, bc2 = 1 - s.beta2 ** s.step;
      rt.each("adam", ps.length, (b, e) => [
        ps.ptr,
        gp,
        mp,
        vp,
        s.lr,
        s.beta1,
        s.beta2,
        s.eps,
        s.weightDecay,
        s.decoupled ? 1 : 0,
        bc1,
        bc2,
        clip,
        s.clip ? s.clip.maxNorm : 0,
        b,
        e,
      ]);
    },

    ema(target: Storage, source: Storage, decay: number): void {
      const t = rt.s(target), sp = rt.p(source);
      rt.each("ema", t.length, (b, e) => [t.ptr, sp, decay, b, e]);
    },
  };
}
