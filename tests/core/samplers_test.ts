/**
 * The samplers against closed forms: driven by the exact model of Gaussian and Gaussian-mixture
 * data (every prediction type, the cosine, linear and sigmoid schedules), each reaches the data's
 * mean and variance; the deterministic ones are the same bit for bit run to run, and the ODE
 * solvers converge at their order (Euler first, Heun and DPM-Solver++(2M) second) to the exact
 * probability-flow map of a Gaussian; the noise a step draws does not depend on the batch size;
 * bad options end in one clear error.
 */

import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { NoiseLevels } from "../../src/diffusion/noise_level.ts";
import { makeSchedule, type Schedule } from "../../src/diffusion/schedule.ts";
import { OptionError } from "../../src/errors.ts";
import { Random } from "../../src/random.ts";
import { createSampler, type SamplerKind, SAMPLERS } from "../../src/samplers/registry.ts";
import type { SamplerOptions } from "../../src/samplers/sampler.ts";
import { sample } from "../../src/sample.ts";
import { tensor } from "../../src/tensor.ts";
import { train } from "../../src/train.ts";
import { exactModel, meanVar, type Mixture, runSampler, stepContext } from "../helpers/sampling.ts";

const be = createReferenceBackend({ dtype: "float64" });

const SCHEDULES: Record<string, Schedule> = {
  cosine: makeSchedule({ kind: "cosine", T: 1000 }),
  linear: makeSchedule({ kind: "linear", T: 1000, betaStart: 1e-4, betaEnd: 0.02 }),
  sigmoid: makeSchedule({ kind: "sigmoid", T: 1000 }),
};
const TARGETS: Record<string, Mixture> = {
  "N(0.7, 0.4^2)": { w: [1], mu: [0.7], sd: [0.4] },
  "0.3 N(-1, 0.2^2) + 0.7 N(1, 0.3^2)": { w: [0.3, 0.7], mu: [-1, 1], sd: [0.2, 0.3] },
};

/** Each sampler with settings under which its discretisation error is small. */
const SETTINGS: Record<SamplerKind, SamplerOptions> = {
  ddpm: { steps: 1000 },
  ddim: { steps: 100 },
  heun: { steps: 50, spacing: "logsnr" },
  euler: { steps: 200 },
  "euler-maruyama": { steps: 500 },
  pc: { steps: 500 },
  langevin: { steps: 200, langevinSteps: 10, stepSize: 1 },
  "dpm++2m": { steps: 30 },
  "dpm++2m-sde": { steps: 60 },
};

function moments(m: Mixture): [number, number] {
  const mean = m.w.reduce((a, w, k) => a + w * m.mu[k], 0);
  const second = m.w.reduce((a, w, k) => a + w * (m.sd[k] ** 2 + m.mu[k] ** 2), 0);
  return [mean, second - mean * mean];
}

for (const kind of SAMPLERS) {
  Deno.test(`${kind} with the exact model reaches the data's mean and variance (every schedule and prediction)`, async (t) => {
    for (const [sn, schedule] of Object.entries(SCHEDULES)) {
      for (const prediction of ["epsilon", "x0", "v"] as const) {
        for (const [tn, mix] of Object.entries(TARGETS)) {
          await t.step(`${sn}, ${prediction}, ${tn}`, async () => {
            const sampler = createSampler(kind, schedule, prediction, SETTINGS[kind]);
            const N = 4000, r = new Random(5);
            const out = runSampler(
              sampler,
              schedule,
              prediction,
              exactModel(be, schedule, prediction, mix),
              tensor(be, r.normals(N), [N, 1]),
              () => tensor(be, r.normals(N), [N, 1]),
            );
            const [m, v] = meanVar(await out.toArray()), [tm, tv] = moments(mix);
            // Sampling error alone: the mean within 0.016 sd, the variance within 2.2% (one sigma).
            assert.ok(Math.abs(m - tm) < 0.05 * Math.sqrt(tv), `mean ${m}, want ${tm}`);
            assert.ok(Math.abs(v / tv - 1) < 0.07, `variance ${v}, want ${tv}`);
          });
        }
      }
    }
  });
}

/**
 * The exact probability-flow map of N(mu, sd^2) data from x at model time `from` (a sampler's
 * first time) to the x0 estimate at t = 1.
 */
function exactOdeMap(schedule: Schedule, from: number, mu: number, sd: number, xT: number): number {
  const lv = new NoiseLevels(schedule), top = lv.level(from), one = lv.level(1);
  // Along the ODE the standardized position (x_t - a mu) / sqrt(a^2 sd^2 + s^2) is constant.
  const z = (xT - top.a * mu) / Math.sqrt(top.a ** 2 * sd * sd + top.s ** 2);
  const v1 = one.a ** 2 * sd * sd + one.s ** 2, x1 = one.a * mu + Math.sqrt(v1) * z;
  return mu + ((one.a * sd * sd) / v1) * (x1 - one.a * mu);
}

async function odeError(
  kind: SamplerKind,
  schedule: Schedule,
  options: SamplerOptions,
): Promise<number> {
  const mu = 0.7, sd = 0.4, xs = [-2, -0.5, 0.3, 1.7];
  const sampler = createSampler(kind, schedule, "epsilon", options);
  const out = await runSampler(
    sampler,
    schedule,
    "epsilon",
    exactModel(be, schedule, "epsilon", { w: [1], mu: [mu], sd: [sd] }),
    tensor(be, xs, [4, 1]),
    () => {
      throw new Error(`${kind} drew noise`);
    },
  ).toArray();
  const from = sampler.timesteps[0];
  return Math.max(...xs.map((x, i) => Math.abs(out[i] - exactOdeMap(schedule, from, mu, sd, x))));
}

