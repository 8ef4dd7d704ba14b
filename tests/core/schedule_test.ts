/**
 * Noise schedules: the linear, cosine and sigmoid schedules, the derived tables against their closed
 * forms, validation of bad schedules, and respacing that keeps the marginals.
 */

import assert from "node:assert/strict";
import { makeBetas, makeSchedule, respace } from "../../src/diffusion/schedule.ts";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

Deno.test("linear schedule: the seed's endpoints and equal spacing (Subdivide[1e-4, 0.2, T-1])", () => {
  const s = makeSchedule({ kind: "linear", T: 200, betaStart: 1e-4, betaEnd: 0.2 });
  close(s.betas[0], 1e-4);
  close(s.betas[199], 0.2);
  for (let i = 1; i < 200; i++) close(s.betas[i] - s.betas[i - 1], (0.2 - 1e-4) / 199, 1e-9);
});

Deno.test("derived tables match their closed forms", () => {
  for (
    const cfg of [
      { kind: "linear", T: 50, betaStart: 1e-4, betaEnd: 0.02 },
      { kind: "cosine", T: 40 },
      { kind: "sigmoid", T: 30 },
    ] as const
  ) {
    const s = makeSchedule(cfg);
    let prod = 1;
    for (let i = 0; i < s.T; i++) {
      const b = s.betas[i], prev = prod;
      prod *= 1 - b;
      close(s.alphas[i], 1 - b);
      close(s.alphasCumprod[i], prod, 1e-10);
      close(s.alphasCumprodPrev[i], prev, 1e-10);
      close(s.sqrtAlphasCumprod[i] ** 2, prod, 1e-10);
      close(s.sqrtOneMinusAlphasCumprod[i] ** 2, 1 - prod, 1e-10);
      close(s.posteriorVariance[i], (b * (1 - prev)) / (1 - prod), 1e-10);
      // The posterior mean coefficients reproduce x_{t-1}'s mean: for x_t = sqrt(ab) x0 (no noise),
      // the posterior mean of x_{t-1} is sqrt(ab_{t-1}) x0.
      close(
        s.posteriorMeanCoef1[i] + s.posteriorMeanCoef2[i] * Math.sqrt(prod),
        Math.sqrt(prev),
        1e-10,
      );
    }
    assert.equal(s.posteriorVariance[0], 0);
  }
});

Deno.test("cosine schedule follows alphaBar(t) = cos^2(((t/T + s)/(1 + s)) pi/2) normalised at 0", () => {
  const T = 100, s = 0.008;
  const sched = makeSchedule({ kind: "cosine", T });
  const f = (t: number) => Math.cos(((t / T + s) / (1 + s)) * Math.PI / 2) ** 2;
  for (const t of [1, 10, 50, 90]) close(sched.alphasCumprod[t - 1], f(t) / f(0), 1e-9);
  assert.ok(sched.betas.every((b) => b <= 0.999));
});

Deno.test("sigmoid schedule: alphaBar decreases from near 1 to near 0", () => {
  const s = makeSchedule({ kind: "sigmoid", T: 100 });
  for (let i = 1; i < 100; i++) assert.ok(s.alphasCumprod[i] < s.alphasCumprod[i - 1]);
  assert.ok(s.alphasCumprod[0] > 0.99);
  assert.ok(s.alphasCumprod[99] < 1e-3);
});

Deno.test("bad schedules are rejected with the field named", () => {
  assert.throws(
    () => makeBetas({ kind: "linear", T: 1, betaStart: 1e-4, betaEnd: 0.02 }),
    /T must be/,
  );
  assert.throws(
    () => makeBetas({ kind: "linear", T: 10, betaStart: 0, betaEnd: 0.02 }),
    /betaStart/,
  );
  assert.throws(() => makeBetas({ kind: "linear", T: 10, betaStart: 1e-4, betaEnd: 1 }), /betaEnd/);
  assert.throws(() => makeBetas({ kind: "cosine", T: 2.5 }), /T must be/);
});

Deno.test("respacing keeps the marginals: alphaBar at the kept steps is unchanged", () => {
  const s = makeSchedule({ kind: "linear", T: 1000, betaStart: 1e-4, betaEnd: 0.02 });
  const r = respace(s, 50);
  assert.equal(r.timesteps.length, 50);
  assert.equal(r.timesteps[0], 1);
  assert.equal(r.timesteps[49], 1000);
  r.timesteps.forEach((t, i) => close(r.schedule.alphasCumprod[i], s.alphasCumprod[t - 1], 1e-9));
  assert.throws(() => respace(s, 0), /steps/);
  assert.throws(() => respace(s, 1001), /steps/);
});
