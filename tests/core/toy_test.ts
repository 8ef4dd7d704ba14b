/**
 * The toy data sets (gmm1d, ramp, spiral) against their distributions, standardize and its inverse,
 * seeding, and the toy names.
 */

import assert from "node:assert/strict";
import { Random } from "../../src/random.ts";
import {
  applyStandardization,
  gmm1d,
  invertStandardization,
  isToyDistribution,
  ramp,
  sampleToy,
  spiral,
  SPIRAL_BINS,
  standardize,
  TOY_DISTRIBUTIONS,
  toyDim,
} from "../../src/data/toy.ts";

const N = 100_000;

function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

function sampleStd(xs: ArrayLike<number>): number {
  const m = mean(xs);
  let ss = 0;
  for (let i = 0; i < xs.length; i++) ss += (xs[i] - m) ** 2;
  return Math.sqrt(ss / (xs.length - 1));
}

function column(data: Float32Array, dim: number, d: number): Float64Array {
  const out = new Float64Array(data.length / dim);
  for (let i = 0; i < out.length; i++) out[i] = data[i * dim + d];
  return out;
}

Deno.test("gmm1d: 70% of the mass near +0.5, component std 0.2, overall mean 0.2 and std 0.5", () => {
  const { data, dim, n } = gmm1d(N, new Random(1));
  assert.equal(dim, 1);
  assert.equal(n, N);
  assert.equal(data.length, N);
  const above = data.filter((x) => x > 0);
  // P(x > 0) = 0.7 minus the tiny normal tails crossing zero (about 0.4 * Phi(-2.5) = 0.0025).
  assert.ok(Math.abs(above.length / N - 0.7) < 0.01, `fraction above 0: ${above.length / N}`);
  assert.ok(Math.abs(mean(above) - 0.5) < 0.01, `upper component mean ${mean(above)}`);
  assert.ok(Math.abs(sampleStd(above) - 0.2) < 0.01, `upper component std ${sampleStd(above)}`);
  // Closed forms: mean = 0.5 (1 - p) - 0.5 p = 0.2; var = std^2 + (1 - (1 - 2p)^2) / 4 = 0.25.
  assert.ok(Math.abs(mean(data) - 0.2) < 0.01, `mean ${mean(data)}`);
  assert.ok(Math.abs(sampleStd(data) - 0.5) < 0.01, `std ${sampleStd(data)}`);
});

Deno.test("gmm1d: options change the weights and width; bad options throw", () => {
  const { data } = gmm1d(N, new Random(2), { p: 0.9, std: 0.05 });
  const above = data.filter((x) => x > 0);
  assert.ok(Math.abs(above.length / N - 0.1) < 0.01);
  assert.ok(Math.abs(sampleStd(above) - 0.05) < 0.005);
  assert.throws(() => gmm1d(10, new Random(0), { p: 1.5 }), /p must be a probability/);
  assert.throws(() => gmm1d(10, new Random(0), { std: -1 }), /std must be/);
  assert.throws(() => gmm1d(-1, new Random(0)), /non-negative integer/);
  assert.throws(() => gmm1d(1.5, new Random(0)), /non-negative integer/);
});

Deno.test("ramp: min of two uniforms has density 2(1 - x): mean 1/3, var 1/18, CDF(0.5) = 3/4", () => {
  const { data, dim } = ramp(N, new Random(3));
  assert.equal(dim, 1);
  for (const x of data) assert.ok(x >= 0 && x < 1);
  assert.ok(Math.abs(mean(data) - 1 / 3) < 0.005, `mean ${mean(data)}`);
  assert.ok(Math.abs(sampleStd(data) ** 2 - 1 / 18) < 0.002, `var ${sampleStd(data) ** 2}`);
  const cdfHalf = data.filter((x) => x < 0.5).length / N;
  assert.ok(Math.abs(cdfHalf - 0.75) < 0.01, `CDF(0.5) ${cdfHalf}`);
  // Mass of [0, 0.05] is 1 - 0.95^2 = 0.0975; mass of [0.5, 0.55] is 0.5^2 - 0.45^2 = 0.0475.
  const nearZero = data.filter((x) => x < 0.05).length / N;
  const nearHalf = data.filter((x) => x >= 0.5 && x < 0.55).length / N;
  assert.ok(Math.abs(nearZero - 0.0975) < 0.005, `mass near 0: ${nearZero}`);
  assert.ok(Math.abs(nearHalf - 0.0475) < 0.005, `mass near 0.5: ${nearHalf}`);
  assert.ok(nearZero / nearHalf > 1.8 && nearZero / nearHalf < 2.3);
});

