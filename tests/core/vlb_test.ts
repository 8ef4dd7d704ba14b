/**
 * The variational bound (src/diffusion/vlb.ts) against values computed here independently: the
 * Gaussian KL in its textbook form and by hand, the discretised decoder against Simpson integrals
 * of the Gaussian density, each term of the bound for the exact model of Gaussian data against the
 * closed-form posterior and that model's mean recomputed here, and the whole bound of that model
 * against its expectation in closed form (up to one 1-D integral for the decoder). Then the
 * options' checks, determinism and independence from the batch size.
 */

import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { Denoiser } from "../../src/diffusion/denoiser.ts";
import { makeSchedule, type Schedule } from "../../src/diffusion/schedule.ts";
import {
  boundTimesteps,
  discretizedGaussianLogLikelihood,
  erfc,
  nll,
  type NllImages,
  type NllOptions,
  normalKl,
  variationalBound,
} from "../../src/diffusion/vlb.ts";
import { OptionError } from "../../src/errors.ts";
import { fillNormal, Random } from "../../src/random.ts";
import { STREAMS } from "../../src/random_streams.ts";
import { train } from "../../src/train.ts";
import { exactModel } from "../helpers/sampling.ts";

/** KL(N(m1, s1^2) || N(m2, s2^2)) = ln(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2. */
function klTextbook(m1: number, s1: number, m2: number, s2: number): number {
  return Math.log(s2 / s1) + (s1 * s1 + (m1 - m2) ** 2) / (2 * s2 * s2) - 0.5;
}

/** Simpson's rule with n (even) intervals. */
function simpson(f: (x: number) => number, a: number, b: number, n = 2000): number {
  const h = (b - a) / n;
  let s = f(a) + f(b);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(a + i * h);
  return (s * h) / 3;
}

const density = (m: number, sd: number) => (y: number) =>
  Math.exp(-((y - m) ** 2) / (2 * sd * sd)) / (sd * Math.sqrt(2 * Math.PI));

/** P(bin of x) under N(m, sd^2) by Simpson: [x - 1/255, x + 1/255], tails at the edges. */
function binBySimpson(x: number, m: number, sd: number): number {
  const lo = x < -0.999 ? Math.min(m, x) - 14 * sd : x - 1 / 255;
  const hi = x > 0.999 ? Math.max(m, x) + 14 * sd : x + 1 / 255;
  // The tails in pieces, so that the density's peak is well resolved wherever it is.
  const inside = [x - 1 / 255, x + 1 / 255, m].filter((c) => c > lo && c < hi);
  const cuts = [lo, ...inside.sort((a, b) => a - b), hi];
  let p = 0;
  for (let i = 0; i + 1 < cuts.length; i++) {
    p += simpson(density(m, sd), cuts[i], cuts[i + 1], 4000);
  }
  return p;
}

const level = (k: number) => -1 + (2 * k) / 255;

Deno.test("normalKl equals the textbook Gaussian KL on hand-computed cases", () => {
  // [m1, var1, m2, var2, KL by hand]
  const cases: [number, number, number, number, number][] = [
    [0.3, 0.5, 0.3, 0.5, 0], // equal distributions
    [1, 1, 0, 1, 0.5], // (1 - 0)^2 / 2
    [0, 4, 0, 1, 0.5 * (4 - 1 - Math.log(4))], // 0.806853
    [2, 0.25, -1, 9, Math.log(3 / 0.5) + (0.25 + 9) / 18 - 0.5], // 1.805648
  ];
  const got = normalKl(
    cases.map((c) => c[0]),
    cases.map((c) => Math.log(c[1])),
    cases.map((c) => c[2]),
    cases.map((c) => Math.log(c[3])),
  );
  assert.equal(got.length, 4);
  assert.ok(Math.abs(got[2] - 0.806853) < 1e-6 && Math.abs(got[3] - 1.805648) < 1e-6);
  cases.forEach(([m1, v1, m2, v2, hand], i) => {
    assert.ok(Math.abs(got[i] - hand) < 1e-12, `case ${i}: ${got[i]} vs ${hand}`);
    const tb = klTextbook(m1, Math.sqrt(v1), m2, Math.sqrt(v2));
    assert.ok(Math.abs(got[i] - tb) < 1e-12, `case ${i}: ${got[i]} vs ${tb}`);
  });
  // Numbers stand for every element; arrays must agree in length.
  assert.deepEqual(normalKl([1, 1], 0, 0, 0), Float64Array.of(0.5, 0.5));
  assert.throws(() => normalKl([1, 2], [0, 0, 0], 0, 0), RangeError);
});

