/**
 * What the learned-variance tests share: a tiny float64 schedule, a stand-in network that returns a
 * fixed output, a tiny batch on the 8-bit levels, and reading a tensor back as float64.
 *
 * @module
 */

import type { Network } from "../../src/models/network.ts";
import { Random } from "../../src/random.ts";
import type { Tensor } from "../../src/tensor.ts";

/** A tensor's values as float64. */
export const read = async (t: Tensor): Promise<Float64Array> =>
  Float64Array.from(await t.toArray());

/** A short linear schedule (T = 10). */
export const SCHEDULE = { kind: "linear", T: 10, betaStart: 0.01, betaEnd: 0.2 } as const;

/** A network that returns `out` whatever it is asked (the objective's view of one call). */
export const fixedNet = (out: Tensor): Network => ({ forward: () => out });

/** A tiny batch: x0 on the 8-bit levels (edges included), eps, and a network output [B, 2C]. */
export function tinyBatch(B: number, C: number, seed: number) {
  const r = new Random(seed);
  const levels = r.uniforms(B * C).map((u) => -1 + (2 * Math.floor(u * 256)) / 255);
  levels[0] = -1;
  levels[1] = 1;
  const eps = r.normals(B * C);
  // eps estimates near the truth (so the decoder's bins are not all floored), v in [-1.5, 1.5].
  const noise = r.normals(B * C), vs = r.uniforms(B * C);
  const out = new Float64Array(B * 2 * C);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      out[b * 2 * C + c] = eps[b * C + c] + 0.05 * noise[b * C + c];
      out[b * 2 * C + C + c] = 3 * vs[b * C + c] - 1.5;
    }
  }
  return { x0: levels, eps, out };
}
