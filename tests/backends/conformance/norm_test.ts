/**
 * Conformance of the normalisation kernels on every backend: `groupNorm` and its backward (y, the
 * saved statistics, dx, dgamma, dbeta) plain, fused with a SiLU (driven far into both tails, gamma
 * and beta as views of one storage, as in the parameter arena) and with a per-(sample, channel)
 * shift against the oracle's add then group norm (dshift included); a large mean beside a small
 * spread (reference and wasm); the errors for a fused SiLU without beta and a shift of the wrong size; and softmax
 * forward and backward.
 */

import assert from "node:assert/strict";
import type { Backend, GroupNormGeometry, Storage } from "../../../src/backend.ts";
import { maxRelError } from "../../helpers/compare.ts";
import { conformance, TOL } from "./harness.ts";

conformance("norm: groupNorm forward and backward", async (c) => {
  const { be, ref, data } = c;
  // Uniform x in [-2, 3), gamma in [0.5, 1.5), beta in [-1, 1); then normal x (scale 2, mean 0.5),
  // gamma (mean 1) and beta.
  const rows: [GroupNormGeometry, boolean][] = [
    [{ n: 1, c: 6, hw: 5, groups: 3, eps: 1e-5 }, false],
    [{ n: 2, c: 8, hw: 13, groups: 4, eps: 1e-5 }, false],
    [{ n: 3, c: 32, hw: 1, groups: 8, eps: 1e-5 }, false],
    [{ n: 2, c: 16, hw: 49, groups: 8, eps: 1e-6 }, false],
    [{ n: 1, c: 4, hw: 7, groups: 1, eps: 1e-5 }, false],
    [{ n: 3, c: 6, hw: 10, groups: 3, eps: 1e-5 }, true],
    [{ n: 2, c: 4, hw: 1, groups: 2, eps: 1e-5 }, true],
    [{ n: 2, c: 4, hw: 300, groups: 2, eps: 1e-5 }, true],
    [{ n: 1, c: 5, hw: 7, groups: 5, eps: 1e-3 }, true],
    [{ n: 70, c: 4, hw: 3, groups: 2, eps: 1e-5 }, true], // dgamma, dbeta: sums over 70 samples
  ];
  for (const [g, normal] of rows) {
    const what = `groupNorm ${JSON.stringify(g)}`, n = g.n * g.c * g.hw;
    const [xb, xr] = c.pair(normal ? data.normal(n, 2, 0.5) : data.uniform(n, -2, 3));
    const [gb, gr] = c.pair(normal ? data.normal(g.c, 1, 1) : data.uniform(g.c, 0.5, 1.5));
    const [bb, br] = c.pair(normal ? data.normal(g.c) : data.uniform(g.c));
    const f = be.groupNorm(xb, { gamma: gb, beta: bb }, g);
    const fr = ref.groupNorm(xr, { gamma: gr, beta: br }, g);
    await c.same(f.y, fr.y, `${what} y`);
    await c.same(f.mean, fr.mean, `${what} mean`);
    await c.same(f.rstd, fr.rstd, `${what} rstd`);
    const [db, dr] = c.pair(normal ? data.normal(n) : data.uniform(n));
    const b = be.groupNormBackward(db, { x: xb, gamma: gb, mean: f.mean, rstd: f.rstd }, g);
    const bref = ref.groupNormBackward(dr, { x: xr, gamma: gr, mean: fr.mean, rstd: fr.rstd }, g);
    await c.same(b.dx, bref.dx, `${what} dx`);
    await c.same(b.dgamma, bref.dgamma, `${what} dgamma`);
    await c.same(b.dbeta, bref.dbeta, `${what} dbeta`);
  }
});

conformance(
  "norm: groupNorm of a large mean beside a small spread keeps its variance",
  async (c) => {
    // Values of mean 40 and spread 0.01 (mean^2 / variance about 5e7) still normalise as the
    // reference does (wasm takes the statistics in one pass, in double precision). Not on WebGPU,
    // whose float32 statistics miss y by about 3e-4 here.
    const { be, ref, data } = c;
    const g = { n: 2, c: 16, hw: 784, groups: 8, eps: 1e-6 };
    const [xb, xr] = c.pair(data.uniform(g.n * g.c * g.hw, 39.99, 40.01));
    const [gb, gr] = c.pair(data.uniform(g.c, 0.5, 1.5)), [bb, br] = c.pair(data.uniform(g.c));
    const f = be.groupNorm(xb, { gamma: gb, beta: bb }, g);
    const fr = ref.groupNorm(xr, { gamma: gr, beta: br }, g);
    await c.same(f.rstd, fr.rstd, "rstd");
    await c.same(f.y, fr.y, "y");
  },
  { only: ["reference", "wasm"] },
);

