/**
 * Conformance of the random fills on every backend: uniforms and integers bit for bit equal to the
 * reference's (src/random.ts defines them), normals within float32 rounding of them (1e-5 relative
 * on WebGPU), at seeds up to 2^40, the largest stream, counters that carry into their high word,
 * sizes 1 to 1003; and a fill into a view at an odd offset writes that view alone.
 */

import assert from "node:assert/strict";
import { conformance } from "./harness.ts";

conformance("random: fills reproduce src/random.ts", async (c) => {
  const { be, ref } = c;
  const draws = [
    { seed: 0, stream: 0, counter: 0 },
    { seed: 7, stream: 3, counter: 12345 },
    { seed: 2 ** 40 + 11, stream: 2 ** 32 - 1, counter: 2 ** 35 + 3 },
    { seed: 12345678901, stream: 3, counter: 77 },
    { seed: 5, stream: 4294967295, counter: 4294967294 }, // the counter carries into the high word
  ];
  // Normals within float32 rounding (2^-23); WebGPU's log, sqrt and cos are a few ulp off.
  const normalTol = c.target.kind === "webgpu" ? 1e-5 : 2 ** -23;
  for (const draw of draws) {
    for (const n of [1, 2, 3, 5, 6, 8, 1001, 1003]) {
      const what = `${JSON.stringify(draw)} n=${n}`;
      const b = be.alloc(n), r = ref.alloc(n);
      be.randomUniform(b, draw);
      ref.randomUniform(r, draw);
      await c.exact(b, r, `uniform ${what}`);
      for (const [lo, hi] of [[-3, 1000], [1, 1001]]) {
        be.randomInt(b, draw, lo, hi);
        ref.randomInt(r, draw, lo, hi);
        await c.exact(b, r, `int [${lo}, ${hi}) ${what}`);
      }
      be.randomNormal(b, draw);
      ref.randomNormal(r, draw);
      await c.same(b, r, `normal ${what}`, normalTol);
    }
  }
  // Into a view at an odd offset: the neighbours stay untouched.
  const buf = be.upload(new Float32Array(12).fill(9)), want = ref.alloc(5);
  be.randomUniform(be.view(buf, 3, 5), draws[1]);
  ref.randomUniform(want, draws[1]);
  const got = await c.read(buf);
  assert.deepEqual([...got.slice(0, 3), ...got.slice(8)], new Array(7).fill(9));
  assert.deepEqual([...got.slice(3, 8)], [...await c.expected(want)]);
});
