/**
 * GroupNorm fused with SiLU on the reference backend (float64): the fused forward against
 * silu(groupNorm(x)) computed directly from per-group statistics; the fused backward kernel against
 * the composed unfused kernels; the `groupNormSilu` op's gradients against central finite
 * differences; and the op and the layer's `forwardSilu` against `silu(groupNorm(...))` composed.
 * The wasm and WebGPU kernels are checked against this one in their backend tests.
 *
 * GroupNorm fused with a per-(sample, channel) shift (the ResBlock's time-embedding add), with and
 * without the SiLU: every backend's fused kernels (reference, wasm on 1 thread and on 2 threads
 * with every kernel split, WebGPU on whatever adapter there is, llvmpipe included) against the
 * reference backend's unfused add then group norm, forward and backward with dshift; wasm bit for
 * bit on 1 and 2 threads; the ops' gradients with a shift against finite differences; and the
 * layer with a shift against the add composed.
 */

import assert from "node:assert/strict";
import type { Backend, GroupNormGeometry, Storage } from "../../src/backend.ts";
import { createReferenceBackend, type ReferenceBackend } from "../../src/backends/reference/mod.ts";
import { Random } from "../../src/random.ts";
import { backward, variable } from "../../src/tensor.ts";
import { add, mul, silu } from "../../src/ops/elementwise.ts";
import { sum } from "../../src/ops/reduce.ts";
import { reshape } from "../../src/ops/shape.ts";
import { groupNorm, groupNormSilu } from "../../src/ops/norm.ts";
import { GroupNorm } from "../../src/nn/groupnorm.ts";
import { ParamLayout, ParamStore, recordParams } from "../../src/nn/params.ts";
import { createWasmBackend, openWasmBackend } from "../../wasm/backend.ts";
import { createWebGpuBackend, probeWebGpu } from "../../gpu/mod.ts";
import { gradCheck } from "../helpers/gradcheck.ts";

const be = createReferenceBackend({ dtype: "float64" });

async function read(s: Storage): Promise<Float64Array> {
  return Float64Array.from(await be.read(s));
}

/** max |a - e| / max(1, |e|) over the elements; asserts equal lengths. */
function maxRelErr(a: ArrayLike<number>, e: ArrayLike<number>): number {
  assert.equal(a.length, e.length);
  let worst = 0;
  for (let i = 0; i < e.length; i++) {
    const r = Math.abs(a[i] - e[i]) / Math.max(1, Math.abs(e[i]));
    if (!(r <= worst)) worst = r;
  }
  return worst;
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
      assert.ok(maxRelErr(y, expected) < 1e-12, `y: ${maxRelErr(y, expected)}`);
      assert.ok(maxRelErr(mu, expMu) < 1e-12, "mean");
      assert.ok(maxRelErr(rs, expRs) < 1e-12, "rstd");
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
        const err = maxRelErr(await read(got[k]), await read(want[k]));
        assert.ok(err < 1e-12, `${k}: ${err}`);
      }
      assert.throws(
        () => be.groupNormBackward(dy, { x: X, gamma: G, mean: fused.mean, rstd: fused.rstd }, gs),
        /beta/,
      );
    });
  }
});

Deno.test("grad: groupNormSilu (x, gamma and beta) against finite differences", async (t) => {
  const cases: [number[], number][] = [
    [[2, 6, 3, 3], 3],
    [[1, 6, 5, 7], 3],
    [[2, 4], 2],
    [[3, 4, 3], 1],
  ];
  for (const [shape, groups] of cases) {
    await t.step(`x [${shape}], ${groups} groups`, async () => {
      const size = shape.reduce((a, b) => a * b, 1), c = shape[1];
      const { x, gamma, beta } = inputs(size / c, c, 1, size + groups);
      const report = await gradCheck(
        be,
        [{ data: x, shape }, { data: gamma, shape: [c] }, { data: beta, shape: [c] }],
        ([x, g, b]) => groupNormSilu(x, g, b, groups),
      );
      console.log(`  max relative errors (x, gamma, beta): ${report.maxRelErr.join(", ")}`);
    });
  }
});