conformance("norm: groupNorm fused with SiLU, forward and backward", async (c) => {
  const { be, ref, data } = c;
  // Uniform x in [-2, 3) and gamma in [-1.5, 1.5), then normal x (scale 2, mean 0.5) and gamma
  // (mean 1); the last of each drives the SiLU far into both tails (|z| up to about 60).
  const rows: [GroupNormGeometry, boolean, boolean][] = [
    [{ n: 1, c: 6, hw: 35, groups: 3, eps: 1e-5, silu: true }, false, false],
    [{ n: 3, c: 6, hw: 35, groups: 3, eps: 1e-5, silu: true }, false, false],
    [{ n: 2, c: 8, hw: 13, groups: 4, eps: 1e-5, silu: true }, false, false],
    [{ n: 3, c: 32, hw: 1, groups: 8, eps: 1e-5, silu: true }, false, false],
    [{ n: 2, c: 4, hw: 6, groups: 1, eps: 1e-6, silu: true }, false, false],
    [{ n: 1, c: 12, hw: 3, groups: 4, eps: 1e-5, silu: true }, false, false],
    [{ n: 2, c: 8, hw: 198, groups: 2, eps: 1e-5, silu: true }, false, false],
    [{ n: 2, c: 16, hw: 49, groups: 8, eps: 1e-5, silu: true }, false, true],
    [{ n: 1, c: 6, hw: 35, groups: 3, eps: 1e-5, silu: true }, true, false],
    [{ n: 3, c: 6, hw: 35, groups: 3, eps: 1e-5, silu: true }, true, false],
    [{ n: 2, c: 4, hw: 1, groups: 2, eps: 1e-5, silu: true }, true, false],
    [{ n: 2, c: 4, hw: 300, groups: 2, eps: 1e-5, silu: true }, true, false],
    [{ n: 2, c: 8, hw: 9, groups: 1, eps: 1e-3, silu: true }, true, true],
  ];
  let worst = 0;
  for (const [g, normal, tails] of rows) {
    const what = `groupNorm+silu ${JSON.stringify(g)}`, n = g.n * g.c * g.hw;
    const [xb, xr] = c.pair(normal ? data.normal(n, 2, 0.5) : data.uniform(n, -2, 3));
    const gamma = normal
      ? data.normal(g.c, tails ? 30 : 1, 1)
      : tails
      ? data.uniform(g.c, -30, 30)
      : data.uniform(g.c, -1.5, 1.5);
    const beta = normal ? data.normal(g.c) : data.uniform(g.c);
    // gamma and beta as views of one storage.
    const both = c.upload([...gamma, ...beta]);
    const gb = be.view(both, 0, g.c), bb = be.view(both, g.c, g.c);
    const gr = ref.upload(gamma), br = ref.upload(beta);
    const f = be.groupNorm(xb, { gamma: gb, beta: bb }, g);
    const fr = ref.groupNorm(xr, { gamma: gr, beta: br }, g);
    const track = async (s: Storage, r: Storage, k: string) => {
      worst = Math.max(worst, await c.track(s, r, `${what} ${k}`));
    };
    await track(f.y, fr.y, "y");
    await track(f.mean, fr.mean, "mean");
    await track(f.rstd, fr.rstd, "rstd");
    const [db, dr] = c.pair(normal ? data.normal(n) : data.uniform(n));
    const b = be.groupNormBackward(
      db,
      { x: xb, gamma: gb, beta: bb, mean: f.mean, rstd: f.rstd },
      g,
    );
    const bref = ref.groupNormBackward(dr, {
      x: xr,
      gamma: gr,
      beta: br,
      mean: fr.mean,
      rstd: fr.rstd,
    }, g);
    await track(b.dx, bref.dx, "dx");
    await track(b.dgamma, bref.dgamma, "dgamma");
    await track(b.dbeta, bref.dbeta, "dbeta");
  }
  console.log(`groupNorm+silu: max relative error vs reference ${worst.toExponential(2)}`);
  // The fused backward needs beta.
  assert.throws(
    () =>
      be.groupNormBackward(be.alloc(6), {
        x: be.alloc(6),
        gamma: be.alloc(3),
        mean: be.alloc(1),
        rstd: be.alloc(1),
      }, { n: 1, c: 3, hw: 2, groups: 1, eps: 1e-5, silu: true }),
    /beta/,
  );
});

/** Shapes [n, c, hw, groups] for the shift: odd hw, batch 1, one group and eight. */
const SHIFT_CASES: [number, number, number, number][] = [
  [1, 8, 35, 8],
  [3, 6, 35, 3],
  [2, 4, 1, 2],
  [2, 8, 9, 1],
  [1, 4, 5, 4],
  [2, 16, 49, 8],
  [1, 8, 198, 1],
];

/** The inputs of one shifted case: x, gamma, beta, shift [n, c] and the output gradient. */
interface ShiftInputs {
  x: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  shift: Float32Array;
  dy: Float32Array;
}

