/**
 * The sliced Wasserstein metric: float sorting, 1-D distances by hand and under translation, 2-D
 * translations, symmetry and seeding, unit directions, the quality ratio and its speed, bad inputs.
 */

import assert from "node:assert/strict";
import { Random } from "../../src/random.ts";
import { gmm1d, spiral } from "../../src/data/toy.ts";
import {
  directionsFor,
  qualityRatio,
  slicedWasserstein,
  slicedWassersteinToReference,
  sortFloat32InPlace,
  unitDirections,
  wasserstein1Sorted,
} from "../../src/metrics/sliced_wasserstein.ts";

/** Values k / 1024 for random k: exactly representable, and exactly shiftable by 0.25. */
function dyadic(n: number, random: Random): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = random.int(0, 1024) / 1024;
  return out;
}

Deno.test("sortFloat32InPlace agrees with the float sort, negatives, zeros and infinities included", () => {
  const r = new Random(1);
  const x = new Float32Array(5000);
  for (let i = 0; i < x.length; i++) x[i] = (r.uniform() - 0.5) * 10 ** r.int(-30, 30);
  x.set([0, -0, Infinity, -Infinity, 1e-45, -1e-45], 0);
  const expected = x.slice().sort();
  const got = sortFloat32InPlace(x.slice());
  for (let i = 0; i < x.length; i++) assert.ok(got[i] === expected[i], `index ${i}`);
});

Deno.test("wasserstein1Sorted: hand-computed unequal sizes and equal sizes", () => {
  // A^-1 = 0 on (0, 1/2], 1 on (1/2, 1]; B^-1 = 0, 0.5, 1 on thirds: |diff| = 0.5 on (1/3, 2/3].
  assert.ok(Math.abs(wasserstein1Sorted([0, 1], [0, 0.5, 1]) - 1 / 6) < 1e-15);
  assert.ok(Math.abs(wasserstein1Sorted([0, 0.5, 1], [0, 1]) - 1 / 6) < 1e-15);
  assert.equal(wasserstein1Sorted([1, 2, 3], [2, 2, 5]), (1 + 0 + 2) / 3);
  assert.equal(wasserstein1Sorted([3], [0, 1, 2, 3]), (3 + 2 + 1 + 0) / 4);
  // One size a multiple of the other (each value faces three): 1 against 0, 1, 2; 2 against 3, 4, 5.
  assert.equal(wasserstein1Sorted([1, 2], [0, 1, 2, 3, 4, 5]), (1 + 0 + 1 + 1 + 2 + 3) / 6);
  assert.equal(wasserstein1Sorted([0, 1, 2, 3, 4, 5], [1, 2]), (1 + 0 + 1 + 1 + 2 + 3) / 6);
  assert.throws(() => wasserstein1Sorted([], [1]), /at least one value/);
});

Deno.test("1-D: a translated copy is exactly the translation away, for equal and unequal sizes", () => {
  const a = dyadic(3000, new Random(2));
  const b = a.map((x) => x + 0.25);
  assert.equal(slicedWasserstein(a, b, 1), 0.25);
  // Each point twice: the same quantile function, at a different size.
  const twice = new Float32Array(2 * a.length);
  for (let i = 0; i < a.length; i++) twice[2 * i] = twice[2 * i + 1] = a[i] - 0.25;
  assert.ok(Math.abs(slicedWasserstein(a, twice, 1) - 0.25) < 1e-12);
  assert.equal(slicedWasserstein(a, a, 1), 0);
});

Deno.test("2-D: a translated copy is mean |w . t| away over the seeded directions", () => {
  const a = spiral(2000, new Random(3)).data;
  const t = [0.3, -0.2];
  const b = a.map((x, i) => x + t[i % 2]);
  const dirs = directionsFor(2, { directions: 64, seed: 11 });
  let expected = 0;
  for (let k = 0; k < 64; k++) expected += Math.abs(dirs[2 * k] * t[0] + dirs[2 * k + 1] * t[1]);
  expected /= 64;
  const got = slicedWasserstein(a, b, 2, { directions: 64, seed: 11 });
  assert.ok(Math.abs(got - expected) < 1e-6, `${got} vs ${expected}`);
  // Over many directions E|w . t| = 2 |t| / pi on the circle.
  const many = slicedWasserstein(a, b, 2, { directions: 4096, seed: 1 });
  assert.ok(Math.abs(many - (2 * Math.hypot(t[0], t[1])) / Math.PI) < 0.01);
});

