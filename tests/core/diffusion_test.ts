/**
 * The forward process and the samplers: q(x_t | x_0) moments, conversions between epsilon, x0 and v
 * predictions, min-SNR weights, and DDPM (plain and respaced), DDIM (eta 0 and 1) and Heun driven by
 * the exact epsilon of a Gaussian, which must reproduce its mean and variance; x0 clipping.
 */

import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { DdimSampler } from "../../src/samplers/ddim.ts";
import { DdpmSampler } from "../../src/samplers/ddpm.ts";
import type { Sampler } from "../../src/samplers/sampler.ts";
import { DeviceSchedule, qSample } from "../../src/diffusion/forward.ts";
import {
  minSnrWeight,
  predictEpsilon,
  type Prediction,
  predictionTarget,
  predictX0,
} from "../../src/diffusion/parameterization.ts";
import { makeSchedule } from "../../src/diffusion/schedule.ts";
import { Random } from "../../src/random.ts";
import { type Tensor, tensor } from "../../src/tensor.ts";
import { affine } from "../../src/ops/elementwise.ts";
import { HeunSampler } from "../../src/samplers/heun.ts";
import { stepContext } from "../helpers/sampling.ts";

const be = createReferenceBackend({ dtype: "float64" });

function meanVar(x: ArrayLike<number>): [number, number] {
  let m = 0;
  for (let i = 0; i < x.length; i++) m += x[i];
  m /= x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i] - m) ** 2;
  return [m, v / (x.length - 1)];
}

Deno.test("q(x_t | x_0) has mean sqrt(alphaBar) x0 and variance 1 - alphaBar, empirically", async () => {
  const s = makeSchedule({ kind: "linear", T: 200, betaStart: 1e-4, betaEnd: 0.2 });
  const ds = new DeviceSchedule(be, s);
  const N = 40_000, x0v = 1.7;
  const r = new Random(5);
  for (const t of [1, 10, 100, 200]) {
    const x0 = tensor(be, new Float64Array(N).fill(x0v), [N, 1]);
    const eps = tensor(be, r.normals(N), [N, 1]);
    const ts = tensor(be, new Float64Array(N).fill(t), [N]);
    const xt = await qSample(x0, eps, ds.level(ts, 2)).toArray();
    const [m, v] = meanVar(xt);
    const ab = s.alphasCumprod[t - 1];
    const se = Math.sqrt((1 - ab) / N);
    assert.ok(Math.abs(m - Math.sqrt(ab) * x0v) < 5 * se + 1e-12, `t=${t}: mean ${m}`);
    if (ab < 1 - 1e-6) {
      assert.ok(
        Math.abs(v / (1 - ab) - 1) < 5 * Math.sqrt(2 / N),
        `t=${t}: variance ${v} vs ${1 - ab}`,
      );
    }
  }
});

Deno.test("epsilon, x0 and v predictions convert into each other exactly", async () => {
  const s = makeSchedule({ kind: "cosine", T: 50 });
  const r = new Random(2), n = 12, t = 17;
  const a = s.sqrtAlphasCumprod[t - 1], sg = s.sqrtOneMinusAlphasCumprod[t - 1];
  const x0 = tensor(be, r.normals(n), [n, 1]), eps = tensor(be, r.normals(n), [n, 1]);
  const lvl = {
    a: tensor(be, new Float64Array(n).fill(a), [n, 1]),
    s: tensor(be, new Float64Array(n).fill(sg), [n, 1]),
  };
  const xt = qSample(x0, eps, lvl);
  const x0a = await x0.toArray(), epsa = await eps.toArray();
  for (const kind of ["epsilon", "x0", "v"] as Prediction[]) {
    const target = predictionTarget(kind, x0, eps, lvl);
    const gotX0 = await predictX0(kind, target, xt, { a, s: sg }).toArray();
    const gotEps = await predictEpsilon(kind, target, xt, { a, s: sg }).toArray();
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(gotX0[i] - x0a[i]) < 1e-9, `${kind}: x0`);
      assert.ok(Math.abs(gotEps[i] - epsa[i]) < 1e-9, `${kind}: eps`);
    }
  }
  // v itself: a eps - s x0
  const v = await predictionTarget("v", x0, eps, lvl).toArray();
  for (let i = 0; i < n; i++) assert.ok(Math.abs(v[i] - (a * epsa[i] - sg * x0a[i])) < 1e-12);
});

