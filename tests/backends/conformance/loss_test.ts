/**
 * Conformance of the loss kernels on every backend: every loss (from `LOSS_KINDS`) and its gradient,
 * with Huber thresholds 0.8 and 0.5, at sizes 1 to 1001 (one element included).
 */

import { LOSS_KINDS } from "../../../src/backend.ts";
import { conformance } from "./harness.ts";

conformance("loss: every loss and its gradient", async (c) => {
  const { be, ref, data } = c;
  // Uniform in [-3, 3) with delta 0.8; normal (the prediction with scale 2) with delta 0.5.
  const rows = [
    { n: 1, delta: 0.8 },
    { n: 7, delta: 0.8 },
    { n: 128, delta: 0.8 },
    { n: 1001, delta: 0.5, normal: true },
  ];
  for (const { n, delta, normal } of rows) {
    const [pb, pr] = c.pair(normal ? data.normal(n, 2) : data.uniform(n, -3, 3));
    const [tb, tr] = c.pair(normal ? data.normal(n) : data.uniform(n, -3, 3));
    const [sb, sr] = c.pair([0.7]);
    for (const kind of LOSS_KINDS) {
      const spec = { kind, delta };
      await c.same(be.loss(spec, pb, tb), ref.loss(spec, pr, tr), `${kind} n=${n}`);
      await c.same(
        be.lossBackward(spec, pb, tb, sb),
        ref.lossBackward(spec, pr, tr, sr),
        `${kind}' n=${n}`,
      );
    }
  }
});