Deno.test("erfc matches reference values to double precision", () => {
  // Python's math.erfc.
  const ref: [number, number][] = [
    [-1, 1.842700792949715],
    [0.5, 0.4795001221869535],
    [1.2, 0.08968602177036465],
    [1.4999, 0.03390674833770473],
    [2.4999, 0.0004071699003334514],
    [3, 2.2090496998585438e-05],
    [5, 1.5374597944280351e-12],
    [10, 2.088487583762545e-45],
  ];
  for (const [x, v] of ref) {
    assert.ok(Math.abs(erfc(x) - v) <= 2e-15 * v, `erfc(${x}) = ${erfc(x)}, want ${v}`);
  }
});

Deno.test("the discretised decoder equals Simpson integrals of the density over each bin, edges included", () => {
  // [pixel level k, mean, sd]
  const cases: [number, number, number][] = [
    [0, -0.98, 0.01], // the bottom edge bin (-inf, -1 + 1/255]
    [0, -0.9, 0.05], // the bottom edge, mean inside: a tail
    [255, 0.99, 0.02], // the top edge bin [1 - 1/255, inf)
    [255, 0.5, 0.3],
    [128, 0, 0.3],
    [166, 0.31, 0.004], // the mean in a neighbouring bin
    [100, -0.18, 0.005], // about 6.4 sd away: a probability near 1e-10
    [3, -0.99, 0.5],
  ];
  const xs = cases.map((c) => level(c[0]));
  const got = discretizedGaussianLogLikelihood(
    xs,
    cases.map((c) => c[1]),
    cases.map((c) => Math.log(c[2])),
  );
  cases.forEach(([k, m, sd], i) => {
    const want = Math.log(binBySimpson(xs[i], m, sd));
    assert.ok(Math.abs(got[i] - want) < 1e-9, `level ${k}, N(${m}, ${sd}^2): ${got[i]} vs ${want}`);
  });
  assert.ok(got[6] < Math.log(1e-8), "the far bin is far");
  // All 256 bins of one Gaussian hold all its mass.
  const all = Float64Array.from({ length: 256 }, (_, k) => level(k));
  for (const [m, sd] of [[0.3, 0.05], [-0.999, 0.007], [0.9, 0.5], [0, 2]]) {
    const lp = discretizedGaussianLogLikelihood(all, m, Math.log(sd));
    const total = lp.reduce((p, v) => p + Math.exp(v), 0);
    assert.ok(Math.abs(total - 1) < 1e-12, `N(${m}, ${sd}^2): bins sum to ${total}`);
  }
});

// ---- the bound of the exact model of Gaussian data --------------------------------------------

const MU = 0.1, SD = 0.25, N = 64, SHAPE = [1, 4, 4], D = 16;
const SCHEDULE = { kind: "linear", T: 50, betaStart: 1e-3, betaEnd: 0.2 } as const;

/** `n` images of N(MU, SD^2) pixels on the 256 levels (clamped to [-1, 1]). */
function gaussianImages(n = N): Float32Array {
  const z = new Random(11).normals(n * D);
  return Float32Array.from(z, (v) => {
    const k = Math.round((MU + SD * v + 1) * 127.5);
    return level(Math.min(255, Math.max(0, k)));
  });
}

/** The schedule's tables recomputed here from the betas: alphaBar_t, alphaBar_{t-1} (t = 1..T). */
function tables(betas: Float64Array) {
  const ab: number[] = [], abPrev: number[] = [];
  let p = 1;
  for (const b of betas) {
    abPrev.push(p);
    p *= 1 - b;
    ab.push(p);
  }
  return { ab, abPrev };
}

