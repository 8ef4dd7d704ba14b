/**
 * Conformance of the element-wise kernels on every backend: every unary op (from `UNARY_OPS`) and
 * its gradient at sizes 1 to 1000, with large arguments and special values, the ops without a
 * gradient refusing one; every binary op (from `BINARY_OPS`) under every broadcasting pattern; and
 * affine, clamp and axpy, into views and between aliased views of one storage; combine (the
 * samplers' linear combinations) bit for bit as float32 math on wasm; and exp, sigmoid,
 * silu and tanh within 1e-6 relative of float64 math over dense sweeps (reference and wasm).
 */

import assert from "node:assert/strict";
import {
  BINARY_OPS,
  NON_DIFFERENTIABLE_UNARY_OPS,
  UNARY_OPS,
  type UnaryOp,
} from "../../../src/backend.ts";
import { assertSameValues } from "../../helpers/compare.ts";
import { conformance } from "./harness.ts";

/** The unary ops defined only for positive arguments. */
const POSITIVE = new Set<UnaryOp>(["log", "sqrt", "rsqrt"]);

/** Relative tolerances of the unary ops and of their gradients. */
const UNARY_TOL = 2e-5, UNARY_GRAD_TOL = 5e-5;

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

conformance("elementwise: unary ops and their gradients", async (c) => {
  const { be, ref, data } = c;
  // Uniform arguments at sizes 1 to 1000, and 517 normal ones with large values planted.
  const rows = [
    { n: 1 },
    { n: 3 },
    { n: 37 },
    { n: 1000 },
    { n: 517, normal: true },
  ];
  for (const { n, normal } of rows) {
    for (const op of UNARY_OPS) {
      let x: Float32Array;
      if (normal) {
        x = POSITIVE.has(op) ? data.normal(n).map((v) => Math.abs(v) + 0.05) : data.normal(n, 3);
        if (op === "sin" || op === "cos") x[0] = 1000.5; // argument reduction
        if (op === "tanh" || op === "sigmoid" || op === "silu") x[1] = 60, x[2] = -60;
      } else {
        x = POSITIVE.has(op) ? data.uniform(n, 0.05, 4) : data.uniform(n, -6, 6);
      }
      const what = `${op} n=${n}${normal ? " (normal)" : ""}`;
      const [xb, xr] = c.pair(x);
      await c.same(be.unary(op, xb), ref.unary(op, xr), what, UNARY_TOL);
      if (NON_DIFFERENTIABLE_UNARY_OPS.has(op)) {
        assert.throws(() => be.unaryBackward(op, xb, xb), /no gradient/);
        continue;
      }
      const [db, dr] = c.pair(normal ? data.normal(n) : data.uniform(n), 1);
      await c.same(
        be.unaryBackward(op, xb, db),
        ref.unaryBackward(op, xr, dr),
        `${what}'`,
        UNARY_GRAD_TOL,
      );
    }
  }
  // Special values: zeros, tiny and large magnitudes.
  const [xb, xr] = c.pair([0, -0, 1e-8, -1e-8, 50, -50, 100, -100, 88, -88]);
  for (const op of ["relu", "silu", "gelu", "tanh", "sigmoid", "exp", "sign", "abs"] as const) {
    await c.same(be.unary(op, xb), ref.unary(op, xr), `${op} special`, UNARY_TOL);
  }
});

