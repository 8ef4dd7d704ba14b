/**
 * Toy data distributions for diffusion experiments, and per-column standardization.
 *
 * Each distribution is defined by a few lines of sampling code (after a Mathematica original):
 *
 * - `gmm1d` (dim 1): `r = Normal(0, std)`, value `r + Sign(U - p) / 2` with `U ~ Uniform(0, 1)`;
 *   defaults `p = 0.3`, `std = 0.2`, so the value is near +0.5 with probability 0.7 and near -0.5
 *   with probability 0.3.
 * - `ramp` (dim 1): `min(U1, U2)` of two uniforms, with density `2 (1 - x)` on [0, 1].
 * - `spiral` (dim 2): `u = U`, `rho = 0.65 u + 0.25 + 0.15 U'`, `theta = 3 pi u`,
 *   point `(rho cos theta, rho sin theta)`.
 *
 * All randomness comes from a caller's {@link Random}, so a seed fixes the data.
 *
 * @module
 */

import type { Random } from "../random.ts";

/** The names of the toy distributions. */
export type ToyDistribution = "spiral" | "gmm1d" | "ramp";

/** Every toy distribution name, in a fixed order. */
export const TOY_DISTRIBUTIONS: readonly ToyDistribution[] = ["spiral", "gmm1d", "ramp"];

/** A sample of `n` points of dimension `dim`, stored row-major in `data` (`n * dim` values). */
export interface ToySample {
  /** The points, row-major: point `i` is `data[i * dim .. i * dim + dim - 1]`. */
  data: Float32Array;
  /** Values per point. */
  dim: number;
  /** Number of points. */
  n: number;
  /**
   * A class a point, for class-conditional models (`train({ data: { labels } })`): gmm1d's
   * component (0 for the one at -0.5, 1 for +0.5), the spiral's position along its arm in
   * {@link SPIRAL_BINS} bins from the centre out; the ramp has none.
   */
  labels?: Int32Array;
  /** The number of classes of `labels`. */
  classes?: number;
}

/** The spiral's labels: its arm cut into this many stretches of equal length in u. */
export const SPIRAL_BINS = 4;

/** Parameters of {@link gmm1d}. */
export interface Gmm1dOptions {
  /** Probability of the -0.5 component (default 0.3). Must lie in [0, 1]. */
  p?: number;
  /** Standard deviation of each component (default 0.2). Must be finite and >= 0. */
  std?: number;
}

/** Per-column statistics used by {@link standardize}: `z = (x - mean) / std`. */
export interface Standardization {
  /** Column means, one per dimension. */
  mean: number[];
  /** Column sample standard deviations (divisor n - 1), one per dimension. */
  std: number[];
}

/** The result of {@link standardize}: the standardized data and the statistics used. */
export interface Standardized {
  /** The standardized points, row-major, same shape as the input. */
  data: Float32Array;
  /** The per-column mean and standard deviation that were removed. */
  stats: Standardization;
}

function checkCount(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`sample size n must be a non-negative integer, got ${n}`);
  }
}

/** True when `name` is one of the toy distribution names. */
export function isToyDistribution(name: string): name is ToyDistribution {
  return (TOY_DISTRIBUTIONS as readonly string[]).includes(name);
}

/** Number of values per point of a toy distribution: 2 for `spiral`, 1 for `gmm1d` and `ramp`. */
export function toyDim(dist: ToyDistribution): number {
  switch (dist) {
    case "spiral":
      return 2;
    case "gmm1d":
    case "ramp":
      return 1;
    default:
      throw new Error(
        `unknown toy distribution ${JSON.stringify(dist)}; use one of ${
          TOY_DISTRIBUTIONS.join(", ")
        }`,
      );
  }
}

/**
 * `n` draws of the two-component 1-D mixture `Normal(0, std) + Sign(U - p) / 2`.
 * Draws `n` normals, then `n` uniforms, from `random`.
 */
export function gmm1d(n: number, random: Random, options: Gmm1dOptions = {}): ToySample {
  checkCount(n);
  const p = options.p ?? 0.3;
  const std = options.std ?? 0.2;
  if (!(p >= 0 && p <= 1)) {
    throw new RangeError(`gmm1d: p must be a probability in [0, 1], got ${p}`);
  }
  if (!(Number.isFinite(std) && std >= 0)) {
    throw new RangeError(`gmm1d: std must be a finite number >= 0, got ${std}`);
  }
  const r = random.normals(n);
  const u = random.uniforms(n);
  const data = new Float32Array(n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    data[i] = std * r[i] + Math.sign(u[i] - p) / 2;
    labels[i] = u[i] > p ? 1 : 0;
  }
  return { data, dim: 1, n, labels, classes: 2 };
}

/** `n` draws of `min(U1, U2)`. Draws `n` uniforms for U1, then `n` for U2, from `random`. */
export function ramp(n: number, random: Random): ToySample {
  checkCount(n);
  const a = random.uniforms(n);
  const b = random.uniforms(n);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.min(a[i], b[i]);
  return { data, dim: 1, n };
}

