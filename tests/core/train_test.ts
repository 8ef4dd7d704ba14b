/**
 * train(): seeding, samples independent of the sampling batch, learning a shifted Gaussian, every
 * prediction type and loss, min-SNR weighting, Adam's betas, aborting, progress reports and bad options.
 */

import assert from "node:assert/strict";
import { OptionError } from "../../src/errors.ts";
import { sample } from "../../src/sample.ts";
import { type Dataset, train, type TrainOptions } from "../../src/train.ts";
import { Random } from "../../src/random.ts";

function gaussianData(n: number, seed: number): Dataset {
  const r = new Random(seed), z = r.normals(2 * n), v = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    v[2 * i] = 0.3 * z[2 * i] + 1;
    v[2 * i + 1] = 0.3 * z[2 * i + 1] - 1;
  }
  return { values: v, shape: [n, 2] };
}

const tiny: Omit<TrainOptions, "data"> = {
  steps: 40,
  batchSize: 16,
  network: { hidden: 16 },
  schedule: { kind: "cosine", T: 20 },
  progressEvery: 10,
  backend: "reference",
};

Deno.test("the same seed gives the same model and samples; another seed does not", async () => {
  const data = gaussianData(200, 1);
  const a = await train({ data, ...tiny, seed: 7 });
  const b = await train({ data, ...tiny, seed: 7 });
  const c = await train({ data, ...tiny, seed: 8 });
  const wa = await a.weights("raw"), wb = await b.weights("raw"), wc = await c.weights("raw");
  for (const [name, v] of wa) assert.deepEqual(wb.get(name), v, name);
  assert.notDeepEqual(wc.get("net.0.weight"), wa.get("net.0.weight"));
  const sa = await sample(a, { count: 30, seed: 1 }), sb = await sample(b, { count: 30, seed: 1 });
  assert.deepEqual(sa.values, sb.values);
  const sc = await sample(a, { count: 30, seed: 2 });
  assert.notDeepEqual(sc.values, sa.values);
});

Deno.test("samples do not depend on the batch size they are drawn in", async () => {
  const model = await train({ data: gaussianData(100, 2), ...tiny });
  const one = await sample(model, { count: 30, seed: 3 });
  for (const batchSize of [1, 4, 7]) {
    const chunked = await sample(model, { count: 30, seed: 3, batchSize });
    assert.deepEqual(chunked.values, one.values, `batchSize ${batchSize}`);
  }
});

Deno.test("training lowers the loss and learns a shifted Gaussian's mean", async () => {
  const data = gaussianData(2000, 3);
  const losses: number[] = [];
  const model = await train({
    data,
    steps: 600,
    batchSize: 64,
    lr: 3e-3,
    network: { hidden: 32 },
    schedule: { kind: "cosine", T: 50 },
    progressEvery: 50,
    onProgress: (p) => losses.push(p.loss),
    backend: "reference",
  });
  const head = losses.slice(0, 2).reduce((a, b) => a + b) / 2;
  const tail = losses.slice(-4).reduce((a, b) => a + b) / 4;
  assert.ok(tail < 0.8 * head, `loss ${head} -> ${tail}`);
  const s = await sample(model, { count: 2000, seed: 4 });
  let mx = 0, my = 0;
  for (let i = 0; i < 2000; i++) {
    mx += s.values[2 * i] / 2000;
    my += s.values[2 * i + 1] / 2000;
  }
  assert.ok(Math.abs(mx - 1) < 0.15 && Math.abs(my + 1) < 0.15, `sample mean (${mx}, ${my})`);
});

Deno.test("every prediction type and loss trains to a finite loss", async () => {
  const data = gaussianData(100, 4);
  for (const prediction of ["epsilon", "x0", "v"] as const) {
    for (const loss of ["l2", "l1", "huber"] as const) {
      let last = NaN;
      await train({
        data,
        ...tiny,
        steps: 10,
        prediction,
        loss,
        onProgress: (p) => (last = p.loss),
      });
      assert.ok(Number.isFinite(last) && last > 0, `${prediction}/${loss}: ${last}`);
    }
  }
});

