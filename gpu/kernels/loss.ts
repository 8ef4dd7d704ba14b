/**
 * The gradient of the regression losses. (The losses themselves are whole-buffer reductions: see
 * `partialSumKernel` in reduce.ts, whose per-element terms include l2, l1 and huber.)
 *
 * @module
 */

import type { LossKind } from "../../src/backend.ts";
import { type KernelSpec, LINEAR_INDEX, LINEAR_WG, memo, ro, rw } from "../wgsl.ts";

const WG = [LINEAR_WG] as const;

const LOSS_GRAD_WGSL: Record<LossKind, string> = {
  l2: "2.0 * d",
  l1: "sign(d)",
  huber: "select(p.delta * sign(d), d, abs(d) <= p.delta)",
};

/** out = (scale[0] / n) * d loss / d pred, element-wise. */
export const lossGradKernel = memo((kind: LossKind): KernelSpec => ({
  key: `loss_grad_${kind}`,
  bindings: [ro("pred"), ro("tgt"), ro("scale"), rw("out")],
  params: [["n", "u32"], ["delta", "f32"]],
  workgroup: WG,
  body: LINEAR_INDEX + `
  let k = scale[p.scale_o] / f32(p.n);
  let d = pred[p.pred_o + i] - tgt[p.tgt_o + i];
  out[p.out_o + i] = k * (${LOSS_GRAD_WGSL[kind]});`,
}));
