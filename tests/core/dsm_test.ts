/**
 * Denoising score matching (`train({ objective: "dsm" })`, src/diffusion/score_matching.ts): the
 * loss's gradient against finite differences and its value on a case worked by hand, the geometric
 * noise levels and the log-sigma conditioning against their formulas, score models in files
 * (round trip, bad levels, old files), the options refused, the score of a score model, annealed
 * Langevin dynamics and the VE -> VP mapping with the exact score of Gaussian data, sampling a
 * score model end to end, and a short training on the spiral lowering the loss.
 */

import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { Denoiser } from "../../src/diffusion/denoiser.ts";
import { NoiseLevels } from "../../src/diffusion/noise_level.ts";
import {
  geometricSigmas,
  makeSchedule,
  type VeScheduleConfig,
} from "../../src/diffusion/schedule.ts";
import {
  epsilonFromScore,
  ScoreMatchingObjective,
  scoreTime,
} from "../../src/diffusion/score_matching.ts";
import { FileFormatError, OptionError } from "../../src/errors.ts";
import { decodeSafetensors, encodeSafetensors } from "../../src/io/safetensors.ts";
import { encodeModel, loadModel, saveModel } from "../../src/io/model_file.ts";
import { DiffusionModel } from "../../src/model.ts";
import type { Network } from "../../src/models/network.ts";
import { networkSpecs } from "../../src/models/registry.ts";
import { ParamLayout } from "../../src/nn/params.ts";
import { add, mul } from "../../src/ops/elementwise.ts";
import { reshape } from "../../src/ops/shape.ts";
import { Random } from "../../src/random.ts";
import { sample } from "../../src/sample.ts";
import { createSampler } from "../../src/samplers/registry.ts";
import type { StepContext } from "../../src/samplers/sampler.ts";
import { noGrad, type Tensor, tensor } from "../../src/tensor.ts";
import { type Dataset, resolveTrainOptions, train, type TrainOptions } from "../../src/train.ts";
import { sampleToy, standardize } from "../../src/data/toy.ts";
import { float64Backend, gradCheck } from "../helpers/gradcheck.ts";
import { meanVar, runSampler } from "../helpers/sampling.ts";
import { arr } from "../../src/backends/reference/memory.ts";

const be = float64Backend();

/** A network of the test's own making: out = forward(x, t). */
function netOf(forward: (x: Tensor, t: Tensor) => Tensor): Network {
  return { forward: (x, t) => forward(x, t) };
}

Deno.test("dsm: the loss's gradient matches central finite differences (float64)", async () => {
  const schedule = makeSchedule({ kind: "ve", T: 6, sigmaMin: 0.05, sigmaMax: 3 });
  const objective = new ScoreMatchingObjective(be, schedule);
  const r = new Random(5);
  // x0 and the weights of out = x w + b + t v are differentiated; the levels and noise are fixed.
  await gradCheck(be, [
    { data: r.normals(6), shape: [3, 2] },
    { data: r.normals(2), shape: [1, 2] },
    { data: r.normals(2), shape: [1, 2] },
    { data: r.normals(2), shape: [1, 2] },
    { data: [1, 4, 6], shape: [3], grad: false },
    { data: r.normals(6), shape: [3, 2], grad: false },
  ], ([x0, w, b, v, t, z]) => {
    const net = netOf((x, tt) => add(add(mul(x, w), b), mul(reshape(tt, [3, 1]), v)));
    return objective.loss(net, x0, t, z).loss;
  });
});

