/**
 * Conformance of whole runs on every backend: training the MLP for 20 steps gives the oracle's
 * losses, raw and EMA weights and samples; and sampling (with a trajectory) from the same weights
 * on both backends gives the same samples.
 */

import assert from "node:assert/strict";
import type { Backend } from "../../../src/backend.ts";
import { DiffusionModel } from "../../../src/model.ts";
import { Random } from "../../../src/random.ts";
import { sample } from "../../../src/sample.ts";
import { train } from "../../../src/train.ts";
import { assertClose } from "../../helpers/compare.ts";
import { conformance } from "./harness.ts";

/** 300 points of two Gaussians, the MLP trained on them for 20 steps, and 50 samples of it. */
async function run(backend: Backend) {
  const r = new Random(99), z = r.normals(2 * 300), v = new Float32Array(2 * 300);
  for (let i = 0; i < v.length; i++) v[i] = 0.5 * z[i] + (i % 2 ? -1 : 1);
  const losses: number[] = [];
  const model = await train({
    data: { values: v, shape: [300, 2] },
    steps: 20,
    batchSize: 16,
    network: { hidden: 32 },
    schedule: { kind: "cosine", T: 20 },
    progressEvery: 1,
    onProgress: (p) => losses.push(p.loss),
    backend,
  });
  const samples = (await sample(model, { count: 50, steps: 5, seed: 3 })).values;
  return {
    model,
    losses,
    raw: await model.weights("raw"),
    ema: await model.weights("ema"),
    samples,
  };
}

conformance("training: an MLP's losses, weights and samples are the oracle's", async (c) => {
  const got = await run(c.be), want = await run(c.ref);
  assert.equal(got.losses.length, 20);
  assertClose(got.losses, want.losses, "losses");
  for (const [name, value] of want.raw) assertClose(got.raw.get(name)!, value, `raw ${name}`);
  for (const [name, value] of want.ema) assertClose(got.ema.get(name)!, value, `ema ${name}`);
  assertClose(got.samples, want.samples, "samples", 1e-3);

  // Sampling from identical weights on both backends.
  const m = want.model;
  const raw = await c.ref.read(m.params.values), ema = await c.ref.read(m.ema!.values);
  const here = new DiffusionModel(m.config, c.be, Float32Array.from(raw), Float32Array.from(ema));
  const opts = { count: 50, seed: 9, trajectoryAt: [10] };
  const a = await sample(here, opts), b = await sample(m, opts);
  assert.deepEqual(a.shape, b.shape);
  assertClose(a.values, b.values, "samples from the same weights", 1e-3);
});