Deno.test("spiral: every point's radius lies in the band of the u its angle implies", () => {
  const { data, dim, n } = spiral(N, new Random(4));
  assert.equal(dim, 2);
  assert.equal(data.length, 2 * n);
  const slack = 1e-6; // float32 rounding of the coordinates
  let radiusSum = 0;
  for (let i = 0; i < n; i++) {
    const x = data[2 * i], y = data[2 * i + 1];
    const r = Math.hypot(x, y);
    radiusSum += r;
    let phi = Math.atan2(y, x);
    if (phi < 0) phi += 2 * Math.PI;
    // theta = 3 pi u lies in [0, 3 pi], so u = (phi + 2 pi k) / (3 pi) for k = 0 or 1.
    let ok = false;
    for (let k = 0; k <= 1; k++) {
      const u = (phi + 2 * Math.PI * k) / (3 * Math.PI);
      if (u > 1 + slack) continue;
      if (r >= 0.65 * u + 0.25 - slack && r <= 0.65 * u + 0.4 + slack) ok = true;
    }
    assert.ok(ok, `point ${i} (${x}, ${y}) is off the spiral band`);
  }
  // E[rho] = 0.65 E[u] + 0.25 + 0.15 E[U'] = 0.65.
  assert.ok(Math.abs(radiusSum / n - 0.65) < 0.005, `mean radius ${radiusSum / n}`);
});

Deno.test("standardize: mean 0 and std 1 per column, inverse restores raw points", () => {
  const { data, dim } = spiral(20_000, new Random(5));
  const { data: z, stats } = standardize(data, dim);
  assert.equal(z.length, data.length);
  for (let d = 0; d < dim; d++) {
    const col = column(z, dim, d);
    assert.ok(Math.abs(mean(col)) < 1e-5, `column ${d} mean ${mean(col)}`);
    assert.ok(Math.abs(sampleStd(col) - 1) < 1e-5, `column ${d} std ${sampleStd(col)}`);
    const raw = column(data, dim, d);
    assert.ok(Math.abs(stats.mean[d] - mean(raw)) < 1e-9);
    assert.ok(Math.abs(stats.std[d] - sampleStd(raw)) < 1e-9);
  }
  const back = invertStandardization(z, dim, stats);
  for (let i = 0; i < data.length; i++) assert.ok(Math.abs(back[i] - data[i]) < 1e-5);
  const again = applyStandardization(data, dim, stats);
  assert.deepEqual(again, z);
});

Deno.test("standardize: bad shapes and constant columns throw clear errors", () => {
  assert.throws(() => standardize(new Float32Array(3), 2), /not a multiple of dim/);
  assert.throws(() => standardize(new Float32Array([1, 1, 1]), 1), /non-constant/);
  assert.throws(() => standardize(new Float32Array([1]), 1), /at least 2 points/);
  assert.throws(
    () => applyStandardization(new Float32Array(4), 2, { mean: [0], std: [1] }),
    /stats have 1 means/,
  );
  assert.throws(
    () => invertStandardization(new Float32Array(2), 1, { mean: [0], std: [0] }),
    /std > 0/,
  );
});

Deno.test("sampleToy: same seed gives the same data, another seed different data", () => {
  for (const dist of TOY_DISTRIBUTIONS) {
    const a = sampleToy(dist, 1000, new Random(7));
    const b = sampleToy(dist, 1000, new Random(7));
    const c = sampleToy(dist, 1000, new Random(8));
    const s = sampleToy(dist, 1000, new Random(7, 1));
    assert.equal(a.dim, toyDim(dist));
    assert.equal(a.data.length, 1000 * toyDim(dist));
    assert.deepEqual(a.data, b.data);
    assert.notDeepEqual(a.data, c.data);
    assert.notDeepEqual(a.data, s.data);
  }
});

Deno.test("toy names: dims and validation", () => {
  assert.equal(toyDim("spiral"), 2);
  assert.equal(toyDim("gmm1d"), 1);
  assert.equal(toyDim("ramp"), 1);
  assert.ok(isToyDistribution("spiral"));
  assert.ok(!isToyDistribution("moons"));
  assert.throws(() => toyDim("moons" as never), /unknown toy distribution "moons"/);
  assert.throws(() => sampleToy("moons" as never, 3, new Random(0)), /use one of/);
});

Deno.test("toy labels: gmm1d's component and the spiral's stretch of arm, one a point", () => {
  const g = gmm1d(20_000, new Random(4));
  assert.equal(g.classes, 2);
  let agree = 0, ones = 0;
  for (let i = 0; i < g.n; i++) {
    ones += g.labels![i];
    // Component 1 sits at +0.5 with std 0.2: nearly all its points are positive, and vice versa.
    if ((g.data[i] > 0) === (g.labels![i] === 1)) agree++;
  }
  assert.ok(Math.abs(ones / g.n - 0.7) < 0.02, `share of component 1: ${ones / g.n}`);
  assert.ok(agree / g.n > 0.99, `labels agree with the side: ${agree / g.n}`);
  const s = spiral(20_000, new Random(5));
  assert.equal(s.classes, SPIRAL_BINS);
  // The radius grows along the arm: each stretch's mean radius exceeds the one before.
  const radius = new Array(SPIRAL_BINS).fill(0), count = new Array(SPIRAL_BINS).fill(0);
  for (let i = 0; i < s.n; i++) {
    const b = s.labels![i];
    radius[b] += Math.hypot(s.data[2 * i], s.data[2 * i + 1]);
    count[b]++;
  }
  const means = radius.map((r, b) => r / count[b]);
  for (let b = 1; b < SPIRAL_BINS; b++) assert.ok(means[b] > means[b - 1] + 0.1, `${means}`);
  for (const c of count) assert.ok(Math.abs(c / s.n - 1 / SPIRAL_BINS) < 0.02);
  assert.equal(sampleToy("ramp", 10, new Random(1)).labels, undefined);
});
