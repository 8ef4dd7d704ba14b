/**
 * What the backend tests share: seeded test data and an element-wise closeness assertion.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Random } from "../../src/random.ts";

/** n uniforms in [lo, hi) from `rng`, as float32. */
export function uniformValues(rng: Random, n: number, lo = -1, hi = 1): Float32Array {
  const u = rng.uniforms(n), out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * u[i];
  return out;
}

/**
 * |actual - expected| <= tol * max(1, |expected|, scale) element-wise (NaN matches NaN); `scale`
 * is the size of the values the result was summed from, for long reductions.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  tol = 1e-4,
  scale = 0,
): void {
  assert.equal(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (a === e || (Number.isNaN(e) && Number.isNaN(a))) continue;
    assert.ok(
      Math.abs(a - e) <= tol * Math.max(1, Math.abs(e), scale),
      `${what}: element ${i} is ${a}, expected ${e}`,
    );
  }
}