Deno.test("dsm: the loss on a tiny case, worked by hand", async () => {
  // Levels 0.1, 0.2, 0.4; samples at t = 1 (sigma 0.1) and t = 3 (sigma 0.4); out = x / 2.
  const schedule = makeSchedule({ kind: "ve", T: 3, sigmaMin: 0.1, sigmaMax: 0.4 });
  const objective = new ScoreMatchingObjective(be, schedule);
  const x0 = tensor(be, [1, -1, 0.5, 2], [2, 2]), z = tensor(be, [0.5, -1, 2, 0], [2, 2]);
  const t = tensor(be, [1, 3], [2]);
  const { loss, perSample } = objective.loss(
    netOf((x) => mul(x, tensor(be, [0.5], [1]))),
    x0,
    t,
    z,
    { perSample: true },
  );
  // x = x0 + sigma z = [1.05, -1.1], [1.3, 2.0]; out = [0.525, -0.55], [0.65, 1.0];
  // out + z = [1.025, -1.55], [2.65, 1.0]; squares 1.050625, 2.4025, 7.0225, 1.
  const value = (await loss.toArray())[0];
  assert.ok(Math.abs(value - 11.475625 / 4) < 1e-12, `loss ${value}`);
  const per = await perSample!.toArray();
  assert.ok(Math.abs(per[0] - (1.050625 + 2.4025) / 2) < 1e-12, `sample 0: ${per[0]}`);
  assert.ok(Math.abs(per[1] - (7.0225 + 1) / 2) < 1e-12, `sample 1: ${per[1]}`);
  // The same number in the score form sigma^2 (s + z / sigma)^2 with s = out / sigma.
  const sig = [0.1, 0.1, 0.4, 0.4], out = [0.525, -0.55, 0.65, 1.0], zs = [0.5, -1, 2, 0];
  const scoreForm = sig.reduce((acc, s, i) => acc + s * s * (out[i] / s + zs[i] / s) ** 2, 0) / 4;
  assert.ok(Math.abs(value - scoreForm) < 1e-12, `${value} vs ${scoreForm}`);
});

Deno.test("dsm: geometric levels, their VP schedule and the log-sigma conditioning", () => {
  const config: VeScheduleConfig = { kind: "ve", T: 5, sigmaMin: 0.01, sigmaMax: 10 };
  // sigma_t = 0.01 * 1000^((t - 1) / 4).
  const want = [0.01, 0.0562341325190349, 0.31622776601683794, 1.7782794100389228, 10];
  const got = geometricSigmas(config);
  const levels = new NoiseLevels(makeSchedule(config));
  const schedule = makeSchedule(config);
  for (let t = 1; t <= 5; t++) {
    const s = want[t - 1];
    assert.ok(Math.abs(got[t - 1] - s) < 1e-12 * s, `sigma_${t} ${got[t - 1]} vs ${s}`);
    assert.ok(Math.abs(levels.sigmaVE(t) - s) < 1e-9 * s, `sigma_VE(${t}) ${levels.sigmaVE(t)}`);
    const ab = schedule.alphasCumprod[t - 1];
    assert.ok(Math.abs(ab - 1 / (1 + s * s)) < 1e-12, `alphaBar_${t} ${ab}`);
    // The i-th level is asked at t = i; the MLP's scalar input is log sigma rescaled.
    assert.ok(Math.abs(scoreTime(config, s) - t) < 1e-12, `t(sigma_${t})`);
    const scalar = (scoreTime(config, s) - 1) / 4 - 0.5;
    assert.ok(Math.abs(scalar - (Math.log(s / 0.01) / Math.log(1000) - 0.5)) < 1e-12);
  }
  // Between levels: linear in log sigma, so the geometric mean of two levels sits halfway.
  assert.ok(Math.abs(scoreTime(config, Math.sqrt(want[1] * want[2])) - 2.5) < 1e-12);
  assert.ok(Math.abs(levels.sigmaVE(2.5) - Math.sqrt(want[1] * want[2])) < 1e-9);
  for (const bad of [{ sigmaMin: 1, sigmaMax: 1 }, { sigmaMin: 0, sigmaMax: 1 }]) {
    assert.throws(() => geometricSigmas({ ...config, ...bad }), RangeError);
  }
});

/** 64 points of two offset clusters, from a tiny fixed generator (no library code). */
function toyData(): Dataset {
  const n = 64, values = new Float32Array(2 * n);
  let s = 99;
  const u = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 2 * n; i++) values[i] = (i % 4 < 2 ? 1 : -1) + 0.2 * (u() - 0.5);
  return { values, shape: [n, 2] };
}