/** The outputs compared: forward y, mean, rstd; backward dx, dgamma, dbeta, dshift. */
const OUTPUTS = ["y", "mean", "rstd", "dx", "dgamma", "dbeta", "dshift"] as const;
type Outputs = Record<(typeof OUTPUTS)[number], Float32Array | Float64Array>;

/** `be`'s fused kernels with the shift, forward then backward. */
async function fusedShift(be: Backend, d: ShiftInputs, g: GroupNormGeometry): Promise<Outputs> {
  const [X, G, B, S] = [d.x, d.gamma, d.beta, d.shift].map((v) => be.upload(v));
  const f = be.groupNorm(X, { gamma: G, beta: B, shift: S }, g);
  const b = be.groupNormBackward(be.upload(d.dy), {
    x: X,
    gamma: G,
    beta: B,
    shift: S,
    mean: f.mean,
    rstd: f.rstd,
  }, g);
  assert.ok(b.dshift, "the backward with a shift returns dshift");
  const all = [f.y, f.mean, f.rstd, b.dx, b.dgamma, b.dbeta, b.dshift];
  const read = await Promise.all(all.map((s) => be.read(s)));
  return Object.fromEntries(OUTPUTS.map((k, i) => [k, read[i]])) as Outputs;
}

/** `be` unfused: the broadcast add, then the group norm; dshift sums dx over each plane. */
async function unfusedShift(be: Backend, d: ShiftInputs, g: GroupNormGeometry): Promise<Outputs> {
  const { n, c, hw } = g;
  const [X, G, B, S] = [d.x, d.gamma, d.beta, d.shift].map((v) => be.upload(v));
  const XS = be.binary("add", X, S, { a: [n, c, hw], b: [n, c, 1], out: [n, c, hw] });
  const f = be.groupNorm(XS, { gamma: G, beta: B }, g);
  const b = be.groupNormBackward(be.upload(d.dy), {
    x: XS,
    gamma: G,
    beta: B,
    mean: f.mean,
    rstd: f.rstd,
  }, g);
  const dshift = be.reduceSum(b.dx, [n * c, hw], [n * c, 1]);
  const all = [f.y, f.mean, f.rstd, b.dx, b.dgamma, b.dbeta, dshift];
  const read = await Promise.all(all.map((s) => be.read(s)));
  return Object.fromEntries(OUTPUTS.map((k, i) => [k, Float32Array.from(read[i])])) as Outputs;
}

conformance("norm: groupNorm with a shift equals the oracle's add then group norm", async (c) => {
  const { be, ref, data } = c;
  let worst = 0;
  for (const [k, [n, ch, hw, groups]] of SHIFT_CASES.entries()) {
    for (const silu of [false, true]) {
      const g: GroupNormGeometry = { n, c: ch, hw, groups, eps: 1e-5, silu };
      const what = JSON.stringify(g);
      const d: ShiftInputs = {
        x: data.normal(n * ch * hw, 2, 0.7),
        gamma: data.normal(ch, 0.8, 1),
        beta: data.normal(ch),
        shift: data.normal(n * ch, 1.5, -0.3),
        dy: data.normal(n * ch * hw),
      };
      const got = await fusedShift(be, d, g), want = await unfusedShift(ref, d, g);
      for (const out of OUTPUTS) {
        const err = maxRelError(got[out], want[out]);
        assert.ok(err <= TOL, `${what} case ${k} ${out}: max relative error ${err} > ${TOL}`);
        worst = Math.max(worst, err);
      }
    }
  }
  console.log(`groupNorm+shift: max relative error vs reference ${worst.toExponential(2)}`);
  const x = be.alloc(12), gb = be.alloc(3), g = { n: 2, c: 3, hw: 2, groups: 1, eps: 1e-5 };
  assert.throws(
    () => be.groupNorm(x, { gamma: gb, beta: gb, shift: be.alloc(3) }, g),
    /shift needs 6/,
  );
});

conformance("norm: softmax forward and backward", async (c) => {
  const { be, ref, data } = c;
  // Uniform in [-5, 5), then normal with scale 3.
  const rows: [number, number, boolean][] = [
    [1, 1, false],
    [5, 7, false],
    [3, 33, false],
    [64, 49, false],
    [2, 4, false],
    [7, 5, true],
    [3, 300, true],
    [1, 1, true],
  ];
  for (const [r, cols, normal] of rows) {
    const n = r * cols, what = `softmax ${r}x${cols}`;
    const [xb, xr] = c.pair(normal ? data.normal(n, 3) : data.uniform(n, -5, 5));
    const y = be.softmax(xb, r, cols), yr = ref.softmax(xr, r, cols);
    await c.same(y, yr, what);
    const [db, dr] = c.pair(normal ? data.normal(n) : data.uniform(n));
    await c.same(
      be.softmaxBackward(y, db, r, cols),
      ref.softmaxBackward(yr, dr, r, cols),
      `${what}'`,
    );
  }
});