conformance("elementwise: binary ops under every broadcasting pattern", async (c) => {
  const { be, ref, data } = c;
  const cases: [number[], number[], number[]][] = [
    [[37], [37], [37]],
    [[1], [1], [1]],
    [[5, 7], [5, 7], [5, 7]],
    [[5, 7], [1, 7], [5, 7]],
    [[5, 7], [5, 1], [5, 7]],
    [[1, 7], [5, 7], [5, 7]],
    [[4, 1], [1, 6], [4, 6]],
    [[1, 1], [3, 5], [3, 5]],
    [[1, 1], [7, 9], [7, 9]],
    [[6, 1], [1, 1], [6, 1]],
    [[3, 1, 5], [1, 4, 5], [3, 4, 5]],
    [[3, 5, 7], [1, 5, 1], [3, 5, 7]],
    [[3, 5, 7], [3, 1, 7], [3, 5, 7]],
    [[1, 3, 1], [2, 3, 9], [2, 3, 9]],
    [[2, 3, 4, 5], [2, 1, 4, 1], [2, 3, 4, 5]],
    [[2, 3, 4, 5], [1, 3, 1, 1], [2, 3, 4, 5]],
    [[2, 1, 4, 1], [1, 3, 1, 5], [2, 3, 4, 5]],
    [[2, 1, 3, 1, 2], [1, 4, 1, 5, 2], [2, 4, 3, 5, 2]],
    [[64, 256], [1, 256], [64, 256]],
  ];
  for (const op of BINARY_OPS) {
    for (const [as, bs, out] of cases) {
      const [ab, ar] = c.pair(data.normal(size(as)));
      const b = op === "div" ? data.awayFromZero(size(bs)) : data.normal(size(bs));
      const [bb, br] = c.pair(b, 1);
      await c.same(
        be.binary(op, ab, bb, { a: as, b: bs, out }),
        ref.binary(op, ar, br, { a: as, b: bs, out }),
        `${op} [${as}] [${bs}]`,
      );
    }
  }
});

conformance("elementwise: affine, clamp, and axpy into views (aliased too)", async (c) => {
  const { be, ref, data } = c;
  const rows = [
    { n: 1, scale: 0.37, shift: -1.25, lo: -1, hi: 0.5, alpha: -0.7 },
    { n: 6, scale: 0.37, shift: -1.25, lo: -1, hi: 0.5, alpha: -0.7 },
    { n: 77, scale: 0.37, shift: -1.25, lo: -1, hi: 0.5, alpha: -0.7 },
    { n: 300, scale: -1.5, shift: 0.25, lo: -0.5, hi: 0.7, alpha: 0.3 },
  ];
  for (const { n, scale, shift, lo, hi, alpha } of rows) {
    const [xb, xr] = c.pair(data.uniform(n, -3, 3));
    await c.same(be.affine(xb, scale, shift), ref.affine(xr, scale, shift), `affine ${n}`);
    await c.same(be.clamp(xb, lo, hi), ref.clamp(xr, lo, hi), `clamp ${n}`);
    // Into a view of a longer storage (itself a view on the backend under test).
    const [yb, yr] = c.pair(data.uniform(n + 5));
    be.axpy(be.view(yb, 2, n), xb, alpha);
    ref.axpy(ref.view(yr, 2, n), xr, alpha);
    await c.same(yb, yr, `axpy ${n}`);
  }
  // y and x are views of one storage.
  const buf = c.upload([1, 2, 3, 4, 5, 6]);
  be.axpy(be.view(buf, 0, 3), be.view(buf, 3, 3), 2);
  assert.deepEqual([...await c.read(buf)], [9, 12, 15, 4, 5, 6]);
});

conformance("elementwise: combine, one to four terms, scaled and clipped", async (c) => {
  const { be, ref, data, target } = c;
  // Coefficients that float32 holds exactly, so that every backend's rounding is the oracle's.
  const coef = [0.375, -1.25, 0.8125, -0.0625];
  for (const n of [1, 6, 77, 300]) {
    const xs = coef.map((_, t) => c.pair(data.uniform(n, -3, 3), t + 1));
    for (let terms = 1; terms <= 4; terms++) {
      for (const clip of [null, 1.5]) {
        const scale = terms % 2 ? 1 : 0.75, what = `combine ${n}, ${terms} terms, clip ${clip}`;
        const got = be.combine(
          xs.slice(0, terms).map(([x], t) => ({ x, scale: coef[t] })),
          scale,
          clip,
        );
        const want = ref.combine(
          xs.slice(0, terms).map(([, x], t) => ({ x, scale: coef[t] })),
          scale,
          clip,
        );
        // wasm rounds as the float32 oracle does; WebGPU may fuse a multiply-add.
        if (target.kind === "wasm") await c.exact(got, want, what);
        else await c.same(got, want, what);
      }
    }
  }
  // The clamp bounds both signs, and keeps NaN as clamp does (not asked of WebGPU: WGSL lets an
  // implementation assume no NaN).
  const v = await c.read(be.combine([{ x: c.upload([5, -5, 0.25, NaN]), scale: 2 }], 1, 1));
  assert.deepEqual([...v.slice(0, 3)], [1, -1, 0.5]);
  if (target.kind !== "webgpu") assert.ok(Number.isNaN(v[3]));
  assert.throws(() => be.combine([], 1, null), RangeError);
  const [a] = c.pair(data.uniform(3)), [b] = c.pair(data.uniform(4));
  assert.throws(
    () => be.combine([{ x: a, scale: 1 }, { x: b, scale: 1 }], 1, null),
    /lengths 3 and 4/,
  );
  const five = Array.from({ length: 5 }, () => ({ x: a, scale: 1 }));
  assert.throws(() => be.combine(five, 1, null), /5 terms/);
});