const TINY_DSM: TrainOptions = {
  data: toyData(),
  objective: "dsm",
  schedule: { kind: "ve", T: 8, sigmaMin: 0.05, sigmaMax: 4 },
  steps: 5,
  batchSize: 8,
  network: { hidden: 8 },
  backend: "reference",
};

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dsm_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("dsm: a score model round-trips through its file; bad levels are refused", async () => {
  const model = await train(TINY_DSM);
  assert.equal(model.config.objective, "dsm");
  assert.deepEqual(model.config.schedule, TINY_DSM.schedule);
  await withTempDir(async (dir) => {
    const path = `${dir}/dsm.safetensors`;
    await saveModel(model, path);
    const back = await loadModel(path, "reference");
    assert.deepEqual(back.config, model.config);
    const [a, b] = [await model.weights("ema"), await back.weights("ema")];
    for (const [name, v] of a) assert.deepEqual(b.get(name), v, name);
    const opts = { count: 20, seed: 3, sampler: "langevin" as const };
    assert.deepEqual((await sample(back, opts)).values, (await sample(model, opts)).values);

    const bytes = await encodeModel(model);
    const write = async (name: string, edit: (config: Record<string, unknown>) => void) => {
      const { tensors, metadata } = decodeSafetensors(bytes);
      const config = JSON.parse(metadata.config);
      edit(config);
      const p = `${dir}/${name}.safetensors`;
      await Deno.writeFile(
        p,
        encodeSafetensors(tensors, { ...metadata, config: JSON.stringify(config) }),
      );
      return p;
    };
    const refused: [string, (c: Record<string, unknown>) => void, RegExp][] = [
      ["equal", (c) => (c.schedule as VeScheduleConfig).sigmaMin = 4, /sigmaMax/],
      ["inverted", (c) => (c.schedule as VeScheduleConfig).sigmaMax = 0.01, /sigmaMax/],
      ["negative", (c) => (c.schedule as VeScheduleConfig).sigmaMin = -1, /sigmaMin/],
      ["infinite", (c) => (c.schedule as VeScheduleConfig).sigmaMax = 1e999, /sigmaMax/],
      ["levels", (c) => (c.schedule as VeScheduleConfig).T = 100_001, /T must be an integer/],
      [
        "linear",
        (c) => c.schedule = { kind: "linear", T: 8, betaStart: 1e-4, betaEnd: 0.02 },
        /"ve"/,
      ],
      ["objective", (c) => c.objective = "sliced", /objective/],
    ];
    for (const [name, edit, problem] of refused) {
      const p = await write(name, edit);
      await assert.rejects(loadModel(p, "reference"), (e: unknown) => {
        assert.ok(e instanceof FileFormatError, `${name}: ${e}`);
        assert.ok(e.message.includes(p), `${name}: names the file: ${e.message}`);
        assert.match(e.message, problem, name);
        return true;
      });
    }
  });
});