Deno.test("ODE solvers converge at their order to the exact probability-flow map of a Gaussian", async (t) => {
  const cases: [SamplerKind, SamplerOptions, string, number, number][] = [
    // sampler, options, schedule, order's error ratio per doubling (ideal), the least accepted
    ["euler", { spacing: "time" }, "linear", 2, 1.8],
    ["ddim", {}, "linear", 2, 1.8],
    ["heun", { spacing: "linspace" }, "linear", 4, 3.5],
    ["heun", { spacing: "logsnr" }, "cosine", 4, 3.5],
    ["dpm++2m", {}, "linear", 4, 3.5],
    ["dpm++2m", {}, "cosine", 4, 3.5],
  ];
  for (const [kind, o, sn, ideal, least] of cases) {
    await t.step(
      `${kind} ${JSON.stringify(o)} on ${sn}: error / ${ideal} per doubling`,
      async () => {
        const s = SCHEDULES[sn];
        const e40 = await odeError(kind, s, { ...o, steps: 40 });
        const e80 = await odeError(kind, s, { ...o, steps: 80 });
        const e160 = await odeError(kind, s, { ...o, steps: 160 });
        assert.ok(e40 / e80 > least && e80 / e160 > least, `errors ${e40}, ${e80}, ${e160}`);
        assert.ok(e160 < 0.02, `error at 160 steps ${e160}`);
      },
    );
  }
});

Deno.test("the deterministic samplers give the same bits run to run, and draw no noise", async () => {
  const s = SCHEDULES.cosine, N = 64, r = new Random(9);
  const x = r.normals(N), model = exactModel(be, s, "v", TARGETS["N(0.7, 0.4^2)"]);
  for (const kind of ["ddim", "heun", "euler", "dpm++2m"] as const) {
    const run = async () =>
      await runSampler(
        createSampler(kind, s, "v", { steps: 15 }),
        s,
        "v",
        model,
        tensor(be, x, [N, 1]),
        () => {
          throw new Error(`${kind} drew noise`);
        },
      ).toArray();
    assert.deepEqual(await run(), await run(), kind);
  }
});

Deno.test("dpm++2m taken again at the same step (RePaint's passes) pairs with the previous time, not its own last pass", async () => {
  const s = SCHEDULES.cosine, N = 8, r = new Random(10);
  const model = exactModel(be, s, "epsilon", TARGETS["N(0.7, 0.4^2)"]);
  const sampler = createSampler("dpm++2m", s, "epsilon", { steps: 10 });
  const ctx = stepContext(s, "epsilon", model, () => {
    throw new Error("dpm++2m drew noise");
  });
  sampler.reset?.();
  const x0 = tensor(be, r.normals(N), [N, 1]);
  const x1 = sampler.step(ctx, 0, x0);
  const x2 = await sampler.step(ctx, 1, x1).toArray();
  // The same step from the same point again: the same result (the history is step 0's both times).
  assert.deepEqual(await sampler.step(ctx, 1, x1).toArray(), x2);
  const moved = tensor(be, (await x1.toArray()).map((v) => v + 0.1), [N, 1]);
  const again = await sampler.step(ctx, 1, moved).toArray();
  assert.notDeepEqual(again, x2, "a different input gives a different step");
});

const tiny = async () => {
  const r = new Random(2), n = 256;
  const values = Float32Array.from(r.normals(2 * n), (v) => 0.5 * v);
  return await train({
    data: { values, shape: [n, 2] },
    steps: 30,
    batchSize: 32,
    network: { hidden: 16 },
    schedule: { kind: "cosine", T: 50 },
    backend: "reference",
  });
};

Deno.test("every sampler's samples do not depend on the batch size (its noise is fixed per sample)", async () => {
  const model = await tiny();
  for (const kind of SAMPLERS) {
    const o = { sampler: kind, steps: 8, count: 12, seed: 3 } as const;
    const a = await sample(model, { ...o, batchSize: 12 });
    const b = await sample(model, { ...o, batchSize: 4 });
    assert.deepEqual([...a.values], [...b.values], kind);
    assert.ok(a.values.every(Number.isFinite), kind);
  }
});

Deno.test("bad sampler options end in one clear error naming the option", async () => {
  const model = await tiny();
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ sampler: "dpm-solver" }, /sampler must be one of .*dpm\+\+2m/],
    [{ sampler: "ddim", steps: 0 }, /steps must be an integer in \[1, 50\]/],
    [{ sampler: "euler", steps: 51 }, /steps must be an integer in \[1, 50\]/],
    [{ sampler: "pc", snr: 0 }, /snr must be a number > 0/],
    [{ sampler: "pc", snr: -0.1 }, /snr must be a number > 0/],
    [{ sampler: "pc", predictor: "heun" }, /predictor must be one of/],
    [{ sampler: "pc", correctorSteps: 1.5 }, /correctorSteps must be an integer/],
    [{ sampler: "langevin", langevinSteps: 0 }, /langevinSteps must be an integer/],
    [{ sampler: "langevin", stepSize: 0 }, /stepSize must be a number > 0/],
    [{ sampler: "dpm++2m", spacing: "cosine" }, /spacing must be one of/],
    [
      { sampler: "ddim", spacing: "karras" },
      /sampler "ddim": .*spacing must be one of linspace, leading, trailing/,
    ],
    [{ sampler: "ddim", eta: -1 }, /eta must be a number >= 0/],
  ];
  for (const [o, re] of cases) {
    await assert.rejects(() => sample(model, { count: 4, ...o }), (e: Error) => {
      assert.ok(e instanceof OptionError, `${JSON.stringify(o)}: ${e}`);
      assert.match(e.message, re);
      return true;
    });
  }
});
