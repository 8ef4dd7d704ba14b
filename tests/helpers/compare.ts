/**
 * The one comparison helper of the tests: seeded float32 test data, and element-wise comparisons
 * of arrays (within a relative tolerance, the worst relative error, and the same values exactly).
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

/** n normals times `scale` plus `shift` from `rng`, as float32. */
export function normalValues(rng: Random, n: number, scale = 1, shift = 0): Float32Array {
  const z = rng.normals(n), out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = z[i] * scale + shift;
  return out;
}

/**
 * |actual - expected| <= tol * max(1, |expected|, scale) element-wise (NaN matches NaN); `scale`
 * is the size of the values the result was summed from, for long reductions. With `tol` 0 the
 * values must be equal.
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
    // The message is built only on failure: outputs run to a million elements.
    if (!(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e), scale))) {
      assert.fail(`${what}: element ${i} is ${a}, expected ${e} (tol ${tol})`);
    }
  }
}

/**
 * The largest |actual - expected| / max(1, |expected|) over the elements (NaN if any element is
 * NaN on one side only); asserts equal lengths.
 */
export function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, "lengths differ");
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (a === e || (Number.isNaN(a) && Number.isNaN(e))) continue;
    const r = Math.abs(a - e) / Math.max(1, Math.abs(e));
    if (!(r <= worst)) worst = r;
  }
  return worst;
}

/**
 * The same numbers element by element (`Object.is`: -0 differs from 0), whatever the array types:
 * a bit-exact comparison of float32 results, also against float64 values that are float32 ones.
 */
export function assertSameValues(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}