async function exactBound(
  schedule: Schedule,
  values: Float32Array,
  o: { variance: "posterior" | "beta"; batchSize?: number; timesteps?: number; seed?: number },
  terms?: Float64Array,
) {
  const be = createReferenceBackend();
  const model = exactModel(be, schedule, "epsilon", { w: [1], mu: [MU], sd: [SD] });
  return await variationalBound({
    denoiser: new Denoiser(model, schedule, "epsilon", 1),
    backend: be,
    schedule,
    sampleShape: SHAPE,
    values,
    count: values.length / D,
    variance: o.variance,
    seed: o.seed ?? 3,
    batchSize: o.batchSize ?? 32,
    timesteps: boundTimesteps(schedule.T, o.timesteps ?? schedule.T - 1),
    terms,
  });
}

Deno.test("each term of the bound of the exact Gaussian model equals the closed-form KL for its x_t", async () => {
  const schedule = makeSchedule(SCHEDULE), T = schedule.T, betas = schedule.betas;
  const { ab, abPrev } = tables(betas);
  const values = gaussianImages();
  for (const variance of ["posterior", "beta"] as const) {
    const terms = new Float64Array(N * (T + 1));
    const r = await exactBound(schedule, values, { variance }, terms);
    const sd1 = Math.sqrt(((1 - abPrev[1]) / (1 - ab[1])) * betas[1]); // betaTilde_2
    let worst = 0;
    for (let i = 0; i < N; i++) {
      const x0 = Array.from(values.subarray(i * D, (i + 1) * D));
      // L_T: KL(N(sqrt(abT) x0, 1 - abT) || N(0, 1)).
      const prior = x0.reduce(
        (p, v) => p + klTextbook(Math.sqrt(ab[T - 1]) * v, Math.sqrt(1 - ab[T - 1]), 0, 1),
        0,
      );
      assert.ok(Math.abs(terms[i * (T + 1)] - prior) < 1e-9 * prior, `prior of image ${i}`);
      for (let t = 1; t <= T; t++) {
        const eps = new Float64Array(D);
        fillNormal(eps, { seed: 3, stream: STREAMS.vlb, counter: (i * T + t - 1) * 4 });
        const a = Math.sqrt(ab[t - 1]), s = Math.sqrt(1 - ab[t - 1]);
        const b = betas[t - 1];
        // Ho et al. eq. 7: the posterior's mean coefficients and variance.
        const c1 = (Math.sqrt(abPrev[t - 1]) * b) / (1 - ab[t - 1]);
        const c2 = (Math.sqrt(1 - b) * (1 - abPrev[t - 1])) / (1 - ab[t - 1]);
        const sq = Math.sqrt(((1 - abPrev[t - 1]) / (1 - ab[t - 1])) * b);
        const sp = t === 1 ? sd1 : variance === "beta" ? Math.sqrt(b) : sq;
        let want = 0;
        x0.forEach((v, k) => {
          const xt = Math.fround(a * v + s * eps[k]);
          // The exact model's x0: E[x0 | x_t] for N(MU, SD^2) data, clipped to [-1, 1].
          const post = MU + (SD * SD * a * (xt - a * MU)) / (a * a * SD * SD + s * s);
          const x0hat = Math.min(1, Math.max(-1, post));
          if (t === 1) want -= Math.log(binBySimpson(v, c1 * x0hat + c2 * xt, sp));
          else want += klTextbook(c1 * v + c2 * xt, sq, c1 * x0hat + c2 * xt, sp);
        });
        const got = terms[i * (T + 1) + t];
        const err = Math.abs(got - want) / (Math.abs(want) + 1e-6);
        worst = Math.max(worst, err);
        assert.ok(err < 2e-4, `${variance}, image ${i}, t = ${t}: ${got} vs ${want}`);
      }
    }
    // The totals assemble the terms: nats / (D ln 2), averaged.
    const bits = 1 / (D * Math.LN2);
    let prior = 0, vlb = 0, dec = 0;
    for (let i = 0; i < N; i++) {
      const row = terms.subarray(i * (T + 1), (i + 1) * (T + 1));
      const sumKl = row.subarray(2).reduce((p, v) => p + v, 0);
      const mine = (row[0] + row[1] + sumKl) * bits;
      assert.ok(Math.abs(r.perImage[i] - mine) < 1e-12, `image ${i}`);
      prior += (row[0] * bits) / N;
      dec += (row[1] * bits) / N;
      vlb += (sumKl * bits) / N;
    }
    for (
      const [got, want] of [[r.terms.prior, prior], [r.terms.decoder, dec], [r.terms.vlb, vlb]]
    ) {
      assert.ok(Math.abs(got - want) < 1e-12);
    }
    assert.ok(Math.abs(r.bitsPerDim - (prior + dec + vlb)) < 1e-12);
    assert.ok(worst < 2e-4, `${variance}: worst relative error ${worst}`);
  }
});

