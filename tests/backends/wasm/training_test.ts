/**
 * A whole MLP training run on the wasm backend: two and four threads with every kernel split give
 * exactly the one-thread losses, weights and samples, and every step releases its intermediates
 * (memory left in use grows with nothing but the model and optimizer state). (That the run matches the
 * reference backend is checked for every backend in tests/backends/conformance/training_test.ts.)
 */

import assert from "node:assert/strict";
import type { Backend } from "../../../src/backend.ts";
import { Random } from "../../../src/random.ts";
import { sample } from "../../../src/sample.ts";
import { train } from "../../../src/train.ts";
import { createWasmBackend, type WasmBackend } from "../../../wasm/backend.ts";

/** The MLP trained for `steps` steps on 300 points of two Gaussians, and 50 samples of it. */
async function run(backend: Backend, steps = 20) {
  const r = new Random(99), z = r.normals(2 * 300), v = new Float32Array(2 * 300);
  for (let i = 0; i < v.length; i++) v[i] = 0.5 * z[i] + (i % 2 ? -1 : 1);
  const losses: number[] = [];
  const model = await train({
    data: { values: v, shape: [300, 2] },
    steps,
    batchSize: 16,
    network: { hidden: 32 },
    schedule: { kind: "cosine", T: 20 },
    progressEvery: 1,
    onProgress: (p) => losses.push(p.loss),
    backend,
  });
  const samples = (await sample(model, { count: 50, steps: 5, seed: 3 })).values;
  return { losses, raw: await model.weights("raw"), ema: await model.weights("ema"), samples };
}

Deno.test("training the MLP on wasm: 2 and 4 threads give the same bits; memory does not grow with steps", async () => {
  const be = await createWasmBackend({ threads: 1 });
  const w = await run(be);
  assert.equal(w.losses.length, 20);
  // Two threads, and four (more than the cores), with every kernel split give exactly the
  // one-thread results.
  for (const threads of [2, 4]) {
    const threaded = await createWasmBackend({ threads, parallelThreshold: 0 });
    try {
      const t = await run(threaded);
      assert.deepEqual(t.losses, w.losses, `${threads} threads: losses`);
      for (const [name, value] of w.raw) {
        assert.deepEqual(t.raw.get(name), value, `${threads} threads: ${name}`);
      }
      for (const [name, value] of w.ema) {
        assert.deepEqual(t.ema.get(name), value, `${threads} threads: ema ${name}`);
      }
      assert.deepEqual(t.samples, w.samples, `${threads} threads: samples`);
    } finally {
      threaded.dispose();
    }
  }
  // Every step releases its intermediates: a longer run leaves no more memory in use than a
  // shorter one (each leaves its model and optimizer state).
  const heap = (be as WasmBackend).heap, u0 = heap.used;
  await run(be, 2);
  const u1 = heap.used;
  await run(be, 9);
  assert.equal(heap.used - u1, u1 - u0, "memory left in use grows with the number of steps");
  be.dispose();
});
