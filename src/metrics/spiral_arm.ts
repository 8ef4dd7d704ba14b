/**
 * How many points of a generated spiral fall off the spiral's arm, in raw (unstandardized)
 * coordinates.
 *
 * The toy spiral (see `src/data/toy.ts`) puts a point at angle `theta = 3 pi u` and radius in
 * `[0.65 u + 0.25, 0.65 u + 0.40]` for `u` in [0, 1]. A point is on the arm when, for some `u` in
 * [0, 1] whose `theta` is congruent to the point's angle modulo 2 pi, its radius lies in that band
 * widened by `tol` on both sides. Since theta spans 1.5 turns, an angle matches one or two values
 * of `u`.
 *
 * @module
 */

/** Options of {@link offArmFraction}. */
export interface SpiralArmOptions {
  /** Radial tolerance added to both sides of the band (default 0.02). Must be finite and >= 0. */
  tol?: number;
}

/** Default radial tolerance of {@link isOnArm} and {@link offArmFraction}. */
export const DEFAULT_ARM_TOLERANCE = 0.02;

/**
 * True when the raw spiral point `(x, y)` is on the arm: its radius lies in
 * `[0.65 u + 0.25 - tol, 0.65 u + 0.40 + tol]` for some `u` in [0, 1] with `3 pi u` congruent to
 * its angle modulo 2 pi. The origin and non-finite points are off the arm.
 */
export function isOnArm(x: number, y: number, tol: number = DEFAULT_ARM_TOLERANCE): boolean {
  const r = Math.hypot(x, y);
  if (!Number.isFinite(r) || r === 0) return false;
  let phi = Math.atan2(y, x);
  if (phi < 0) phi += 2 * Math.PI; // phi in [0, 2 pi)
  for (let k = 0; k <= 1; k++) {
    const u = (phi + 2 * Math.PI * k) / (3 * Math.PI);
    if (u > 1) break;
    if (r >= 0.65 * u + 0.25 - tol && r <= 0.65 * u + 0.4 + tol) return true;
  }
  return false;
}

/**
 * Fraction of the raw (unstandardized) 2-D points, row-major `x0, y0, x1, y1, ...`, that are off
 * the spiral's arm (see {@link isOnArm}). Map standardized model output back to raw coordinates
 * first (`invertStandardization` in `src/data/toy.ts`).
 */
export function offArmFraction(rawPoints: Float32Array, options: SpiralArmOptions = {}): number {
  const tol = options.tol ?? DEFAULT_ARM_TOLERANCE;
  if (!(Number.isFinite(tol) && tol >= 0)) {
    throw new RangeError(`offArmFraction: tol must be a finite number >= 0, got ${tol}`);
  }
  if (rawPoints.length % 2 !== 0) {
    throw new RangeError(
      `offArmFraction: rawPoints has ${rawPoints.length} values; pass 2-D points as x, y pairs`,
    );
  }
  const n = rawPoints.length / 2;
  if (n === 0) throw new RangeError("offArmFraction: rawPoints is empty; pass at least one point");
  let off = 0;
  for (let i = 0; i < n; i++) {
    if (!isOnArm(rawPoints[2 * i], rawPoints[2 * i + 1], tol)) off++;
  }
  return off / n;
}