Deno.test("dsm: a file without the objective field loads as a DDPM model", async () => {
  const model = await train({
    ...TINY_DSM,
    objective: undefined,
    schedule: { kind: "cosine", T: 8 },
  });
  assert.equal(model.config.objective, undefined, "DDPM configurations are as they always were");
  const { tensors, metadata } = decodeSafetensors(await encodeModel(model));
  assert.ok(!metadata.config.includes("objective"));
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/old.safetensors`, encodeSafetensors(tensors, metadata));
    const back = await loadModel(`${dir}/old.safetensors`, "reference");
    assert.equal(back.config.objective, undefined);
    assert.equal(back.denoiser().objective, "ddpm");
  });
});

Deno.test("dsm: options that do not fit end in one OptionError naming the option", async () => {
  const cases: [Partial<TrainOptions> & Record<string, unknown>, RegExp][] = [
    [{ schedule: { kind: "ve", T: 8, sigmaMin: 1, sigmaMax: 1 } }, /sigmaMax/],
    [{ schedule: { kind: "ve", T: 8, sigmaMin: 2, sigmaMax: 1 } }, /sigmaMax/],
    [{ schedule: { kind: "ve", T: 8, sigmaMin: 0, sigmaMax: 1 } }, /sigmaMin/],
    [{ schedule: { kind: "ve", T: 1, sigmaMin: 0.1, sigmaMax: 1 } }, /T must be/],
    [{ objective: "score" as "dsm" }, /objective/],
    [{ schedule: { kind: "cosine", T: 8 } }, /schedule/],
    [{ prediction: "x0" }, /prediction/],
    [{ minSnrGamma: 5 }, /minSnrGamma/],
    [{ loss: "huber" }, /loss/],
    [{ timestepSampling: "importance" }, /timestepSampling/],
    [{ data: { ...toyData(), labels: new Int32Array(64) } }, /data\.labels/],
  ];
  for (const [extra, name] of cases) {
    await assert.rejects(train({ ...TINY_DSM, ...extra }), (e: unknown) => {
      assert.ok(e instanceof OptionError, `${JSON.stringify(extra)}: ${e}`);
      assert.match(e.message, name);
      return true;
    });
  }
  // Sampling a score model: unguided and without edits.
  const model = await train({ ...TINY_DSM, steps: 1 });
  const init = new Float32Array(4);
  for (
    const [extra, name] of [[{ init, strength: 0.5 }, /init/], [{ classes: 0 }, /classes/]] as const
  ) {
    await assert.rejects(
      sample(model, { count: 2, sampler: "langevin", ...extra }),
      (e: unknown) => {
        assert.ok(e instanceof OptionError, `${Object.keys(extra)}: ${e}`);
        assert.match(e.message, name);
        return true;
      },
    );
  }
  // The defaults: 50 levels from 0.01 to 10.
  const o = resolveTrainOptions({ data: toyData(), objective: "dsm" });
  assert.deepEqual(o.config.schedule, { kind: "ve", T: 50, sigmaMin: 0.01, sigmaMax: 10 });
  assert.equal(o.config.objective, "dsm");
});

Deno.test("dsm: a score model's score is its output over sigma, at its own x", async () => {
  const model = await train({ ...TINY_DSM, steps: 1 });
  const x = tensor(model.backend, [0.3, -0.7, 1.2, 0.4], [2, 2]);
  const sigmas = geometricSigmas(TINY_DSM.schedule as VeScheduleConfig);
  for (const t of [1, 5, 8]) {
    const out = await noGrad(() =>
      model.network("ema").forward(x, tensor(model.backend, [t, t], [2]))
    ).toArray();
    const score = await noGrad(() => model.score(x, t)).toArray();
    for (let i = 0; i < 4; i++) {
      const want = out[i] / sigmas[t - 1];
      assert.ok(Math.abs(score[i] - want) < 1e-4 * Math.max(1, Math.abs(want)), `t ${t}`);
    }
  }
});

/** The exact score model of N(mu, s^2) data: sigma times -(x - mu) / (s^2 + sigma^2). */
function exactScoreModel(levels: NoiseLevels, mu: number, s2: number) {
  return (x: Tensor, t: number): Tensor => {
    const sigma = levels.sigmaVE(t), xs = arr(x.storage);
    return tensor(be, Array.from(xs, (v) => (-sigma * (v - mu)) / (s2 + sigma * sigma)), x.shape);
  };
}

const N = 4000, MU = 1.5, S2 = 0.25;

Deno.test("dsm: annealed Langevin with the exact score reaches the data's mean and variance", () => {
  const schedule = makeSchedule({ kind: "ve", T: 50, sigmaMin: 0.01, sigmaMax: 10 });
  const levels = new NoiseLevels(schedule);
  const sampler = createSampler("langevin", schedule, "epsilon", { langevinSteps: 4 }, "dsm");
  assert.equal(sampler.varianceExploding, true);
  const denoiser = new Denoiser(exactScoreModel(levels, MU, S2), schedule, "epsilon", null, "dsm");
  const r = new Random(11);
  // x from N(0, sigmaMax^2), as sample() starts a score model's chain.
  let x = tensor(be, Array.from(r.normals(N), (v) => 10 * v), [N, 1]);
  const [m0, v0] = meanVar(arr(x.storage));
  assert.ok(Math.abs(m0) < 0.5 && Math.abs(v0 - 100) < 8, `start ${m0} ${v0}`);
  for (let i = 0; i < sampler.timesteps.length; i++) {
    const ctx: StepContext = {
      denoiser,
      noise: () => tensor(be, r.normals(N), [N, 1]),
      keep: () => {},
    };
    x = sampler.step(ctx, i, x);
  }
  const [m, v] = meanVar(arr(x.storage));
  assert.ok(Math.abs(m - MU) < 0.04, `mean ${m}, want ${MU}`);
  // Annealed Langevin runs a little wide (here 0.266): once delta sigma^2 is well below the data's
  // variance, the chain barely moves and keeps the variance of the level where it froze.
  assert.ok(Math.abs(v - S2) < 0.03, `variance ${v}, want ${S2}`);
});

Deno.test("dsm: every other sampler draws from a score model through the VE -> VP map", () => {
  const schedule = makeSchedule({ kind: "ve", T: 100, sigmaMin: 0.01, sigmaMax: 40 });
  const levels = new NoiseLevels(schedule);
  const eps = epsilonFromScore(exactScoreModel(levels, MU, S2), levels);
  const r = new Random(12);
  for (const kind of ["ddim", "dpm++2m"] as const) {
    const sampler = createSampler(kind, schedule, "epsilon", { steps: 100 }, "dsm");
    assert.ok(!sampler.varianceExploding, kind);
    const x = runSampler(
      sampler,
      schedule,
      "epsilon",
      eps,
      tensor(be, r.normals(N), [N, 1]),
      () => tensor(be, r.normals(N), [N, 1]),
    );
    const [m, v] = meanVar(arr(x.storage));
    assert.ok(Math.abs(m - MU) < 0.04, `${kind}: mean ${m}, want ${MU}`);
    assert.ok(Math.abs(v - S2) < 0.025, `${kind}: variance ${v}, want ${S2}`);
  }
});

Deno.test("dsm: sample() starts a score model's chain from N(0, sigmaMax^2) and steps by delta sigma^2", async () => {
  // A network whose output is the constant c (zero weights, last bias c) has score c / sigma_t:
  // each Langevin step adds (delta sigma_t^2 / 2) c / sigma_t = delta sigma_t c / 2 and noise of
  // variance delta sigma_t^2, so from N(0, sigma_T^2) after K steps a level x has mean
  // c K delta / 2 sum_t sigma_t and variance sigma_T^2 + K delta sum_t sigma_t^2; the final x0
  // estimate x + sigma_1^2 score adds sigma_1 c to the mean.
  const config = resolveTrainOptions({
    ...TINY_DSM,
    schedule: { kind: "ve", T: 4, sigmaMin: 0.5, sigmaMax: 4 },
    network: { hidden: 4 },
  }).config;
  const layout = new ParamLayout(networkSpecs(config.network));
  const c = 0.5, weights = new Float32Array(layout.length);
  const last = layout.entries[layout.entries.length - 1];
  assert.equal(last.name, "net.6.bias");
  weights.fill(c, last.offset, last.offset + last.size);
  const model = new DiffusionModel(config, createReferenceBackend(), weights, null);
  const delta = 0.5, K = 3;
  const got = await sample(model, {
    count: N,
    sampler: "langevin",
    langevinSteps: K,
    stepSize: delta,
    seed: 5,
  });
  // sigma_t = 0.5 * 2^(t - 1): 0.5, 1, 2, 4.
  const wantMean = c * (K * delta / 2 * (0.5 + 1 + 2 + 4) + 0.5);
  const wantVar = 16 + K * delta * (0.25 + 1 + 4 + 16);
  const [m, v] = meanVar(got.values); // both coordinates alike: 2N values
  assert.ok(Math.abs(m - wantMean) < 0.25, `mean ${m}, want ${wantMean}`);
  assert.ok(Math.abs(v / wantVar - 1) < 0.06, `variance ${v}, want ${wantVar}`);
});

Deno.test("dsm: a short training on the 2-D spiral lowers the loss", async () => {
  const { data } = standardize(sampleToy("spiral", 2000, new Random(1)).data, 2);
  const options: TrainOptions = {
    data: { values: data, shape: [2000, 2] },
    objective: "dsm",
    schedule: { kind: "ve", T: 20, sigmaMin: 0.01, sigmaMax: 5 },
    steps: 1000,
    batchSize: 64,
    lr: 3e-3,
    network: { hidden: 32 },
    backend: "reference",
  };
  // The loss on one fixed batch of 1,000 points, every level 50 times, before and after training
  // (the reported losses are single batches', too noisy to compare).
  const n = 1000;
  const evalLoss = async (model: DiffusionModel): Promise<number> => {
    const b = model.backend, objective = new ScoreMatchingObjective(b, model.schedule);
    const x0 = tensor(b, data.subarray(0, 2 * n), [n, 2]);
    const t = tensor(b, Array.from({ length: n }, (_, i) => 1 + (i % 20)), [n]);
    const z = tensor(b, new Random(22).normals(2 * n), [n, 2]);
    return (await noGrad(() => objective.loss(model.network("raw"), x0, t, z).loss).toArray())[0];
  };
  const before = await evalLoss(await train({ ...options, steps: 0 }));
  const after = await evalLoss(await train(options));
  // An output of 0 scores E[z^2] = 1; the optimum stays well above 0 (z's part along the spiral
  // cannot be told from x at small sigma): 0.96 -> 0.69 measured.
  assert.ok(after < 0.8 * before && after < 0.75, `loss ${before} -> ${after}`);
});