Deno.test("groupNormSilu and GroupNorm.forwardSilu equal silu(groupNorm) composed, with gradients", async () => {
  const [n, c, h, w, groups] = [3, 6, 5, 7, 3];
  const { x, gamma, beta } = inputs(n, c, h * w, 99);
  const layout = new ParamLayout(recordParams((p) => new GroupNorm(p, "n1", c, groups)));
  const values = new Float64Array(layout.length);
  values.set(gamma, layout.get("n1.weight").offset);
  values.set(beta, layout.get("n1.bias").offset);
  const weights = new Random(73, 1).normals(x.length);
  const run = async (fused: boolean) => {
    const store = new ParamStore(be, layout, be.upload(values), be.alloc(layout.length));
    const norm = new GroupNorm(store, "n1", c, groups);
    const xt = variable(be, x, [n, c, h, w]);
    const y = fused ? norm.forwardSilu(xt) : silu(norm.forward(xt));
    assert.deepEqual([...y.shape], [n, c, h, w]);
    backward(sum(mul(y, variable(be, weights, [n, c, h, w]))));
    return {
      y: await read(y.storage),
      dx: await read(xt.grad!.storage),
      dparams: await read(store.grads!),
    };
  };
  const a = await run(true), b = await run(false);
  for (const k of ["y", "dx", "dparams"] as const) {
    assert.ok(maxRelErr(a[k], b[k]) < 1e-12, `${k}: ${maxRelErr(a[k], b[k])}`);
  }
  // The op directly, without the layer.
  const xt = variable(be, x, [n, c, h * w]);
  const gt = variable(be, gamma, [c]), bt = variable(be, beta, [c]);
  const y1 = await read(groupNormSilu(xt, gt, bt, groups).storage);
  const y2 = await read(silu(groupNorm(xt, gt, bt, groups)).storage);
  assert.ok(maxRelErr(y1, y2) < 1e-12);
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
    const err = maxRelErr(got[k], want[k]);
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

const ref32 = createReferenceBackend();

Deno.test("reference groupNorm with a shift equals the add then the group norm (float64)", async (t) => {
  for (const [g, d, what] of shiftCases()) {
    await t.step(what, async () => {
      const got = await fusedShift(be, d, g), want = await unfusedShift(be, d, g);
      assertOutputsClose(got, want, 1e-12, what);
      // The shift matters: without it the statistics and dx differ (so the comparison can fail).
      const plain = await unfusedShift(be, { ...d, shift: new Float32Array(d.shift.length) }, g);
      assert.ok(maxRelErr(plain.mean, want.mean) > 1e-3, "the shift moves the mean");
      if (g.groups < g.c) {
        assert.ok(maxRelErr(plain.y, want.y) > 1e-3, "the shift changes y");
      } else {
        // One channel per group: a per-channel constant is normalised away.
        assert.ok(maxRelErr(plain.y, want.y) < 1e-9, "a one-channel group ignores the shift");
      }
    });
  }
  const x = be.alloc(12), gb = be.alloc(3), g = { n: 2, c: 3, hw: 2, groups: 1, eps: 1e-5 };
  assert.throws(
    () => be.groupNorm(x, { gamma: gb, beta: gb, shift: be.alloc(3) }, g),
    /shift needs 6/,
  );
});

Deno.test("wasm groupNorm with a shift matches the reference's add then group norm (1 and 2 threads)", async () => {
  const single = openWasmBackend({ threads: 1 });
  const threaded = await createWasmBackend({ threads: 2, parallelThreshold: 0 });
  try {
    let worst = 0;
    for (const [g, d, what] of shiftCases()) {
      const want = await unfusedShift(ref32, d, g);
      const one = await fusedShift(single, d, g), two = await fusedShift(threaded, d, g);
      worst = Math.max(worst, assertOutputsClose(one, want, 1e-4, `wasm 1 thread ${what}`));
      assertOutputsClose(two, want, 1e-4, `wasm 2 threads ${what}`);
      // Rows never straddle threads' ranges: the same bits whatever the split.
      for (const k of OUTPUTS) assert.deepEqual(two[k], one[k], `wasm 1 vs 2 threads ${what} ${k}`);
    }
    console.log(`wasm groupNorm+shift: max relative error vs reference ${worst.toExponential(2)}`);
    const x = single.alloc(12), gb = single.alloc(3), g = { n: 2, c: 3, hw: 2, groups: 1, eps: 0 };
    assert.throws(
      () => single.groupNorm(x, { gamma: gb, beta: gb, shift: single.alloc(3) }, g),
      /shift needs 6/,
    );
  } finally {
    threaded.dispose();
  }
});

const probe = await probeWebGpu();
const gpu = probe.adapterInfo !== undefined
  ? await createWebGpuBackend({ allowFallbackAdapter: true })
  : null;

Deno.test({
  name: "webgpu groupNorm with a shift matches the reference's add then group norm",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (!gpu) {
      console.log(`skipped (no WebGPU adapter: ${probe.reason})`);
      return;
    }
    let worst = 0;
    for (const [g, d, what] of shiftCases()) {
      const want = await unfusedShift(ref32, d, g);
      worst = Math.max(worst, assertOutputsClose(await fusedShift(gpu, d, g), want, 1e-4, what));
    }
    console.log(
      `webgpu (${gpu.adapterInfo.description}) groupNorm+shift: max relative error vs reference ` +
        worst.toExponential(2),
    );
  },
});

Deno.test("grad: groupNorm and groupNormSilu with a shift against finite differences", async (t) => {
  const cases: [number[], number, boolean][] = [
    [[2, 6, 3, 3], 3, true],
    [[1, 6, 5, 7], 2, true],
    [[2, 4, 3], 1, false],
    [[3, 4, 5], 2, true],
    [[1, 8, 2, 3], 8, false],
  ];
  for (const [shape, groups, fuseSilu] of cases) {
    await t.step(`x [${shape}], ${groups} groups, silu ${fuseSilu}`, async () => {
      const size = shape.reduce((a, b) => a * b, 1), [n, c] = shape;
      const { x, gamma, beta } = inputs(size / c, c, 1, size + groups);
      const shift = new Random(75, size).normals(n * c).map((v) => 1.5 * v);
      const op = fuseSilu ? groupNormSilu : groupNorm;
      const report = await gradCheck(
        be,
        [
          { data: x, shape },
          { data: gamma, shape: [c] },
          { data: beta, shape: [c] },
          { data: shift, shape: [n, c] },
        ],
        ([x, g, b, s]) => op(x, g, b, groups, 1e-5, s),
      );
      console.log(`  max relative errors (x, gamma, beta, shift): ${report.maxRelErr.join(", ")}`);
    });
  }
});

Deno.test("GroupNorm.forwardSilu(x, shift) equals the add then silu(groupNorm), with gradients", async () => {
  const [n, c, h, w, groups] = [3, 8, 5, 7, 4];
  const { x, gamma, beta } = inputs(n, c, h * w, 98);
  const shift = new Random(76, 1).normals(n * c).map((v) => 2 * v);
  const layout = new ParamLayout(recordParams((p) => new GroupNorm(p, "n2", c, groups)));
  const values = new Float64Array(layout.length);
  values.set(gamma, layout.get("n2.weight").offset);
  values.set(beta, layout.get("n2.bias").offset);
  const weights = new Random(73, 2).normals(x.length);
  const run = async (fused: boolean, fuseSilu: boolean) => {
    const store = new ParamStore(be, layout, be.upload(values), be.alloc(layout.length));
    const norm = new GroupNorm(store, "n2", c, groups);
    const xt = variable(be, x, [n, c, h, w]), st = variable(be, shift, [n, c]);
    const y = fused
      ? (fuseSilu ? norm.forwardSilu(xt, st) : norm.forward(xt, st))
      : (fuseSilu ? silu : (t: typeof xt) => t)(norm.forward(add(xt, reshape(st, [n, c, 1, 1]))));
    assert.deepEqual([...y.shape], [n, c, h, w]);
    backward(sum(mul(y, variable(be, weights, [n, c, h, w]))));
    return {
      y: await read(y.storage),
      dx: await read(xt.grad!.storage),
      dshift: await read(st.grad!.storage),
      dparams: await read(store.grads!),
    };
  };
  for (const fuseSilu of [false, true]) {
    const a = await run(true, fuseSilu), b = await run(false, fuseSilu);
    for (const k of ["y", "dx", "dshift", "dparams"] as const) {
      assert.ok(maxRelErr(a[k], b[k]) < 1e-12, `silu ${fuseSilu} ${k}: ${maxRelErr(a[k], b[k])}`);
    }
  }
  const xt = variable(be, x, [n, c, h * w]);
  const gt = variable(be, gamma, [c]), bt = variable(be, beta, [c]);
  assert.throws(
    () => groupNormSilu(xt, gt, bt, groups, 1e-5, variable(be, shift.slice(1), [n * c - 1])),
    /shift/,
  );
});
