/**
 * GroupNorm fused with SiLU and with a per-(sample, channel) shift, as ops and as a layer, on the
 * float64 reference backend: the `groupNormSilu` and `groupNorm` ops' gradients (x, gamma, beta,
 * shift) against central finite differences, and the ops and the layer's `forward` /
 * `forwardSilu` against the composed `silu(groupNorm(x + shift))`, with gradients. (The fused
 * kernels themselves are checked in tests/backends/reference/groupnorm_fused_test.ts and, on every
 * backend, in tests/backends/conformance/norm_test.ts.)
 */

import assert from "node:assert/strict";
import type { Storage } from "../../src/backend.ts";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { Random } from "../../src/random.ts";
import { backward, variable } from "../../src/tensor.ts";
import { add, mul, silu } from "../../src/ops/elementwise.ts";
import { sum } from "../../src/ops/reduce.ts";
import { reshape } from "../../src/ops/shape.ts";
import { groupNorm, groupNormSilu } from "../../src/ops/norm.ts";
import { GroupNorm } from "../../src/nn/groupnorm.ts";
import { ParamLayout, ParamStore, recordParams } from "../../src/nn/params.ts";
import { gradCheck } from "../helpers/gradcheck.ts";
import { maxRelError } from "../helpers/compare.ts";

const be = createReferenceBackend({ dtype: "float64" });

async function read(s: Storage): Promise<Float64Array> {
  return Float64Array.from(await be.read(s));
}

/** Inputs of one case: x with a non-zero mean, gamma around 1 with some negative, beta. */
function inputs(n: number, c: number, hw: number, seed: number) {
  const rng = new Random(71, seed);
  const x = rng.normals(n * c * hw).map((v) => 2 * v + 0.7);
  const gamma = rng.normals(c).map((v) => 1 + 0.8 * v);
  const beta = rng.normals(c);
  return { x, gamma, beta };
}

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
    assert.ok(maxRelError(a[k], b[k]) < 1e-12, `${k}: ${maxRelError(a[k], b[k])}`);
  }
  // The op directly, without the layer.
  const xt = variable(be, x, [n, c, h * w]);
  const gt = variable(be, gamma, [c]), bt = variable(be, beta, [c]);
  const y1 = await read(groupNormSilu(xt, gt, bt, groups).storage);
  const y2 = await read(silu(groupNorm(xt, gt, bt, groups)).storage);
  assert.ok(maxRelError(y1, y2) < 1e-12);
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
      assert.ok(
        maxRelError(a[k], b[k]) < 1e-12,
        `silu ${fuseSilu} ${k}: ${maxRelError(a[k], b[k])}`,
      );
    }
  }
  const xt = variable(be, x, [n, c, h * w]);
  const gt = variable(be, gamma, [c]), bt = variable(be, beta, [c]);
  assert.throws(
    () => groupNormSilu(xt, gt, bt, groups, 1e-5, variable(be, shift.slice(1), [n * c - 1])),
    /shift/,
  );
});