Deno.test("the bound of the exact Gaussian model matches its expectation in closed form", async () => {
  const schedule = makeSchedule(SCHEDULE), T = schedule.T, betas = schedule.betas;
  const { ab, abPrev } = tables(betas);
  const M = 256, values = gaussianImages(M);
  for (const variance of ["posterior", "beta"] as const) {
    const terms = new Float64Array(M * (T + 1));
    const r = await exactBound(schedule, values, { variance, batchSize: 128 }, terms);
    // L_T: E[KL(N(a x0, 1 - abT) || N(0, 1))] = (-1 - ln(1 - abT) + 1 - abT + abT E[x0^2]) / 2,
    // E[x0^2] the images' own mean square (the prior term is exact, no draw).
    const abT = ab[T - 1], x2 = values.reduce((p, v) => p + v * v, 0) / values.length;
    const prior = 0.5 * (-Math.log(1 - abT) - abT + abT * x2);
    // For Gaussian data x0 | x_t ~ N(x0hat, V_t), V_t = SD^2 (1 - ab) / (ab SD^2 + 1 - ab), so
    // E[L_{t-1}] = (ln(sp^2 / sq^2) + sq^2 / sp^2 - 1) / 2 + c1^2 V_t / (2 sp^2).
    const V = (t: number) => (SD * SD * (1 - ab[t - 1])) / (ab[t - 1] * SD * SD + 1 - ab[t - 1]);
    let vlb = 0;
    for (let t = 2; t <= T; t++) {
      const b = betas[t - 1], sq2 = ((1 - abPrev[t - 1]) / (1 - ab[t - 1])) * b;
      const sp2 = variance === "beta" ? b : sq2;
      const c1 = (Math.sqrt(abPrev[t - 1]) * b) / (1 - ab[t - 1]);
      vlb += 0.5 * (Math.log(sp2 / sq2) + sq2 / sp2 - 1) + (c1 * c1 * V(t)) / (2 * sp2);
    }
    // L_0: E_u[-ln P(bin)] with u = x0hat - x0 ~ N(0, V_1): P(u) = the mass of N(u, sd1^2) on
    // [-1/255, 1/255].
    const sd1 = Math.sqrt(((1 - abPrev[1]) / (1 - ab[1])) * betas[1]), v1 = Math.sqrt(V(1));
    const dec = simpson(
      (u) => -Math.log(simpson(density(u, sd1), -1 / 255, 1 / 255, 200)) * density(0, v1)(u),
      -10 * v1,
      10 * v1,
      400,
    );
    // Monte Carlo: one x_t per (image, t); each term within 4 standard errors over the images.
    const perTerm = [new Float64Array(M), new Float64Array(M)]; // vlb, decoder (bits/dim)
    for (let i = 0; i < M; i++) {
      const row = terms.subarray(i * (T + 1), (i + 1) * (T + 1));
      perTerm[0][i] = row.subarray(2).reduce((p, v) => p + v, 0) / (D * Math.LN2);
      perTerm[1][i] = row[1] / (D * Math.LN2);
    }
    const se = (v: Float64Array) => {
      const m = v.reduce((p, x) => p + x, 0) / M;
      return Math.sqrt(v.reduce((p, x) => p + (x - m) ** 2, 0) / (M - 1) / M);
    };
    const bits = 1 / Math.LN2;
    const checks: [string, number, number, number][] = [
      ["vlb", r.terms.vlb, vlb * bits, se(perTerm[0])],
      ["decoder", r.terms.decoder, dec * bits, se(perTerm[1])],
      ["total", r.bitsPerDim, (prior + vlb + dec) * bits, se(r.perImage)],
    ];
    for (const [name, got, want, err] of checks) {
      assert.ok(err < 0.02 * want, `${variance} ${name}: standard error ${err} of ${want}`);
      assert.ok(
        Math.abs(got - want) < 4 * err,
        `${variance} ${name}: ${got} vs ${want} bits/dim, standard error ${err}`,
      );
    }
    assert.ok(Math.abs(r.terms.prior - prior * bits) < 1e-9 * prior * bits, "prior");
  }
});

