/**
 * The wasm backend's losses: the loss of a prediction against a target (one kernel call on this
 * thread) and its gradient (split over threads when large).
 *
 * @module
 */

import { LOSS_KINDS, type LossOps, type LossSpec, type Storage } from "../../src/backend.ts";
import type { WasmRuntime } from "../runtime.ts";
import { opCodes } from "./elementwise.ts";

const LOSS_CODES = opCodes(LOSS_KINDS);

/** The wasm backend's losses over runtime `rt`. */
export function lossOps(rt: WasmRuntime): LossOps {
  return {
    loss(spec: LossSpec, pred: Storage, target: Storage): Storage {
      const { kind, delta } = spec;
      const ps = rt.s(pred), out = rt.uninit(1);
      rt.k.loss(LOSS_CODES[kind], ps.ptr, rt.p(target), ps.length, delta, out.ptr);
      return out;
    },

    lossBackward(spec: LossSpec, pred: Storage, target: Storage, scale: Storage): Storage {
      const { kind, delta } = spec;
      const ps = rt.s(pred), tp = rt.p(target), sp = rt.p(scale);
      const out = rt.uninit(ps.length), code = LOSS_CODES[kind];
      rt.each(
        "lossBackward",
        ps.length,
        (b, e) => [code, ps.ptr, tp, ps.length, delta, sp, out.ptr, b, e],
      );
      return out;
    },
  };
}