conformance(
  "elementwise: combine has the bits of the affine, add and clamp kernels it replaces",
  async (c) => {
    // What the samplers rely on: their updates moved from chains of kernels to combine without
    // changing a sample's bits (not asked of WebGPU, whose compiler may fuse multiply-adds).
    const { be, data } = c;
    const n = 301;
    const [x] = c.pair(data.uniform(n, -3, 3)), [y] = c.pair(data.uniform(n, -3, 3));
    const [z] = c.pair(data.uniform(n, -3, 3));
    const [a, s, c1, c2, sigma] = [0.71, 0.6913, 0.318, 0.6527, 0.0913];
    // The x0 estimate: clamp((x - s y) / a).
    const chainX0 = be.clamp(
      be.affine(be.binary("sub", x, be.affine(y, s, 0), same(n)), 1 / a, 0),
      -1,
      1,
    );
    const fusedX0 = be.combine([{ x, scale: 1 }, { x: y, scale: -s }], 1 / a, 1);
    assertSameValues(await c.read(fusedX0), await c.read(chainX0), "x0 estimate");
    // The ancestral update: c1 x0 + c2 x + sigma z.
    const mean = be.binary("add", be.affine(chainX0, c1, 0), be.affine(x, c2, 0), same(n));
    const chain = be.binary("add", mean, be.affine(z, sigma, 0), same(n));
    const fused = be.combine(
      [{ x: fusedX0, scale: c1 }, { x, scale: c2 }, { x: z, scale: sigma }],
      1,
      null,
    );
    assertSameValues(await c.read(fused), await c.read(chain), "ancestral update");
  },
  { only: ["reference", "wasm"] },
);

/** The broadcast shapes of two equal vectors of n values. */
function same(n: number) {
  return { a: [n], b: [n], out: [n] };
}

conformance(
  "elementwise: exp, sigmoid, silu and tanh within 1e-6 relative of float64 math",
  async (c) => {
    // Dense sweeps: exp over nearly its whole float32 range, the others where they are not flat.
    // Not on WebGPU, whose exp is a few ulp off (3e-6 relative on llvmpipe): its unary ops are
    // held to UNARY_TOL against the reference above.
    const sweep = (lo: number, hi: number, n: number) => {
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = lo + ((hi - lo) * i) / (n - 1);
      return x;
    };
    const f64: Record<string, (v: number) => number> = {
      exp: Math.exp,
      sigmoid: (v) => 1 / (1 + Math.exp(-v)),
      silu: (v) => v / (1 + Math.exp(-v)),
      tanh: Math.tanh,
    };
    const sweeps = [
      ["exp", sweep(-87, 88, 20001)],
      ["sigmoid", sweep(-30, 30, 6001)],
      ["silu", sweep(-30, 30, 6001)],
      ["tanh", sweep(-10, 10, 4001)],
    ] as const;
    for (const [op, x] of sweeps) {
      const y = await c.read(c.be.unary(op, c.upload(x)));
      for (let i = 0; i < x.length; i++) {
        const e = f64[op](x[i]);
        assert.ok(
          Math.abs(y[i] - e) <= 1e-6 * Math.abs(e) + 1e-30,
          `${op}(${x[i]}) is ${y[i]}, expected ${e}`,
        );
      }
    }
  },
  { only: ["reference", "wasm"] },
);
