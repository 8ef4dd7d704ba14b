/**
 * The evaluation classifier: softmax cross-entropy against finite differences, learning a tiny
 * synthetic problem, and the classifier file round trip.
 */

import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import {
  accuracy,
  CLASSIFIER_FORMAT,
  classify,
  decodeClassifier,
  encodeClassifier,
  loadClassifier,
  saveClassifier,
  trainClassifier,
} from "../../src/eval/classifier.ts";
import { crossEntropy } from "../../src/eval/cross_entropy.ts";
import { FileFormatError, OptionError } from "../../src/errors.ts";
import { encodeSafetensors } from "../../src/io/safetensors.ts";
import { Random } from "../../src/random.ts";
import { tensor } from "../../src/tensor.ts";
import { float64Backend, gradCheck } from "../helpers/gradcheck.ts";

Deno.test("crossEntropy: value and gradient against finite differences (float64)", async () => {
  const be = float64Backend(), B = 5, K = 4, r = new Random(9, 0);
  const logits = Array.from(r.normals(B * K), (v) => 3 * v);
  const labels = [0, 3, 1, 1, 2];
  await gradCheck(
    be,
    [{ data: logits, shape: [B, K] }, { data: labels, shape: [B], grad: false }],
    ([x, y]) => crossEntropy(x, y),
  );
  // The value: mean of logsumexp(x) - x[y].
  let want = 0;
  for (let i = 0; i < B; i++) {
    const row = logits.slice(i * K, (i + 1) * K), m = Math.max(...row);
    want += m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) - row[labels[i]];
  }
  const got =
    (await crossEntropy(tensor(be, logits, [B, K]), tensor(be, labels, [B])).toArray())[0];
  assert.ok(Math.abs(got - want / B) < 1e-12, `${got} vs ${want / B}`);
  // Confidently wrong rows stay finite.
  const far =
    (await crossEntropy(tensor(be, [500, -500], [1, 2]), tensor(be, [1], [1])).toArray())[0];
  assert.ok(Number.isFinite(far) && far > 60, `far = ${far}`);
});

/** Two classes of 8x8 images: a horizontal or a vertical bar at a random place, plus noise. */
function bars(n: number, seed: number) {
  const r = new Random(seed, 0), S = 8, images = new Float32Array(n * S * S), labels = [];
  for (let i = 0; i < n; i++) {
    const y = r.int(0, 2), at = r.int(1, 7), noise = r.normals(S * S);
    for (let a = 0; a < S; a++) {
      for (let b = 0; b < S; b++) {
        const on = y === 0 ? a === at : b === at;
        images[i * S * S + a * S + b] = (on ? 1 : -1) + 0.3 * noise[a * S + b];
      }
    }
    labels.push(y);
  }
  return { images, labels, shape: [n, 1, S, S] };
}

Deno.test("the classifier learns a tiny synthetic problem; save and load round-trip", async () => {
  const train = bars(256, 1), test = bars(100, 2), be = createReferenceBackend();
  const model = await trainClassifier({
    ...train,
    classes: 2,
    steps: 120,
    batchSize: 32,
    lr: 3e-3,
    seed: 5,
    backend: be,
    config: { widths: [4, 8, 8], features: 16 },
    progressEvery: 40,
  });
  assert.equal(model.stepsTrained, 120);
  const out = await classify(model, test.images, 32);
  assert.equal(out.probabilities.length, 100 * 2);
  assert.equal(out.features.length, 100 * 16);
  const acc = accuracy(out.probabilities, test.labels);
  assert.ok(acc >= 0.95, `test accuracy ${acc}`);

  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/c.safetensors`;
    await saveClassifier(model, path, { testAccuracy: String(acc) });
    const { model: back, metadata } = await loadClassifier(path, be);
    assert.equal(metadata.format, CLASSIFIER_FORMAT);
    assert.equal(metadata.testAccuracy, String(acc));
    assert.deepEqual(back.config, model.config);
    assert.equal(back.stepsTrained, 120);
    assert.deepEqual(await back.weights(), await model.weights());
    const again = await classify(back, test.images, 50);
    assert.deepEqual(again.probabilities, out.probabilities);
    assert.deepEqual(again.features, out.features);
    // Re-encoding the loaded model gives the same bytes.
    assert.deepEqual(await encodeClassifier(back), await encodeClassifier(model));

    await assert.rejects(() => loadClassifier(`${dir}/missing.safetensors`, be), FileFormatError);
    const other = encodeSafetensors(new Map(), { format: "deno-diffusion/model@1" });
    await assert.rejects(() => decodeClassifier(other, "x", be), FileFormatError);
    const bytes = await encodeClassifier(model);
    await assert.rejects(
      () => decodeClassifier(bytes.subarray(0, bytes.length - 4), "x", be),
      FileFormatError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainClassifier and classify reject bad input with OptionError", async () => {
  const t = bars(4, 3), be = createReferenceBackend();
  await assert.rejects(
    () => trainClassifier({ ...t, labels: [0, 1, 2, 0], classes: 2, steps: 1, backend: be }),
    OptionError,
  );
  await assert.rejects(
    () => trainClassifier({ ...t, shape: [4, 1, 8, 7], steps: 1, backend: be }),
    OptionError,
  );
  const model = await trainClassifier({ ...t, classes: 2, steps: 0, backend: be });
  await assert.rejects(() => classify(model, new Float32Array(63)), OptionError);
});
