/**
 * The share of generated points that lie off the data's support: farther than `radius` from every
 * point of a dense sample of the true distribution (for the spiral demo: 100,000 true points and a
 * radius of 0.1 in standardized units, so a point counts as a stray when no real point is that
 * close). Nearest neighbours are found on a grid of cells `radius` wide, so only the 3^d cells
 * around a point are searched; 1-D and 2-D data.
 *
 * @module
 */

/** Options of {@link offSupportFraction}. */
export interface OffSupportOptions {
  /** The distance beyond which a point is off the support (default 0.1). */
  radius?: number;
}

/** The default radius of {@link offSupportFraction}: 0.1 (standardized units in the demo). */
export const DEFAULT_SUPPORT_RADIUS = 0.1;

/**
 * Fraction of `points` (row-major, `dim` values each) farther than `radius` from every point of
 * `truth` (same layout). Non-finite points count as off the support.
 */
export function offSupportFraction(
  points: Float32Array,
  truth: Float32Array,
  dim: 1 | 2,
  options: OffSupportOptions = {},
): number {
  const radius = options.radius ?? DEFAULT_SUPPORT_RADIUS;
  if (!(Number.isFinite(radius) && radius > 0)) {
    throw new RangeError(`offSupportFraction: radius must be a positive number, got ${radius}`);
  }
  if (dim !== 1 && dim !== 2) {
    throw new RangeError(`offSupportFraction: dim must be 1 or 2, got ${dim}`);
  }
  for (const [name, a] of [["points", points], ["truth", truth]] as const) {
    if (a.length === 0 || a.length % dim !== 0) {
      throw new RangeError(
        `offSupportFraction: ${name} needs a positive multiple of ${dim} values, got ${a.length}`,
      );
    }
  }
  const key = (cx: number, cy: number) => `${cx},${cy}`;
  const cells = new Map<string, number[]>();
  const nt = truth.length / dim;
  for (let i = 0; i < nt; i++) {
    const x = truth[i * dim], y = dim === 2 ? truth[i * dim + 1] : 0;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    const k = key(Math.floor(x / radius), Math.floor(y / radius));
    const cell = cells.get(k);
    if (cell) cell.push(i);
    else cells.set(k, [i]);
  }
  const r2 = radius * radius, n = points.length / dim;
  let off = 0;
  for (let i = 0; i < n; i++) {
    const x = points[i * dim], y = dim === 2 ? points[i * dim + 1] : 0;
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      off++;
      continue;
    }
    const cx = Math.floor(x / radius), cy = Math.floor(y / radius);
    let near = false;
    for (let dx = -1; dx <= 1 && !near; dx++) {
      for (let dy = dim === 2 ? -1 : 0; dy <= (dim === 2 ? 1 : 0) && !near; dy++) {
        for (const j of cells.get(key(cx + dx, cy + dy)) ?? []) {
          const ex = truth[j * dim] - x, ey = dim === 2 ? truth[j * dim + 1] - y : 0;
          if (ex * ex + ey * ey <= r2) {
            near = true;
            break;
          }
        }
      }
    }
    if (!near) off++;
  }
  return off / n;
}
