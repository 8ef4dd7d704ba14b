/** The Fréchet distance: exact cases, a rotated covariance, symmetry, and the Jacobi solver. */

import assert from "node:assert/strict";
import {
  featureStats,
  frechetDistance,
  frechetDistanceOf,
  type GaussianStats,
  sqrtPsd,
  symmetricEigen,
} from "../../src/metrics/frechet.ts";
import { Random } from "../../src/random.ts";

function stats(mean: number[], cov: number[]): GaussianStats {
  return { dim: mean.length, count: 0, mean: Float64Array.from(mean), cov: Float64Array.from(cov) };
}

function diag(v: number[]): number[] {
  const d = v.length, out = new Array(d * d).fill(0);
  v.forEach((x, i) => (out[i * d + i] = x));
  return out;
}

function close(a: number, b: number, rel: number, what = "") {
  assert.ok(
    Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b)),
    `${what}: ${a} vs ${b}`,
  );
}

Deno.test("featureStats: mean and unbiased covariance", () => {
  const s = featureStats([1, 2, 3, 6, 5, 10], 2);
  assert.deepEqual(Array.from(s.mean), [3, 6]);
  // x: 1,3,5 (var 4); y: 2,6,10 (var 16); cov 8.
  assert.deepEqual(Array.from(s.cov), [4, 8, 8, 16]);
  assert.throws(() => featureStats([1, 2, 3], 2), RangeError);
  assert.throws(() => featureStats([1, 2], 2), RangeError);
});

Deno.test("symmetricEigen reconstructs a random symmetric matrix", () => {
  const d = 12, r = new Random(3, 0), x = r.normals(d * d), a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) a[i * d + j] = x[i * d + j] + x[j * d + i];
  }
  const { values, vectors: v } = symmetricEigen(a, d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0, o = 0;
      for (let k = 0; k < d; k++) {
        s += v[i * d + k] * values[k] * v[j * d + k];
        o += v[k * d + i] * v[k * d + j];
      }
      close(s, a[i * d + j], 1e-10, `A[${i},${j}]`);
      close(o, i === j ? 1 : 0, 1e-10, `VᵀV[${i},${j}]`);
    }
  }
  const root = sqrtPsd([4, 0, 0, 9], 2);
  assert.deepEqual(Array.from(root).map((z) => Math.round(z * 1e12) / 1e12), [2, 0, 0, 3]);
});

Deno.test("identical feature sets are at distance 0", () => {
  const r = new Random(1, 0), d = 16, x = r.normals(200 * d);
  // Correlated features: mix the coordinates.
  for (let i = 0; i < 200; i++) for (let j = 1; j < d; j++) x[i * d + j] += 0.7 * x[i * d + j - 1];
  const s = featureStats(x, d);
  let tr = 0;
  for (let i = 0; i < d; i++) tr += s.cov[i * d + i];
  const f = frechetDistanceOf(x, Float64Array.from(x), d);
  assert.ok(f <= 1e-9 * tr, `distance ${f} (trace ${tr})`);
});

Deno.test("diagonal Gaussians match the closed form", () => {
  const a = [1, 4, 0.25, 9, 2], b = [4, 1, 1, 16, 0.5];
  const mu1 = [0, 1, 2, 3, 4], mu2 = [1, 1, 0, 3, -1];
  let want = 0;
  for (let i = 0; i < a.length; i++) {
    want += (Math.sqrt(a[i]) - Math.sqrt(b[i])) ** 2 + (mu1[i] - mu2[i]) ** 2;
  }
  const got = frechetDistance(stats(mu1, diag(a)), stats(mu2, diag(b)));
  close(got, want, 1e-12, "closed form");
});

Deno.test("rotated covariance agrees with an independent 2x2 computation, both ways round", () => {
  // C1 = R diag(4, 1) Rᵀ (rotation by 30°), C2 = diag(2, 3).
  const c = Math.cos(Math.PI / 6), s = Math.sin(Math.PI / 6);
  const c1 = [4 * c * c + s * s, (4 - 1) * c * s, (4 - 1) * c * s, 4 * s * s + c * c];
  const c2 = [2, 0, 0, 3];
  // For 2x2 PSD matrices: Tr(sqrt(M)) = sqrt(Tr M + 2 sqrt(det M)) with M = C1 C2.
  const m = [
    c1[0] * c2[0] + c1[1] * c2[2],
    c1[0] * c2[1] + c1[1] * c2[3],
    c1[2] * c2[0] + c1[3] * c2[2],
    c1[2] * c2[1] + c1[3] * c2[3],
  ];
  const det = m[0] * m[3] - m[1] * m[2];
  const trSqrt = Math.sqrt(m[0] + m[3] + 2 * Math.sqrt(det));
  const mu1 = [0.5, -1], mu2 = [0, 1];
  const want = 0.25 + 4 + (c1[0] + c1[3] + c2[0] + c2[3]) - 2 * trSqrt;
  const f12 = frechetDistance(stats(mu1, c1), stats(mu2, c2));
  const f21 = frechetDistance(stats(mu2, c2), stats(mu1, c1));
  close(f12, want, 1e-12, "rotated");
  close(f21, f12, 1e-12, "symmetry");
});

Deno.test("symmetric in its arguments on random feature sets", () => {
  const r = new Random(2, 0), d = 8;
  const x = r.normals(100 * d), y = r.normals(120 * d).map((v, i) => 1.5 * v + (i % d) * 0.1);
  const a = frechetDistanceOf(x, y, d), b = frechetDistanceOf(y, x, d);
  assert.ok(a > 0);
  close(a, b, 1e-10, "symmetry");
});
