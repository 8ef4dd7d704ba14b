/**
 * The Fréchet distance between two feature sets, each summarised by a Gaussian (mean and
 * covariance): |mu1 - mu2|² + Tr(C1 + C2 - 2 (C1 C2)^(1/2)), as in FID.
 *
 * Computed stably in float64 without a non-symmetric matrix square root: C1^(1/2) comes from the
 * symmetric eigendecomposition of C1 (cyclic Jacobi), and Tr((C1 C2)^(1/2)) is the sum of the square
 * roots of the eigenvalues of the symmetric positive semi-definite C1^(1/2) C2 C1^(1/2), which has
 * the same eigenvalues as C1 C2. Tiny negative eigenvalues from rounding are clamped to zero.
 *
 * @module
 */

/** Mean and covariance of a feature set. */
export interface GaussianStats {
  /** Dimension d. */
  dim: number;
  /** Number of vectors summarised. */
  count: number;
  /** Mean, length d. */
  mean: Float64Array;
  /** Covariance, d x d row-major (unbiased: divided by count - 1). */
  cov: Float64Array;
}

/** Mean and (unbiased) covariance of `count` vectors of `dim` values, row-major in `features`. */
export function featureStats(features: ArrayLike<number>, dim: number): GaussianStats {
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`dim must be a positive integer`);
  if (features.length % dim !== 0) {
    throw new RangeError(`${features.length} values are not a whole number of ${dim}-d vectors`);
  }
  const n = features.length / dim;
  if (n < 2) throw new RangeError(`a covariance needs at least 2 vectors, got ${n}`);
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += features[i * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= n;
  const cov = new Float64Array(dim * dim), row = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) row[j] = features[i * dim + j] - mean[j];
    for (let a = 0; a < dim; a++) {
      const ra = row[a];
      if (ra === 0) continue;
      const o = a * dim;
      for (let b = a; b < dim; b++) cov[o + b] += ra * row[b];
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const v = cov[a * dim + b] / (n - 1);
      cov[a * dim + b] = v;
      cov[b * dim + a] = v;
    }
  }
  return { dim, count: n, mean, cov };
}

/** Eigenvalues and eigenvectors (columns of `vectors`, d x d row-major) of a symmetric matrix. */
export interface SymmetricEigen {
  /** Eigenvalues, in no particular order. */
  values: Float64Array;
  /** Eigenvector k is column k: vectors[i * d + k]. */
  vectors: Float64Array;
}

/**
 * Eigendecomposition of the symmetric d x d matrix `a` (row-major; only symmetry is assumed) by the
 * cyclic Jacobi method in float64, sweeping until the off-diagonal mass is negligible.
 */
export function symmetricEigen(a: ArrayLike<number>, d: number, maxSweeps = 100): SymmetricEigen {
  if (a.length !== d * d) throw new RangeError(`expected ${d * d} values, got ${a.length}`);
  const m = Float64Array.from(a);
  // Symmetrise against rounding in the caller's products.
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const s = 0.5 * (m[i * d + j] + m[j * d + i]);
      m[i * d + j] = s;
      m[j * d + i] = s;
    }
  }
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  let total = 0;
  for (let i = 0; i < d * d; i++) total += m[i] * m[i];
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += m[p * d + q] ** 2;
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = m[p * d + q];
        if (apq === 0) continue;
        const app = m[p * d + p], aqq = m[q * d + q];
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        // Rotate rows/columns p and q of m (A' = Jᵀ A J).
        for (let k = 0; k < d; k++) {
          const mkp = m[k * d + p], mkq = m[k * d + q];
          m[k * d + p] = c * mkp - s * mkq;
          m[k * d + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < d; k++) {
          const mpk = m[p * d + k], mqk = m[q * d + k];
          m[p * d + k] = c * mpk - s * mqk;
          m[q * d + k] = s * mpk + c * mqk;
        }
        m[p * d + q] = 0;
        m[q * d + p] = 0;
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p], vkq = v[k * d + q];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = m[i * d + i];
  return { values, vectors: v };
}

/** The square root of a symmetric positive semi-definite matrix (negative eigenvalues clamped). */
export function sqrtPsd(a: ArrayLike<number>, d: number): Float64Array {
  const { values, vectors: v } = symmetricEigen(a, d);
  const r = values.map((l) => Math.sqrt(Math.max(l, 0)));
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += v[i * d + k] * r[k] * v[j * d + k];
      out[i * d + j] = s;
      out[j * d + i] = s;
    }
  }
  return out;
}

function matmul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) {
      const aik = a[i * d + k];
      if (aik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j] += aik * b[k * d + j];
    }
  }
  return out;
}

/** Fréchet distance between two Gaussians given by their statistics. */
export function frechetDistance(s1: GaussianStats, s2: GaussianStats): number {
  const d = s1.dim;
  if (s2.dim !== d) throw new RangeError(`feature sizes differ: ${d} and ${s2.dim}`);
  let meanTerm = 0;
  for (let i = 0; i < d; i++) meanTerm += (s1.mean[i] - s2.mean[i]) ** 2;
  let trace = 0;
  for (let i = 0; i < d; i++) trace += s1.cov[i * d + i] + s2.cov[i * d + i];
  const r1 = sqrtPsd(s1.cov, d);
  const { values } = symmetricEigen(matmul(matmul(r1, s2.cov, d), r1, d), d);
  let cross = 0;
  for (const l of values) cross += Math.sqrt(Math.max(l, 0));
  // Rounding can leave a hair below zero for identical inputs.
  return Math.max(0, meanTerm + trace - 2 * cross);
}

/** Fréchet distance between two feature sets of `dim`-d vectors (row-major). */
export function frechetDistanceOf(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dim: number,
): number {
  return frechetDistance(featureStats(a, dim), featureStats(b, dim));
}