Deno.test("slicedWasserstein is symmetric, zero on identical sets, and fixed by its seed", () => {
  const a = spiral(1500, new Random(4)).data;
  const b = spiral(2500, new Random(5)).data;
  const ab = slicedWasserstein(a, b, 2);
  const ba = slicedWasserstein(b, a, 2);
  assert.ok(ab > 0);
  assert.ok(Math.abs(ab - ba) < 1e-12, `${ab} vs ${ba}`);
  assert.equal(slicedWasserstein(a, a, 2), 0);
  assert.equal(slicedWasserstein(a, b, 2, { seed: 3 }), slicedWasserstein(a, b, 2, { seed: 3 }));
  assert.notEqual(slicedWasserstein(a, b, 2, { seed: 3 }), slicedWasserstein(a, b, 2, { seed: 4 }));
  const many = slicedWassersteinToReference(b, [a, b], 2);
  assert.equal(many[0], ab);
  assert.equal(many[1], 0);
});

Deno.test("unitDirections: unit length, 1-D is the single axis", () => {
  const d = unitDirections(5, 50, new Random(6));
  for (let k = 0; k < 50; k++) {
    let s = 0;
    for (let j = 0; j < 5; j++) s += d[5 * k + j] ** 2;
    assert.ok(Math.abs(s - 1) < 1e-12);
  }
  assert.deepEqual(directionsFor(1, { directions: 128 }), new Float64Array([1]));
});

Deno.test("qualityRatio: fresh true sets score about 1 on average", () => {
  // One fresh set's ratio is noisy (the floor's std is about 30% of its mean), so average several.
  const trials = 16;
  let sum = 0;
  for (let t = 0; t < trials; t++) {
    const generated = spiral(1000, new Random(100 + t)).data;
    const truth = new Random(200 + t);
    const q = qualityRatio(generated, 2, (n) => spiral(n, truth).data, {
      trueSize: 10_000,
      directions: 32,
    });
    assert.ok(q.ratio > 0.4 && q.ratio < 2.5, `trial ${t}: ratio ${q.ratio}`);
    assert.ok(q.floorStd > 0 && q.floorStd < q.floor);
    assert.equal(q.ratio, q.distance / q.floor);
    sum += q.ratio;
  }
  const mean = sum / trials;
  assert.ok(mean > 0.8 && mean < 1.25, `mean ratio ${mean}`);
});

Deno.test("qualityRatio: shifted or blurred points score well above 2", () => {
  const truth = new Random(7);
  const sampler = (n: number) => spiral(n, truth).data;
  const base = spiral(2000, new Random(8)).data;
  const shifted = base.map((x, i) => (i % 2 === 0 ? x + 0.1 : x));
  // Sliced W1 is weak against symmetric blur: std 0.1 scores only about 1.5 at 2,000 points.
  const noise = new Random(9).normals(base.length);
  const blurred = base.map((x, i) => x + 0.3 * noise[i]);
  const options = { trueSize: 20_000 };
  const s = qualityRatio(shifted, 2, sampler, options);
  const b = qualityRatio(blurred, 2, sampler, options);
  assert.ok(s.ratio > 3, `shifted ratio ${s.ratio}`);
  assert.ok(b.ratio > 3, `blurred ratio ${b.ratio}`);
  // 1-D: the gmm with the wrong weights.
  const g = new Random(10);
  const wrong = gmm1d(2000, new Random(11), { p: 0.45 }).data;
  const w = qualityRatio(wrong, 1, (n) => gmm1d(n, g).data, options);
  assert.ok(w.ratio > 3, `wrong-weights ratio ${w.ratio}`);
});

Deno.test("qualityRatio: 10,000 generated vs 100,000 true 2-D points takes well under 10 s", () => {
  const generated = spiral(10_000, new Random(12)).data;
  const truth = new Random(13);
  const t0 = performance.now();
  const q = qualityRatio(generated, 2, (n) => spiral(n, truth).data);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(Number.isFinite(q.ratio));
  assert.ok(seconds < 10, `took ${seconds.toFixed(2)} s`);
});

Deno.test("bad inputs throw errors that name the problem", () => {
  const a = new Float32Array([0, 1, 2, 3]);
  assert.throws(() => slicedWasserstein(a, new Float32Array(3), 2), /set 0 has 3 values/);
  assert.throws(() => slicedWasserstein(a, new Float32Array(0), 2), /set 0 is empty/);
  assert.throws(() => slicedWasserstein(a, new Float32Array([0, NaN]), 2), /non-finite value NaN/);
  assert.throws(() => slicedWasserstein(a, a, 0), /dim must be a positive integer/);
  assert.throws(() => slicedWasserstein(a, a, 2, { directions: 0 }), /directions must be/);
  assert.throws(
    () => qualityRatio(a, 2, (n) => new Float32Array(n)),
    /must return a Float32Array of n \* dim = 200000 values/,
  );
  assert.throws(
    () => qualityRatio(a, 2, (n) => new Float32Array(2 * n), { floorSets: 0 }),
    /floorSets/,
  );
});