Deno.test("min-SNR weighting: a gamma above every SNR changes nothing, a small one lowers the loss", async () => {
  const data = gaussianData(100, 7);
  const run = async (minSnrGamma: number | null) => {
    const losses: number[] = [];
    const model = await train({
      data,
      ...tiny,
      steps: 20,
      minSnrGamma,
      onProgress: (p) => losses.push(p.loss),
    });
    return { losses, weights: await model.weights("raw") };
  };
  const plain = await run(null), huge = await run(1e30), small = await run(0.05);
  // Epsilon weights are min(SNR, gamma) / SNR: exactly 1 when gamma exceeds every SNR.
  assert.deepEqual(huge.losses, plain.losses);
  for (const [name, v] of plain.weights) assert.deepEqual(huge.weights.get(name), v, name);
  // With gamma 0.05 most timesteps (SNR > 0.05) weigh less than 1: the first loss, before any
  // update has told the runs apart, is smaller.
  assert.ok(small.losses[0] < plain.losses[0], `${small.losses[0]} vs ${plain.losses[0]}`);
});

Deno.test("adamBetas reach the optimizer: PyTorch's [0.9, 0.999] is the default, others differ", async () => {
  const data = gaussianData(100, 4), opts = { data, ...tiny, steps: 5 };
  const base = await (await train(opts)).weights("raw");
  const same = await (await train({ ...opts, adamBetas: [0.9, 0.999] })).weights("raw");
  const fast = await (await train({ ...opts, adamBetas: [0.9, 0.5] })).weights("raw");
  const first = await (await train({ ...opts, adamBetas: [0.5, 0.999] })).weights("raw");
  for (const [name, v] of base) assert.deepEqual(same.get(name), v, name);
  assert.notDeepEqual(fast.get("net.0.weight"), base.get("net.0.weight"));
  assert.notDeepEqual(first.get("net.0.weight"), base.get("net.0.weight"));
  assert.notDeepEqual(first.get("net.0.weight"), fast.get("net.0.weight"));
});

Deno.test("an AbortSignal stops training cleanly with the steps done so far", async () => {
  const data = gaussianData(100, 5);
  const ctl = new AbortController();
  const model = await train({
    data,
    ...tiny,
    steps: 1000,
    progressEvery: 5,
    onProgress: (p) => {
      if (p.step >= 20) ctl.abort();
    },
    signal: ctl.signal,
  });
  assert.ok(model.stepsTrained >= 20 && model.stepsTrained < 1000, `${model.stepsTrained}`);
});

Deno.test("progress reports step, loss and speed", async () => {
  const seen: number[] = [];
  await train({
    data: gaussianData(50, 6),
    ...tiny,
    onProgress: (p) => {
      assert.ok(p.stepsPerSecond > 0 && Number.isFinite(p.loss) && p.steps === 40);
      seen.push(p.step);
    },
  });
  assert.deepEqual(seen, [10, 20, 30, 40]);
});

Deno.test("bad options end in an OptionError naming the option", async () => {
  const data = gaussianData(10, 1);
  const cases: [Partial<TrainOptions>, RegExp][] = [
    [{ steps: -1 }, /steps/],
    [{ batchSize: 0 }, /batchSize/],
    [{ lr: -1 }, /lr/],
    [{ schedule: { kind: "linear", T: 1, betaStart: 1e-4, betaEnd: 0.02 } }, /T must be/],
    [{ schedule: { kind: "linear", T: 10, betaStart: 1e-4, betaEnd: 1.5 } }, /betaEnd/],
    [{ emaDecay: 1 }, /emaDecay/],
    [{ prediction: "noise" as "epsilon" }, /prediction/],
    [{ loss: "l3" as "l2" }, /loss/],
    [{ data: { values: new Float32Array(5), shape: [2, 2] } }, /data.shape/],
    [{ data: { values: new Float32Array([1, NaN]), shape: [1, 2] } }, /non-finite/],
    [{ backend: "cuda" as "auto" }, /backend/],
    [{ minSnrGamma: 0 }, /minSnrGamma/],
    [{ minSnrGamma: 5, loss: "l1" }, /minSnrGamma weights the squared error; set loss to "l2"/],
    [{ adamBetas: [0.9, 1] }, /adamBetas\[1\]/],
    [{ adamBetas: [-0.1, 0.99] }, /adamBetas\[0\]/],
    [{ adamBetas: [0.9] as unknown as [number, number] }, /adamBetas must be \[beta1, beta2\]/],
  ];
  for (const [opts, re] of cases) {
    await assert.rejects(() => train({ data, ...tiny, ...opts }), (e: Error) => {
      assert.ok(e instanceof OptionError, `${e.name}: ${e.message}`);
      assert.match(e.message, re);
      return true;
    });
  }
});