Deno.test("a strided estimate of the sum over t is close to the full sum and calls the network less", async () => {
  const schedule = makeSchedule(SCHEDULE), values = gaussianImages();
  const full = await exactBound(schedule, values, { variance: "posterior" });
  const again = await exactBound(schedule, values, { variance: "posterior", timesteps: 49 });
  assert.deepEqual(again.perImage, full.perImage, "all T - 1 timesteps is the full sum");
  const quick = await exactBound(schedule, values, { variance: "posterior", timesteps: 12 });
  assert.equal(quick.terms.prior, full.terms.prior);
  assert.equal(quick.terms.decoder, full.terms.decoder);
  const rel = Math.abs(quick.terms.vlb - full.terms.vlb) / full.terms.vlb;
  assert.ok(rel < 0.05, `12 of 49 timesteps: ${quick.terms.vlb} vs ${full.terms.vlb}`);
  assert.deepEqual(
    boundTimesteps(50, 49),
    Array.from({ length: 49 }, (_, i) => ({ t: i + 2, weight: 1 })),
  );
  // Edges 2, round(2 sqrt(25.5)) = 10 and 51; the geometric middles of [2, 9] and [10, 50].
  assert.deepEqual(boundTimesteps(50, 2), [{ t: 4, weight: 8 }, { t: 22, weight: 41 }]);
  for (const [T, k] of [[1000, 50], [1000, 999], [20, 3], [4000, 7]]) {
    const steps = boundTimesteps(T, k);
    assert.equal(steps.length, k);
    assert.equal(steps.reduce((p, s) => p + s.weight, 0), T - 1, `T ${T}, k ${k}`);
    steps.forEach((s, i) => assert.ok(s.t >= 2 && s.t <= T && (i === 0 || s.t > steps[i - 1].t)));
  }
});

// ---- nll on models ------------------------------------------------------------------------------

/** An MLP over 16-d samples on the exact model's schedule, trained one step. */
async function untrained() {
  return await train({
    data: { values: gaussianImages(), shape: [N, D] },
    steps: 1,
    batchSize: 8,
    network: { hidden: 16 },
    schedule: SCHEDULE,
    backend: "reference",
    seed: 2,
    progressEvery: 1,
  });
}

Deno.test("an untrained network's bound is far above the exact model's", async () => {
  const values = gaussianImages(), model = await untrained();
  const exact = await exactBound(makeSchedule(SCHEDULE), values, { variance: "posterior" });
  const r = await nll(model, { values, shape: [N, D] }, { seed: 3 });
  assert.ok(Number.isFinite(r.bitsPerDim));
  assert.ok(
    r.bitsPerDim > exact.bitsPerDim + 1,
    `untrained ${r.bitsPerDim} vs exact ${exact.bitsPerDim} bits/dim`,
  );
  // Each image's bound is at least its prior term, and the KL terms are non-negative.
  assert.ok(r.terms.vlb >= 0 && r.terms.prior >= 0);
});