Deno.test("min-SNR weights make every prediction's squared error min(SNR, gamma) x0 errors", async () => {
  const s = makeSchedule({ kind: "cosine", T: 100 });
  const r = new Random(3), n = 16;
  for (const t of [1, 10, 40, 70, 100]) {
    const a = s.sqrtAlphasCumprod[t - 1], sg = s.sqrtOneMinusAlphasCumprod[t - 1];
    const snr = (a * a) / (sg * sg);
    const lvl = {
      a: tensor(be, new Float64Array(n).fill(a), [n, 1]),
      s: tensor(be, new Float64Array(n).fill(sg), [n, 1]),
    };
    const x0 = tensor(be, r.normals(n), [n, 1]), eps = tensor(be, r.normals(n), [n, 1]);
    const xt = qSample(x0, eps, lvl);
    const x0a = await x0.toArray();
    for (const gamma of [0.5, 5, 1e6]) {
      for (const kind of ["epsilon", "x0", "v"] as Prediction[]) {
        // A wrong network output: the true target plus an error; its x0 estimate's squared error
        // times min(SNR, gamma) must equal the weighted squared error of the output itself.
        const target = await predictionTarget(kind, x0, eps, lvl).toArray();
        const noise = r.normals(n);
        const wrong = Float64Array.from(target, (v, i) => v + 0.3 * noise[i]);
        const out = tensor(be, wrong, [n, 1]);
        const est = await predictX0(kind, out, xt, { a, s: sg }).toArray();
        let outErr = 0, x0Err = 0;
        for (let i = 0; i < n; i++) {
          outErr += (wrong[i] - target[i]) ** 2;
          x0Err += (est[i] - x0a[i]) ** 2;
        }
        const w = minSnrWeight(kind, snr, gamma);
        const want = Math.min(snr, gamma) * x0Err;
        assert.ok(
          Math.abs(w * outErr - want) <= 1e-8 * Math.max(1, want),
          `${kind} t=${t} γ=${gamma}`,
        );
      }
    }
  }
});

/**
 * Runs the ancestral sampler with the exact epsilon of a Gaussian target N(mu, sd^2):
 * x_t ~ N(a mu, a^2 sd^2 + s^2), E[eps | x_t] = s (x_t - a mu) / (a^2 sd^2 + s^2).
 */
async function sampleGaussian(
  variance: "beta" | "posterior" | "ddim" | "heun",
  steps: number | undefined,
  mu: number,
  sd: number,
  prediction: Prediction = "epsilon",
): Promise<[number, number]> {
  const s = makeSchedule({ kind: "linear", T: 1000, betaStart: 1e-4, betaEnd: 0.02 });
  const sampler: Sampler = variance === "heun"
    ? new HeunSampler(s, prediction, { steps, spacing: "linspace" }) // this model takes integer t
    : variance === "ddim"
    ? new DdimSampler(s, prediction, { steps })
    : new DdpmSampler(s, prediction, { variance, steps });
  const N = 20_000, r = new Random(11);
  let x = tensor(be, r.normals(N), [N, 1]);
  // The exact network output is affine in x: eps = k x + c.
  const model = (xt: Tensor, t: number): Tensor => {
    const a = s.sqrtAlphasCumprod[t - 1], sg = s.sqrtOneMinusAlphasCumprod[t - 1];
    const vt = a * a * sd * sd + sg * sg, k = sg / vt, c = (-sg * a * mu) / vt;
    const kx0 = (1 - sg * k) / a, cx0 = (-sg * c) / a; // x0 = kx0 x + cx0
    if (prediction === "epsilon") return affine(xt, k, c);
    if (prediction === "x0") return affine(xt, kx0, cx0);
    return affine(xt, a * k - sg * kx0, a * c - sg * cx0); // v = a eps - s x0
  };
  for (let i = 0; i < sampler.timesteps.length; i++) {
    // Each step draws one noise tensor, used or not, as the sampling loop once did.
    const z = tensor(be, r.normals(N), [N, 1]);
    x = sampler.step(stepContext(s, prediction, model, () => z), i, x);
  }
  return meanVar(await x.toArray());
}

Deno.test("DDPM sampler driven by the exact epsilon reproduces a Gaussian's mean and variance", async () => {
  const mu = 1.5, sd = 0.5;
  for (const variance of ["posterior", "beta"] as const) {
    const [m, v] = await sampleGaussian(variance, undefined, mu, sd);
    assert.ok(Math.abs(m - mu) < 0.02, `${variance}: mean ${m}`);
    assert.ok(Math.abs(v / (sd * sd) - 1) < 0.05, `${variance}: variance ${v}`);
  }
});

