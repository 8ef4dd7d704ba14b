/**
 * A whole training step of the MNIST UNet (the PyTorch twin's configuration, 793,697 parameters)
 * on the wasm backend against the reference backend: the loss, every parameter's gradient and the
 * updated parameters, on one thread and on two and four with every kernel split. The batch is
 * large enough for the fast paths the model's shapes take in training (Winograd F(4x4, 3x3) forward
 * and input gradient, the Winograd filter gradient at 28x28, 14x14 and 7x7, stride-2 and 1x1
 * implicit GEMMs, GroupNorm fused with SiLU, attention).
 */

import assert from "node:assert/strict";
import type { Backend } from "../../../src/backend.ts";
import { createReferenceBackend } from "../../../src/backends/reference/mod.ts";
import type { DiffusionModel } from "../../../src/model.ts";
import { Random } from "../../../src/random.ts";
import { train } from "../../../src/train.ts";
import { createWasmBackend } from "../../../wasm/backend.ts";

/** Relative tolerance, against each tensor's largest value. */
const TOL = 1e-4;
/** Batch 4: 4 x 16 = 64 tiles at 7x7, where the Winograd filter gradient starts. */
const BATCH = 4;
const LR = 1e-3;

interface Step {
  loss: number;
  grads: Float32Array;
  values: Float32Array;
  model: DiffusionModel;
}

/** One step of train() on `backend` from the seed's initial weights. */
async function oneStep(backend: Backend): Promise<Step> {
  const r = new Random(31);
  const images = Float32Array.from(r.uniforms(8 * 28 * 28), (u) => 2 * u - 1);
  let loss = NaN;
  const model = await train({
    data: { values: images, shape: [8, 1, 28, 28] },
    network: { kind: "unet" },
    schedule: { kind: "linear", T: 200, betaStart: 1e-4, betaEnd: 0.02 },
    steps: 1,
    batchSize: BATCH,
    lr: LR,
    warmupSteps: 0,
    progressEvery: 1,
    onProgress: (p) => (loss = p.loss),
    seed: 4,
    backend,
  });
  const grads = Float32Array.from(await backend.read(model.params.grads!));
  const values = Float32Array.from(await backend.read(model.params.values));
  return { loss, grads, values, model };
}

/** Largest absolute value of a[begin, end). */
function maxAbs(a: Float32Array, begin: number, end: number): number {
  let m = 0;
  for (let i = begin; i < end; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

Deno.test("a UNet training step on wasm gives the reference's loss, gradients and weights; 2 and 4 threads the same bits", async () => {
  const ref = await oneStep(createReferenceBackend());
  const be = await createWasmBackend({ threads: 1 });
  try {
    const w = await oneStep(be);
    assert.ok(Number.isFinite(ref.loss) && ref.loss > 0.1, `reference loss ${ref.loss}`);
    assert.ok(
      Math.abs(w.loss - ref.loss) <= TOL * ref.loss,
      `loss ${w.loss}, reference ${ref.loss}`,
    );
    let excused = 0;
    for (const e of ref.model.layout.entries) {
      const end = e.offset + e.size;
      const scale = maxAbs(ref.grads, e.offset, end);
      assert.ok(scale > 0, `${e.name}: the reference gradient is zero`);
      for (let i = e.offset; i < end; i++) {
        const g = ref.grads[i];
        assert.ok(
          Math.abs(w.grads[i] - g) <= TOL * scale,
          `${e.name}[${i - e.offset}]: gradient ${w.grads[i]}, reference ${g} (scale ${scale})`,
        );
        // Adam's first step moves each weight by lr g / (|g| + eps), about lr sign(g): the update
        // within TOL of it (plus the weight's float rounding), except where the gradient is within
        // the tolerance of zero and the two backends may round it to opposite signs.
        const v = ref.values[i];
        if (Math.abs(w.values[i] - v) > TOL * LR + Math.abs(v) * 2 ** -22) {
          assert.ok(
            Math.abs(g) <= TOL * scale,
            `${e.name}[${i - e.offset}]: weight ${w.values[i]}, reference ${v} (gradient ${g})`,
          );
          excused++;
        }
      }
    }
    assert.ok(excused <= 8, `${excused} weights differ where their gradient is near zero`);
    // Two threads, and four (more than the cores: other splits and chunk orders), with every
    // kernel split: exactly the one-thread step.
    for (const threads of [2, 4]) {
      const threaded = await createWasmBackend({ threads, parallelThreshold: 0 });
      try {
        const t = await oneStep(threaded);
        assert.equal(t.loss, w.loss, `${threads} threads: loss`);
        assert.deepEqual(t.grads, w.grads, `${threads} threads: gradients`);
        assert.deepEqual(t.values, w.values, `${threads} threads: weights`);
      } finally {
        threaded.dispose();
      }
    }
  } finally {
    be.dispose();
  }
});
