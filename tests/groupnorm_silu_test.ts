/**
 * GroupNorm fused with SiLU on the reference backend (float64): the fused forward against
 * silu(groupNorm(x)) computed directly from per-group statistics; the fused backward kernel against
 * the composed unfused kernels; the `groupNormSilu` op's gradients against central finite
 * differences; and the op and the layer's `forwardSilu` against `silu(groupNorm(...))` composed.
 * The wasm and WebGPU kernels are checked against this one in their backend tests.
 */

import assert from "node:assert/strict";
import type { GroupNormGeometry, Storage } from "../src/backend.ts";
import { ReferenceBackend } from "../src/backends/reference.ts";
import { Random } from "../src/random.ts";
import { backward, variable } from "../src/tensor.ts";
import { mul, silu } from "../src/ops/elementwise.ts";
import { sum } from "../src/ops/reduce.ts";
import { groupNorm, groupNormSilu } from "../src/ops/norm.ts";
import { GroupNorm, groupNormSpecs } from "../src/nn/groupnorm.ts";
import { ParamLayout, ParamStore } from "../src/nn/params.ts";
import { gradCheck } from "./helpers/gradcheck.ts";

const be = new ReferenceBackend({ dtype: "float64" });

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
      const r = be.groupNorm(be.upload(x), be.upload(gamma), be.upload(beta), g);
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
      const plain = be.groupNorm(be.upload(x), be.upload(gamma), be.upload(beta), {
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
      const plain = be.groupNorm(X, G, B, g);
      // Unfused: dz = silu'(z) dy with z the plain output, then the plain group-norm backward.
      const dz = be.unaryBackward("silu", plain.y, dy);
      const want = be.groupNormBackward(dz, X, G, plain.mean, plain.rstd, g);
      const gs = { ...g, silu: true };
      const fused = be.groupNorm(X, G, B, gs);
      const got = be.groupNormBackward(dy, X, G, fused.mean, fused.rstd, gs, B);
      for (const k of ["dx", "dgamma", "dbeta"] as const) {
        const err = maxRelErr(await read(got[k]), await read(want[k]));
        assert.ok(err < 1e-12, `${k}: ${err}`);
      }
      assert.throws(() => be.groupNormBackward(dy, X, G, fused.mean, fused.rstd, gs), /beta/);
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
  const layout = new ParamLayout(groupNormSpecs("n1", c));
  const values = new Float64Array(layout.length);
  values.set(gamma, layout.get("n1.weight").offset);
  values.set(beta, layout.get("n1.bias").offset);
  const weights = new Random(73, 1).normals(x.length);
  const run = async (fused: boolean) => {
    const store = new ParamStore(be, layout, be.upload(values), be.alloc(layout.length));
    const norm = new GroupNorm(store, "n1", groups);
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
