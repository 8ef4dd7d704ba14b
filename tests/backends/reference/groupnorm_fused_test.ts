/**
 * The reference backend's group normalisation fused with SiLU and with a per-(sample, channel)
 * shift (the ResBlock's time-embedding add), in float64: the fused forward against silu(groupNorm)
 * computed directly from per-group statistics; the fused backward against the unfused kernels
 * composed; the shifted kernels, with and without the SiLU, against the broadcast add then the
 * group norm, forward and backward with dshift (and the shift must matter). Every backend's fused
 * kernels are checked against the reference in tests/backends/conformance/norm_test.ts.
 */

import assert from "node:assert/strict";
import type { GroupNormGeometry, Storage } from "../../../src/backend.ts";
import {
  createReferenceBackend,
  type ReferenceBackend,
} from "../../../src/backends/reference/mod.ts";
import { Random } from "../../../src/random.ts";
import { maxRelError } from "../../helpers/compare.ts";

const be = createReferenceBackend({ dtype: "float64" });

async function read(s: Storage): Promise<Float64Array> {
  return Float64Array.from(await be.read(s));
}

const silu64 = (z: number): number => z / (1 + Math.exp(-z));

/** Shapes [n, c, hw, groups], odd ones included. */
const CASES: [number, number, number, number][] = [
  [1, 6, 35, 3],
  [3, 6, 35, 3],
  [2, 4, 1, 2],
  [2, 8, 9, 1],
  [1, 4, 5, 4],
];

/** Inputs of one case: x with a non-zero mean, gamma around 1 with some negative, beta. */
function inputs(n: number, c: number, hw: number, seed: number) {
  const rng = new Random(71, seed);
  const x = rng.normals(n * c * hw).map((v) => 2 * v + 0.7);
  const gamma = rng.normals(c).map((v) => 1 + 0.8 * v);
  const beta = rng.normals(c);
  return { x, gamma, beta };
}

Deno.test("reference groupNorm + silu: fused forward equals silu of a direct group norm", async (t) => {
  for (const [n, c, hw, groups] of CASES) {
    await t.step(`n=${n} c=${c} hw=${hw} groups=${groups}`, async () => {
      const { x, gamma, beta } = inputs(n, c, hw, n * 1000 + c * 100 + hw + groups);
      const eps = 1e-5, cpg = c / groups;
      const g: GroupNormGeometry = { n, c, hw, groups, eps, silu: true };
      const r = be.groupNorm(be.upload(x), { gamma: be.upload(gamma), beta: be.upload(beta) }, g);
      const y = await read(r.y), mu = await read(r.mean), rs = await read(r.rstd);
      const expected = new Float64Array(x.length);
      const expMu = new Float64Array(n * groups), expRs = new Float64Array(n * groups);
      for (let ni = 0; ni < n; ni++) {
        for (let gi = 0; gi < groups; gi++) {
          const o = (ni * c + gi * cpg) * hw, size = cpg * hw;
          let m = 0;
          for (let i = 0; i < size; i++) m += x[o + i];
          m /= size;
          let v = 0;
          for (let i = 0; i < size; i++) v += (x[o + i] - m) ** 2;
          const rstd = 1 / Math.sqrt(v / size + eps);
          expMu[ni * groups + gi] = m;
          expRs[ni * groups + gi] = rstd;
          for (let i = 0; i < size; i++) {
            const ch = gi * cpg + Math.floor(i / hw);
            expected[o + i] = silu64(gamma[ch] * (x[o + i] - m) * rstd + beta[ch]);
          }
        }
      }
      assert.ok(maxRelError(y, expected) < 1e-12, `y: ${maxRelError(y, expected)}`);
      assert.ok(maxRelError(mu, expMu) < 1e-12, "mean");
      assert.ok(maxRelError(rs, expRs) < 1e-12, "rstd");
      // The statistics are the unfused kernel's.
      const plain = be.groupNorm(be.upload(x), { gamma: be.upload(gamma), beta: be.upload(beta) }, {
        ...g,
        silu: false,
      });
      assert.deepEqual(mu, await read(plain.mean));
      assert.deepEqual(rs, await read(plain.rstd));
    });
  }
});

