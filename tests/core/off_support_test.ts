/**
 * offSupportFraction: points within the radius of some true point are on the support, the others
 * (and non-finite ones) off it, in 1-D and 2-D, across grid-cell boundaries; bad inputs are refused.
 */

import assert from "node:assert/strict";
import { offSupportFraction } from "../../src/metrics/off_support.ts";

Deno.test("offSupportFraction: 2-D points near and far from the true sample, across cell edges", () => {
  const truth = new Float32Array([0, 0, 1, 1, -0.35, 0.72]);
  // Cells are 0.1 wide: (0.099, 0) sits in the next cell but 0.099 from (0, 0); (0.07, 0.07) is
  // 0.099 from it diagonally; (0.08, 0.08) is 0.113 away, off; (1.05, 0.95) near (1, 1); (-0.2, 0.72)
  // is 0.15 from (-0.35, 0.72), off; NaN is off.
  const points = new Float32Array([
    0.099,
    0,
    0.07,
    0.07,
    0.08,
    0.08,
    1.05,
    0.95,
    -0.2,
    0.72,
    NaN,
    0,
  ]);
  assert.equal(offSupportFraction(points, truth, 2), 3 / 6);
  assert.equal(offSupportFraction(points, truth, 2, { radius: 0.2 }), 1 / 6);
});

Deno.test("offSupportFraction: 1-D", () => {
  const truth = new Float32Array([-1, 0.5, 2]);
  const points = new Float32Array([-0.95, 0.45, 0.62, 2.3, 1.95]);
  assert.equal(offSupportFraction(points, truth, 1), 2 / 5);
});

Deno.test("offSupportFraction: a true sample is on its own support; bad inputs are refused", () => {
  const truth = Float32Array.from({ length: 200 }, (_, i) => Math.sin(i) * 3);
  assert.equal(offSupportFraction(truth, truth, 2), 0);
  assert.throws(() => offSupportFraction(new Float32Array(3), truth, 2), /multiple of 2/);
  assert.throws(() => offSupportFraction(truth, new Float32Array(0), 2), /truth/);
  assert.throws(() => offSupportFraction(truth, truth, 2, { radius: 0 }), /radius/);
  assert.throws(() => offSupportFraction(truth, truth, 3 as 2), /dim must be 1 or 2/);
});
