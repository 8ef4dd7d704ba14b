/**
 * The spiral-arm membership metric: true points on the arm, uniform points off it at the area ratio,
 * hand-placed points, and bad inputs.
 */

import assert from "node:assert/strict";
import { Random } from "../../src/random.ts";
import { spiral } from "../../src/data/toy.ts";
import { isOnArm, offArmFraction } from "../../src/metrics/spiral_arm.ts";

Deno.test("true spiral points are all on the arm", () => {
  const { data } = spiral(50_000, new Random(1));
  assert.equal(offArmFraction(data), 0);
  // Without tolerance only float32 rounding at the band's edges can push a point off.
  assert.ok(offArmFraction(data, { tol: 0 }) < 1e-3);
});

Deno.test("uniform points in a square are mostly off the arm, at the area ratio", () => {
  // The widened band for u in [0, 1] has area 3 pi * integral of (r2^2 - r1^2) / 2 du with
  // r1 = a - tol, r2 = a + 0.15 + tol, a = 0.65 u + 0.25; the 1.5 turns never overlap, and the
  // outer radius 1.07 stays inside the square [-1.1, 1.1]^2.
  const tol = 0.02;
  const armArea = ((3 * Math.PI) * (0.15 + 2 * tol) * (2 * (0.325 + 0.25) + 0.15)) / 2;
  const expected = 1 - armArea / (2.2 * 2.2);
  const r = new Random(2);
  const n = 100_000;
  const u = r.uniforms(2 * n);
  const points = new Float32Array(2 * n);
  for (let i = 0; i < 2 * n; i++) points[i] = (u[i] - 0.5) * 2.2;
  const off = offArmFraction(points, { tol });
  assert.ok(Math.abs(off - expected) < 0.01, `off ${off}, expected ${expected}`);
  assert.ok(off > 0.7);
});

Deno.test("isOnArm on hand-placed points", () => {
  assert.ok(isOnArm(0.3, 0)); // u = 0, band [0.25, 0.40]
  assert.ok(isOnArm(0.7, 0)); // u = 2/3, band [0.683, 0.833]
  assert.ok(!isOnArm(0.5, 0)); // between the two turns
  assert.ok(isOnArm(-0.97, 0.001)); // u just under 1, band [0.9, 1.05]
  assert.ok(isOnArm(0, 0.5)); // u = 1/6, band [0.358, 0.508]
  assert.ok(!isOnArm(0, -0.2)); // u = 1/2 wants radius >= 0.575
  assert.ok(!isOnArm(0, 0));
  assert.ok(!isOnArm(NaN, 0));
  assert.ok(isOnArm(0.52, 0, 0.2)); // a wide tolerance reaches it
});

Deno.test("offArmFraction: bad inputs throw", () => {
  assert.throws(() => offArmFraction(new Float32Array(3)), /x, y pairs/);
  assert.throws(() => offArmFraction(new Float32Array(0)), /empty/);
  assert.throws(() => offArmFraction(new Float32Array(2), { tol: -1 }), /tol must be/);
});