/**
 * `n` points on the spiral: `u = U`, `rho = 0.65 u + 0.25 + 0.15 U'`, `theta = 3 pi u`, point
 * `(rho cos theta, rho sin theta)`. Draws `n` uniforms for `u`, then `n` for `U'`, from `random`.
 */
export function spiral(n: number, random: Random): ToySample {
  checkCount(n);
  const u = random.uniforms(n);
  const w = random.uniforms(n);
  const data = new Float32Array(2 * n), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = Math.min(SPIRAL_BINS - 1, Math.floor(u[i] * SPIRAL_BINS));
    const rho = u[i] * 0.65 + 0.25 + 0.15 * w[i];
    const theta = 3 * Math.PI * u[i];
    data[2 * i] = Math.cos(theta) * rho;
    data[2 * i + 1] = Math.sin(theta) * rho;
  }
  return { data, dim: 2, n, labels, classes: SPIRAL_BINS };
}

/** `n` raw (unstandardized) points of the named toy distribution, with its default parameters. */
export function sampleToy(dist: ToyDistribution, n: number, random: Random): ToySample {
  switch (dist) {
    case "spiral":
      return spiral(n, random);
    case "gmm1d":
      return gmm1d(n, random);
    case "ramp":
      return ramp(n, random);
    default:
      throw new Error(
        `unknown toy distribution ${JSON.stringify(dist)}; use one of ${
          TOY_DISTRIBUTIONS.join(", ")
        }`,
      );
  }
}

function checkShape(what: string, data: Float32Array, dim: number): number {
  if (!Number.isSafeInteger(dim) || dim < 1) {
    throw new RangeError(`${what}: dim must be a positive integer, got ${dim}`);
  }
  if (data.length % dim !== 0) {
    throw new RangeError(
      `${what}: data length ${data.length} is not a multiple of dim ${dim}; pass n * dim values`,
    );
  }
  return data.length / dim;
}

function checkStats(what: string, stats: Standardization, dim: number): void {
  if (stats.mean.length !== dim || stats.std.length !== dim) {
    throw new RangeError(
      `${what}: stats have ${stats.mean.length} means and ${stats.std.length} stds but dim is ${dim}; ` +
        `use the stats returned by standardize for data of the same dim`,
    );
  }
  for (let d = 0; d < dim; d++) {
    if (!Number.isFinite(stats.mean[d]) || !(stats.std[d] > 0 && Number.isFinite(stats.std[d]))) {
      throw new RangeError(
        `${what}: column ${d} needs a finite mean and a finite std > 0, got mean ${
          stats.mean[d]
        }, std ${stats.std[d]}`,
      );
    }
  }
}

/**
 * Per-column mean and sample standard deviation (divisor n - 1) of row-major `data`.
 * Needs at least 2 points, and every column must vary.
 */
export function columnStats(data: Float32Array, dim: number): Standardization {
  const n = checkShape("columnStats", data, dim);
  if (n < 2) {
    throw new RangeError(`columnStats: need at least 2 points to estimate a std, got ${n}`);
  }
  const mean: number[] = [];
  const std: number[] = [];
  for (let d = 0; d < dim; d++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += data[i * dim + d];
    const m = s / n;
    let ss = 0;
    for (let i = 0; i < n; i++) {
      const e = data[i * dim + d] - m;
      ss += e * e;
    }
    const sd = Math.sqrt(ss / (n - 1));
    if (!(sd > 0) || !Number.isFinite(sd)) {
      throw new RangeError(
        `columnStats: column ${d} has std ${sd}; standardization needs finite, non-constant columns`,
      );
    }
    mean.push(m);
    std.push(sd);
  }
  return { mean, std };
}

/**
 * Standardizes each column of row-major `data`: subtracts the column mean and divides by the column
 * sample standard deviation (divisor n - 1). Returns the new data and the statistics used.
 */
export function standardize(data: Float32Array, dim: number): Standardized {
  const stats = columnStats(data, dim);
  return { data: applyStandardization(data, dim, stats), stats };
}

/** Maps raw points to standardized coordinates with given statistics: `(x - mean) / std`. */
export function applyStandardization(
  data: Float32Array,
  dim: number,
  stats: Standardization,
): Float32Array {
  const n = checkShape("applyStandardization", data, dim);
  checkStats("applyStandardization", stats, dim);
  const out = new Float32Array(data.length);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < dim; d++) {
      out[i * dim + d] = (data[i * dim + d] - stats.mean[d]) / stats.std[d];
    }
  }
  return out;
}

/** Maps standardized points back to raw coordinates: `z * std + mean`. */
export function invertStandardization(
  data: Float32Array,
  dim: number,
  stats: Standardization,
): Float32Array {
  const n = checkShape("invertStandardization", data, dim);
  checkStats("invertStandardization", stats, dim);
  const out = new Float32Array(data.length);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < dim; d++) {
      out[i * dim + d] = data[i * dim + d] * stats.std[d] + stats.mean[d];
    }
  }
  return out;
}
