/**
 * The fused Adam/AdamW update over the flat parameter buffer (with global-norm clipping read from a
 * device-side squared norm) and the EMA of the weights.
 *
 * @module
 */

import { type KernelSpec, LINEAR_INDEX, LINEAR_WG, memo, ro, rw } from "../wgsl.ts";

const WG = [LINEAR_WG] as const;

/**
 * One Adam/AdamW step for every element; with `clip`, gradients are scaled by
 * min(1, maxNorm / sqrt(sq[0])).
 */
export const adamKernel = memo((clip: boolean): KernelSpec => ({
  key: `adam${clip ? "_clip" : ""}`,
  bindings: [rw("prm"), ro("grad"), rw("m1"), rw("m2"), ...(clip ? [ro("sq")] : [])],
  params: [
    ["n", "u32"],
    ["decoupled", "u32"],
    ["lr", "f32"],
    ["beta1", "f32"],
    ["omb1", "f32"],
    ["beta2", "f32"],
    ["omb2", "f32"],
    ["eps", "f32"],
    ["wd", "f32"],
    ["lrwd", "f32"],
    ["bc1", "f32"],
    ["bc2", "f32"],
    ["maxNorm", "f32"],
  ],
  workgroup: WG,
  body: LINEAR_INDEX + `
  var gs = 1.0;
  ${clip ? "let norm = sqrt(sq[p.sq_o]);\n  if (norm > p.maxNorm) { gs = p.maxNorm / norm; }" : ""}
  var pv = prm[p.prm_o + i];
  var g = grad[p.grad_o + i] * gs;
  if (p.decoupled == 0u && p.wd != 0.0) { g = g + p.wd * pv; }
  let m = p.beta1 * m1[p.m1_o + i] + p.omb1 * g;
  let v = p.beta2 * m2[p.m2_o + i] + p.omb2 * g * g;
  m1[p.m1_o + i] = m;
  m2[p.m2_o + i] = v;
  if (p.decoupled != 0u && p.wd != 0.0) { pv = pv - p.lrwd * pv; }
  prm[p.prm_o + i] = pv - p.lr * (m / p.bc1) / (sqrt(v / p.bc2) + p.eps);`,
}));

/** target = decay * target + (1 - decay) * source. */
export const emaKernel = memo((): KernelSpec => ({
  key: "ema",
  bindings: [rw("tgt"), ro("source")],
  params: [["n", "u32"], ["decay", "f32"], ["omd", "f32"]],
  workgroup: WG,
  body: LINEAR_INDEX + `
  tgt[p.tgt_o + i] = p.decay * tgt[p.tgt_o + i] + p.omd * source[p.source_o + i];`,
}));