Deno.test("reference groupNorm + silu: fused backward equals the unfused kernels composed", async (t) => {
  for (const [n, c, hw, groups] of CASES) {
    await t.step(`n=${n} c=${c} hw=${hw} groups=${groups}`, async () => {
      const { x, gamma, beta } = inputs(n, c, hw, 7 + n * 1000 + c * 100 + hw + groups);
      const dyData = new Random(72, x.length).normals(x.length);
      const X = be.upload(x), G = be.upload(gamma), B = be.upload(beta), dy = be.upload(dyData);
      const g: GroupNormGeometry = { n, c, hw, groups, eps: 1e-5 };
      const plain = be.groupNorm(X, { gamma: G, beta: B }, g);
      // Unfused: dz = silu'(z) dy with z the plain output, then the plain group-norm backward.
      const dz = be.unaryBackward("silu", plain.y, dy);
      const want = be.groupNormBackward(
        dz,
        { x: X, gamma: G, mean: plain.mean, rstd: plain.rstd },
        g,
      );
      const gs = { ...g, silu: true };
      const fused = be.groupNorm(X, { gamma: G, beta: B }, gs);
      const got = be.groupNormBackward(dy, {
        x: X,
        gamma: G,
        beta: B,
        mean: fused.mean,
        rstd: fused.rstd,
      }, gs);
      for (const k of ["dx", "dgamma", "dbeta"] as const) {
        const err = maxRelError(await read(got[k]), await read(want[k]));
        assert.ok(err < 1e-12, `${k}: ${err}`);
      }
      assert.throws(
        () => be.groupNormBackward(dy, { x: X, gamma: G, mean: fused.mean, rstd: fused.rstd }, gs),
        /beta/,
      );
    });
  }
});

// ---- the fused per-(sample, channel) shift ------------------------------------------------------

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

/** The float32 inputs of one shifted case: x, gamma, beta, shift [n, c] and the output gradient. */
function shiftInputs(n: number, c: number, hw: number, seed: number) {
  const rng = new Random(74, seed);
  const f32 = (v: ArrayLike<number>) => Float32Array.from(v);
  return {
    x: f32(rng.normals(n * c * hw).map((v) => 2 * v + 0.7)),
    gamma: f32(rng.normals(c).map((v) => 1 + 0.8 * v)),
    beta: f32(rng.normals(c)),
    shift: f32(rng.normals(n * c).map((v) => 1.5 * v - 0.3)),
    dy: f32(rng.normals(n * c * hw)),
  };
}

type ShiftInputs = ReturnType<typeof shiftInputs>;
/** The outputs compared: forward y, mean, rstd; backward dx, dgamma, dbeta, dshift. */
const OUTPUTS = ["y", "mean", "rstd", "dx", "dgamma", "dbeta", "dshift"] as const;
type Outputs = Record<(typeof OUTPUTS)[number], Float32Array | Float64Array>;

/** `be`'s fused kernels with the shift, forward then backward. */
async function fusedShift(
  be: ReferenceBackend,
  d: ShiftInputs,
  g: GroupNormGeometry,
): Promise<Outputs> {
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

/** The reference backend unfused: the broadcast add, then the group norm; dshift sums dx. */
async function unfusedShift(
  be: ReferenceBackend,
  d: ShiftInputs,
  g: GroupNormGeometry,
): Promise<Outputs> {
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
  return Object.fromEntries(OUTPUTS.map((k, i) => [k, read[i]])) as Outputs;
}

/** Asserts every output within `tol` (relative to max(1, |expected|)); returns the worst error. */
function assertOutputsClose(got: Outputs, want: Outputs, tol: number, what: string): number {
  let worst = 0;
  for (const k of OUTPUTS) {
    const err = maxRelError(got[k], want[k]);
    assert.ok(err <= tol, `${what} ${k}: max relative error ${err} > ${tol}`);
    worst = Math.max(worst, err);
  }
  return worst;
}

/** Every shifted case, with and without the SiLU, as [geometry, inputs, label]. */
function shiftCases(): [GroupNormGeometry, ShiftInputs, string][] {
  return SHIFT_CASES.flatMap(([n, c, hw, groups], k) =>
    [false, true].map((fuseSilu): [GroupNormGeometry, ShiftInputs, string] => {
      const g: GroupNormGeometry = { n, c, hw, groups, eps: 1e-5, silu: fuseSilu };
      return [g, shiftInputs(n, c, hw, 10 * k + (fuseSilu ? 1 : 0)), JSON.stringify(g)];
    })
  );
}

Deno.test("reference groupNorm with a shift equals the add then the group norm (float64)", async (t) => {
  for (const [g, d, what] of shiftCases()) {
    await t.step(what, async () => {
      const got = await fusedShift(be, d, g), want = await unfusedShift(be, d, g);
      assertOutputsClose(got, want, 1e-12, what);
      // The shift matters: without it the statistics and dx differ (so the comparison can fail).
      const plain = await unfusedShift(be, { ...d, shift: new Float32Array(d.shift.length) }, g);
      assert.ok(maxRelError(plain.mean, want.mean) > 1e-3, "the shift moves the mean");
      if (g.groups < g.c) {
        assert.ok(maxRelError(plain.y, want.y) > 1e-3, "the shift changes y");
      } else {
        // One channel per group: a per-channel constant is normalised away.
        assert.ok(maxRelError(plain.y, want.y) < 1e-9, "a one-channel group ignores the shift");
      }
    });
  }
  const x = be.alloc(12), gb = be.alloc(3), g = { n: 2, c: 3, hw: 2, groups: 1, eps: 1e-5 };
  assert.throws(
    () => be.groupNorm(x, { gamma: gb, beta: gb, shift: be.alloc(3) }, g),
    /shift needs 6/,
  );
});