Deno.test("nll: the same seed gives the same bits, any batch size gives the same bits, progress counts calls", async () => {
  const model = await untrained(), values = gaussianImages().subarray(0, 10 * D);
  const images = { values, shape: [10, D] };
  const calls: [number, number][] = [];
  const o: NllOptions = { seed: 5, timesteps: 7, variance: "beta" };
  const a = await nll(model, images, { ...o, onProgress: (d, t) => calls.push([d, t]) });
  const b = await nll(model, images, { ...o, batchSize: 3 });
  const c = await nll(model, images, { ...o, seed: 6 });
  const d = await nll(model, images, { ...o, weights: "raw" });
  assert.deepEqual(b.perImage, a.perImage, "batch size 3 vs 256");
  assert.deepEqual((await nll(model, images, o)).perImage, a.perImage, "the same seed");
  assert.notDeepEqual(c.perImage, a.perImage, "another seed");
  assert.ok(Number.isFinite(d.bitsPerDim));
  // One batch of 10: the decoder's call and 7 others.
  assert.deepEqual(calls, Array.from({ length: 8 }, (_, i) => [i + 1, 8]));
  // The first images alone get the bits they get among others.
  const first = await nll(model, { values: values.subarray(0, 3 * D), shape: [3, D] }, o);
  assert.deepEqual(first.perImage, a.perImage.subarray(0, 3));
});

Deno.test("nll on a tiny UNet: image-shaped input, finite, batch-independent", async () => {
  const values = Float32Array.from({ length: 3 * 64 }, (_, i) => level((i * 37) % 256));
  const model = await train({
    data: { values, shape: [3, 1, 8, 8] },
    network: { kind: "unet", base: 8, mults: [1, 2], groups: 2, heads: 2 },
    schedule: { kind: "cosine", T: 10 },
    steps: 1,
    batchSize: 2,
    backend: "reference",
    seed: 1,
    progressEvery: 1,
  });
  const images = { values, shape: [3, 1, 8, 8] };
  const a = await nll(model, images, { seed: 1 });
  const b = await nll(model, images, { seed: 1, batchSize: 2 });
  assert.ok(Number.isFinite(a.bitsPerDim) && a.bitsPerDim > 0);
  assert.deepEqual(b.perImage, a.perImage);
});

Deno.test("nll: bad options are OptionErrors naming the option, before any work", async () => {
  const model = await untrained(), values = gaussianImages().subarray(0, 4 * D);
  const ok = { values, shape: [4, D] };
  const changed = (i: number, v: number) => ({
    values: Float32Array.from(values, (x, k) => k === i ? v : x),
    shape: [4, D],
  });
  const bad: [string, NllImages, NllOptions, RegExp][] = [
    ["another shape", { values, shape: [8, 8] }, {}, /\[8,8\].*model's samples are \[16\]/],
    ["an image shape", { values, shape: [4, 1, 4, 4] }, {}, /\[4,1,4,4\]/],
    ["no images", { values: new Float32Array(0), shape: [0, D] }, {}, /count.*got 0/],
    ["a short array", { values: values.subarray(1), shape: [4, D] }, {}, /63 values/],
    ["a value above 1", changed(5, 1.5), {}, /\[-1, 1\].*value 5 \(image 0\) is 1\.5/],
    ["NaN", changed(20, NaN), {}, /value 20 \(image 1\) is NaN/],
    ["variance", ok, { variance: "large" as "beta" }, /^variance.*"large"/],
    ["weights", ok, { weights: "best" as "ema" }, /^weights/],
    ["seed", ok, { seed: -1 }, /^seed/],
    ["batchSize", ok, { batchSize: 0 }, /^batchSize/],
    ["timesteps 0", ok, { timesteps: 0 }, /^timesteps.*\[1, 49\]/],
    ["timesteps T", ok, { timesteps: 50 }, /^timesteps.*got 50/],
  ];
  for (const [name, images, options, message] of bad) {
    let progressed = false;
    await assert.rejects(
      () => nll(model, images, { ...options, onProgress: () => void (progressed = true) }),
      (e: Error) => e instanceof OptionError && message.test(e.message),
      name,
    );
    assert.equal(progressed, false, name);
  }
});
