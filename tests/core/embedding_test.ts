/**
 * The sinusoidal timestep embedding against the PyTorch twin's formula.
 */

import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { timestepEmbedding } from "../../src/nn/embedding.ts";
import { tensor } from "../../src/tensor.ts";

const be = createReferenceBackend({ dtype: "float64" });

Deno.test("timestep embedding is the PyTorch twin's: [sin(t f_i), cos(t f_i)], f_i = 10000^(-i/(half-1))", async () => {
  const ts = [1, 7, 200], dim = 8, half = 4;
  const e = await timestepEmbedding(tensor(be, ts, [3]), dim).toArray();
  ts.forEach((t, r) => {
    for (let i = 0; i < half; i++) {
      const f = Math.pow(10000, -i / (half - 1));
      assert.ok(Math.abs(e[r * dim + i] - Math.sin(t * f)) < 1e-12);
      assert.ok(Math.abs(e[r * dim + half + i] - Math.cos(t * f)) < 1e-12);
    }
  });
  assert.throws(() => timestepEmbedding(tensor(be, [1], [1]), 5), /even/);
});
