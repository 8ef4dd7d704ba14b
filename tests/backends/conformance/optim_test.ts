/**
 * Conformance of the optimizer kernels on every backend: three Adam steps with bias correction,
 * plain, with coupled L2 decay and clipping, and decoupled (AdamW) with clipping, at sizes 1 to
 * 1003 and on parameter views at 64-element offsets (as in the parameter arena); and the EMA update.
 */

import type { Backend, Storage } from "../../../src/backend.ts";
import { conformance } from "./harness.ts";

/** Relative tolerances of Adam's results and of the EMA. */
const ADAM_TOL = 2e-5, EMA_TOL = 1e-6;

conformance("optim: adam (clipping, coupled and decoupled decay) and ema", async (c) => {
  const { be, ref, data } = c;
  // [decoupled, weight decay, maxNorm (0: no clipping)].
  const settings = [[false, 0, 0], [false, 0.01, 1], [true, 0.1, 100], [true, 0.1, 1]] as const;
  // Uniform parameters and gradients, m in [-0.1, 0.1), v in [0, 0.1); then normal ones (gradients
  // with scale 3) at 64-element offsets.
  const rows = [
    { n: 1, pad: 3, normal: false },
    { n: 5, pad: 3, normal: false },
    { n: 1003, pad: 3, normal: false },
    { n: 200, pad: 64, normal: true },
  ];
  for (const { n, pad, normal } of rows) {
    for (const [decoupled, weightDecay, maxNorm] of settings) {
      const [pb, pr] = c.pair(normal ? data.normal(n) : data.uniform(n), pad);
      const [gb, gr] = c.pair(normal ? data.normal(n, 3) : data.uniform(n), pad);
      const [mb, mr] = c.pair(normal ? data.normal(n, 0.1) : data.uniform(n, -0.1, 0.1));
      const [vb, vr] = c.pair(normal ? data.normal(n, 0.1).map(Math.abs) : data.uniform(n, 0, 0.1));
      for (let step = 1; step <= 3; step++) {
        const s = (b: Backend, grads: Storage) => ({
          lr: 1e-2,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay,
          decoupled,
          step,
          clip: maxNorm ? { maxNorm, gradSquaredNorm: b.sumSquares([grads]) } : null,
        });
        be.adam({ params: pb, grads: gb, m: mb, v: vb }, s(be, gb));
        ref.adam({ params: pr, grads: gr, m: mr, v: vr }, s(ref, gr));
      }
      const what = `adam n=${n} decoupled=${decoupled} wd=${weightDecay} clip=${maxNorm}`;
      await c.same(pb, pr, `${what} params`, ADAM_TOL);
      await c.same(mb, mr, `${what} m`, ADAM_TOL);
      await c.same(vb, vr, `${what} v`, ADAM_TOL);
    }
    const [tb, tr] = c.pair(normal ? data.normal(n) : data.uniform(n));
    const [sb, sr] = c.pair(normal ? data.normal(n) : data.uniform(n));
    be.ema(tb, sb, 0.95);
    ref.ema(tr, sr, 0.95);
    await c.same(tb, tr, `ema n=${n}`, EMA_TOL);
  }
});
