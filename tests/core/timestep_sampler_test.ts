/**
 * The importance sampler of timesteps: its distribution, draws and weights, unbiasedness, warm-up
 * and running means; importance-sampled training against uniform training, resuming, and its
 * statistics in model files.
 */

import assert from "node:assert/strict";
import {
  emptyTimestepStats,
  ImportanceSampler,
  LOSS_RATE,
  TIMESTEP_BINS,
  timestepBins,
  WARMUP_COUNT,
} from "../../src/diffusion/timestep_sampler.ts";
import { FileFormatError, OptionError } from "../../src/errors.ts";
import { decodeModel, encodeModel, TIMESTEP_STATS_NAMES } from "../../src/io/model_file.ts";
import { decodeSafetensors, encodeSafetensors } from "../../src/io/safetensors.ts";
import { Random, uniformToInt } from "../../src/random.ts";
import { train, type TrainOptions } from "../../src/train.ts";
import { TINY_TRAINING } from "../helpers/tiny_training.ts";

/** A warm sampler over T = 4 (one t per bin) with the given weights and mean losses. */
function warmSampler(lambda: number[], loss: number[]): ImportanceSampler {
  const stats = {
    loss: Float32Array.from(loss),
    count: new Float32Array(4).fill(WARMUP_COUNT),
  };
  return new ImportanceSampler(4, Float64Array.from([0, ...lambda]), stats);
}

Deno.test("importance sampler: p_t is sqrt(lambda_t * mean loss) normalised, 10% uniform mixed in", () => {
  // sqrt(lambda * loss) = [1, 2, 1, 0], sum 4: p = 0.9 * [1, 2, 1, 0] / 4 + 0.1 / 4.
  const s = warmSampler([1, 1, 0.25, 1], [1, 4, 4, 0]);
  const p = s.probabilities();
  const want = [0.25, 0.475, 0.25, 0.025];
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(p[i] - want[i]) < 1e-12, `p[${i}] = ${p[i]}`);
});

Deno.test("importance sampler: draws invert the CDF and weight each t by 1 / (T p_t)", () => {
  const s = warmSampler([1, 1, 0.25, 1], [1, 4, 4, 0]);
  // CDF: 0.25, 0.725, 0.975, 1.
  const u = [0, 0.2499, 0.2501, 0.7249, 0.7251, 0.9749, 0.9751, 0.9999];
  const t = new Float32Array(u.length), w = new Float64Array(u.length);
  s.draw(u, t, w);
  assert.deepEqual(Array.from(t), [1, 1, 2, 2, 3, 3, 4, 4]);
  const p = [0.25, 0.475, 0.25, 0.025];
  for (let i = 0; i < u.length; i++) {
    assert.ok(Math.abs(w[i] - 1 / (4 * p[t[i] - 1])) < 1e-9, `weight of t = ${t[i]}: ${w[i]}`);
  }
});

Deno.test("importance sampler: weighted draws estimate the uniform mean without bias", () => {
  const T = 200, lambda = new Float64Array(T + 1);
  for (let t = 1; t <= T; t++) lambda[t] = Math.min(1, 5 * t / T);
  const stats = emptyTimestepStats(T);
  for (let b = 0; b < stats.loss.length; b++) {
    stats.loss[b] = 1 / (1 + b);
    stats.count[b] = WARMUP_COUNT;
  }
  const s = new ImportanceSampler(T, lambda, stats);
  assert.ok(s.warm);
  const f = (t: number) => Math.sin(t / 17) + t / T; // any function of t
  let uniformMean = 0;
  for (let t = 1; t <= T; t++) uniformMean += f(t) / T;
  const n = 200_000, u = new Random(9).uniforms(n);
  const t = new Float32Array(n), w = new Float64Array(n);
  s.draw(u, t, w);
  let est = 0, meanWeight = 0;
  for (let i = 0; i < n; i++) {
    est += (w[i] * f(t[i])) / n;
    meanWeight += w[i] / n;
  }
  assert.ok(Math.abs(est - uniformMean) < 0.01, `estimate ${est} vs ${uniformMean}`);
  assert.ok(Math.abs(meanWeight - 1) < 0.01, `mean weight ${meanWeight}`);
  // ... and the draws do follow p: small t (low lambda, high loss) far from uniform's share.
  const p = s.probabilities();
  let pLow = 0, seenLow = 0;
  for (let i = 0; i < 20; i++) pLow += p[i];
  for (let i = 0; i < n; i++) if (t[i] <= 20) seenLow++;
  assert.ok(Math.abs(pLow - 0.1) > 0.02, `p(t <= 20) = ${pLow} should differ from uniform's 0.1`);
  assert.ok(Math.abs(seenLow / n - pLow) < 0.005, `drawn ${seenLow / n} vs p ${pLow}`);
});

Deno.test("importance sampler: uniform with weight 1 until every bin has seen enough samples", () => {
  const T = 100, s = new ImportanceSampler(T, new Float64Array(T + 1).fill(1));
  assert.equal(s.stats.loss.length, TIMESTEP_BINS);
  assert.equal(timestepBins(7), 7);
  const u = [0.001, 0.5, 0.999], t = new Float32Array(3), w = new Float64Array(3);
  // All bins but the last have seen plenty (with very uneven losses): still uniform.
  for (let b = 0; b < TIMESTEP_BINS - 1; b++) {
    s.stats.count[b] = 1 / LOSS_RATE;
    s.stats.loss[b] = b === 0 ? 100 : 0.01;
  }
  s.stats.count[TIMESTEP_BINS - 1] = WARMUP_COUNT - 1;
  assert.equal(s.warm, false);
  s.draw(u, t, w);
  assert.deepEqual(Array.from(t), u.map((x) => uniformToInt(x, 1, T + 1)));
  assert.deepEqual(Array.from(w), [1, 1, 1]);
  s.update([T], [0.01]); // t = T is in the last bin
  assert.equal(s.warm, true);
  s.draw(u, t, w);
  assert.ok(t[1] <= 2, `with bin 0's loss dominating, the median draw is in it (t = ${t[1]})`);
});