Deno.test("x0 and v predictions drive the sampler to the same Gaussian", async () => {
  const mu = -0.8, sd = 0.3;
  for (const pred of ["x0", "v"] as const) {
    const [m, v] = await sampleGaussian("posterior", undefined, mu, sd, pred);
    assert.ok(Math.abs(m - mu) < 0.02, `${pred}: mean ${m}`);
    assert.ok(Math.abs(v / (sd * sd) - 1) < 0.05, `${pred}: variance ${v}`);
  }
});

Deno.test("respaced DDPM (100 of 1000 steps): right mean, variance bracketed by the two choices", async () => {
  // With few steps the ancestral sampler's point estimate of x0 loses variance under the posterior
  // choice and adds some under beta_t (Ho et al. 2020, section 3.2): the truth lies between.
  const mu = -0.8, sd = 0.3;
  const [mp, vp] = await sampleGaussian("posterior", 100, mu, sd);
  const [mb, vb] = await sampleGaussian("beta", 100, mu, sd);
  assert.ok(Math.abs(mp - mu) < 0.02 && Math.abs(mb - mu) < 0.02, `means ${mp}, ${mb}`);
  assert.ok(vp < sd * sd && sd * sd < vb, `variances ${vp} < ${sd * sd} < ${vb}`);
  assert.ok(vp / (sd * sd) > 0.7 && vb / (sd * sd) < 1.15, `variances ${vp}, ${vb}`);
});

Deno.test("DDIM (eta 0) with the exact epsilon: right mean, variance converging from below", async () => {
  // A first-order deterministic step contracts a narrow distribution a little; the error vanishes
  // as the steps grow (here about 11% at 50 steps, under 5% at 200).
  const mu = 0.7, sd = 0.4;
  const [m50, v50] = await sampleGaussian("ddim", 50, mu, sd);
  const [m200, v200] = await sampleGaussian("ddim", 200, mu, sd);
  assert.ok(Math.abs(m50 - mu) < 0.02 && Math.abs(m200 - mu) < 0.02, `means ${m50}, ${m200}`);
  assert.ok(v50 < v200 && v200 < sd * sd * 1.02, `variances ${v50} < ${v200} <= ${sd * sd}`);
  assert.ok(Math.abs(v200 / (sd * sd) - 1) < 0.05, `variance at 200 steps ${v200}`);
});

Deno.test("Heun's second-order steps: the Gaussian in 25 steps, closer than DDIM in 50", async () => {
  const mu = 0.7, sd = 0.4;
  const [m, v] = await sampleGaussian("heun", 25, mu, sd);
  const [, vDdim] = await sampleGaussian("ddim", 50, mu, sd);
  assert.ok(Math.abs(m - mu) < 0.02, `mean ${m}`);
  assert.ok(Math.abs(v / (sd * sd) - 1) < 0.05, `variance ${v}`);
  assert.ok(Math.abs(v - sd * sd) < Math.abs(vDdim - sd * sd), `heun ${v} vs ddim ${vDdim}`);
});

Deno.test("DDIM with eta 1 adds DDPM's posterior noise; eta 0 none", () => {
  const s = makeSchedule({ kind: "linear", T: 100, betaStart: 1e-4, betaEnd: 0.02 });
  const d1 = new DdimSampler(s, "epsilon", { eta: 1 }), d0 = new DdimSampler(s, "epsilon");
  const p = new DdpmSampler(s, "epsilon", { variance: "posterior" });
  for (let i = 0; i < 100; i += 7) {
    assert.ok(Math.abs(d1.sigma(i) - p.sigma(i)) < 1e-12, `step ${i}`);
    assert.equal(d0.sigma(i), 0);
  }
});

Deno.test("clipping bounds the x0 estimate and the last step adds no noise", async () => {
  const s = makeSchedule({ kind: "linear", T: 10, betaStart: 1e-4, betaEnd: 0.2 });
  const sampler = new DdpmSampler(s, "x0", { clip: 1 });
  const last = sampler.timesteps.length - 1;
  assert.equal(sampler.sigma(last), 0);
  const x = tensor(be, [0.3, -0.2], [2, 1]);
  // At t = 1 the posterior mean is x0 itself (coef1 = 1, coef2 = 0), so the output is the clipped x0.
  const fixed = () => tensor(be, [5, -7], [2, 1]);
  const ctx = stepContext(s, "x0", fixed, () => tensor(be, [9, 9], [2, 1]));
  const out = await sampler.step(ctx, last, x).toArray();
  assert.ok(Math.abs(out[0] - 1) < 1e-9 && Math.abs(out[1] + 1) < 1e-9, `${out}`);
});