Deno.test("importance sampler: running means are plain means at first, then forget at LOSS_RATE", () => {
  const s = new ImportanceSampler(2, Float64Array.from([0, 1, 1]));
  s.update([1, 1, 1, 2], [1, 2, 6, 5]);
  assert.equal(s.stats.loss[0], 3);
  assert.equal(s.stats.count[0], 3);
  assert.equal(s.stats.loss[1], 5);
  const n = 1 / LOSS_RATE;
  for (let i = 3; i < n + 50; i++) s.update([1], [3]);
  assert.equal(s.stats.count[0], n);
  s.update([1], [3 + n]); // one more sample moves the capped mean by LOSS_RATE of the difference
  assert.ok(Math.abs(s.stats.loss[0] - 4) < 1e-5, `mean ${s.stats.loss[0]}`);
});

const opts: TrainOptions = {
  ...TINY_TRAINING,
  steps: 70,
  minSnrGamma: 5,
  timestepSampling: "importance",
};

async function sameWeights(
  a: Awaited<ReturnType<typeof train>>,
  b: Awaited<ReturnType<typeof train>>,
): Promise<boolean> {
  const wa = await a.weights("raw"), wb = await b.weights("raw");
  return [...wa].every(([name, v]) => wb.get(name)!.every((x, i) => x === v[i]));
}

Deno.test("importance-sampled training equals uniform training bit for bit until the warm-up ends", async () => {
  // T = 100: 50 bins of 2 timesteps need 1,000 samples before leaving uniform; 10 steps of 16 are
  // far from it.
  const cold = { ...opts, steps: 10, schedule: { kind: "cosine", T: 100 } } as const;
  const uniform = await train({ ...cold, timestepSampling: "uniform" });
  const importance = await train(cold);
  assert.equal(importance.timestepStats!.count.reduce((a, b) => a + b), 160);
  assert.equal(uniform.timestepStats, null);
  assert.ok(await sameWeights(uniform, importance));
});

Deno.test("importance-sampled training leaves uniform after warm-up and resumes exactly", async () => {
  const straight = await train(opts);
  const uniform = await train({ ...opts, timestepSampling: "uniform" });
  assert.equal(await sameWeights(straight, uniform), false);

  const ctl = new AbortController();
  let warmAt = 0;
  const half = await train({
    ...opts,
    signal: ctl.signal,
    onProgress: (p) => {
      if (p.step === 50) ctl.abort();
    },
    onCheckpoint: (m) => {
      warmAt = m.timestepStats!.count.every((c) => c >= WARMUP_COUNT) ? m.stepsTrained : 0;
    },
  });
  assert.equal(warmAt, 50, "the sampler is warm when the run stops");
  const loaded = await decodeModel(await encodeModel(half), "half.safetensors", "reference");
  assert.deepEqual(loaded.timestepStats, half.timestepStats);
  const resumed = await train({ ...opts, resume: loaded });
  assert.ok(await sameWeights(straight, resumed));
  assert.deepEqual(resumed.timestepStats, straight.timestepStats);
});

Deno.test("importance sampling: a loss other than l2 and a bad name are refused", async () => {
  await assert.rejects(
    () => train({ ...opts, minSnrGamma: null, loss: "l1" }),
    (e) => e instanceof OptionError && /timestepSampling "importance".*"l2"/.test(e.message),
  );
  await assert.rejects(
    // @ts-expect-error: not a sampling
    () => train({ ...opts, timestepSampling: "loss-aware" }),
    (e) => e instanceof OptionError && /timestepSampling/.test(e.message),
  );
});

Deno.test("model files: the sampler's statistics must come in pairs, sized for T, in range", async () => {
  const model = await train({ ...opts, steps: 30 });
  const { tensors, metadata } = decodeSafetensors(await encodeModel(model), "m");
  const edited = (edit: (t: typeof tensors) => void) => {
    const copy = new Map(tensors);
    edit(copy);
    return decodeModel(encodeSafetensors(copy, metadata), "m.safetensors", "reference");
  };
  assert.deepEqual((await edited(() => {})).timestepStats, model.timestepStats);
  await assert.rejects(
    () => edited((t) => t.delete(TIMESTEP_STATS_NAMES.count)),
    (e) => e instanceof FileFormatError && /only one of the timestep sampler/.test(e.message),
  );
  await assert.rejects(
    () =>
      edited((t) => t.set(TIMESTEP_STATS_NAMES.loss, { shape: [3], data: new Float32Array(3) })),
    (e) => e instanceof FileFormatError && /timesteps.loss has shape \[3\]/.test(e.message),
  );
  await assert.rejects(
    () =>
      edited((t) =>
        t.set(TIMESTEP_STATS_NAMES.count, { shape: [20], data: new Float32Array(20).fill(0.5) })
      ),
    (e) => e instanceof FileFormatError && /out of range/.test(e.message),
  );
});
