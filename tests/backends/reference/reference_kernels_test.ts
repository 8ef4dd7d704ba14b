/**
 * The reference backend's forward kernels against independent, deliberately naive formulas written
 * here (explicit transposes, explicit padding, per-element index math), and its float32 and float64
 * storage. The optimizer kernels are in reference_optim_test.ts, the random fills in
 * reference_random_test.ts. (What every backend does, the reference included, is in
 * tests/backends/conformance/.)
 */

import assert from "node:assert/strict";
import type { Storage } from "../../../src/backend.ts";
import { createReferenceBackend } from "../../../src/backends/reference/mod.ts";
import { Random } from "../../../src/random.ts";
import { assertClose } from "../../helpers/compare.ts";

const be = createReferenceBackend({ dtype: "float64" });
const be32 = createReferenceBackend({ dtype: "float32" });

async function read(s: Storage, b = be): Promise<number[]> {
  return [...await b.read(s)];
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Row-major flat index of `idx` in `shape`. */
function flat(idx: readonly number[], shape: readonly number[]): number {
  let f = 0;
  for (let d = 0; d < shape.length; d++) f = f * shape[d] + idx[d];
  return f;
}

/** Every multi-index of `shape`, in row-major order. */
function* indices(shape: readonly number[]): Generator<number[]> {
  const n = size(shape);
  for (let i = 0; i < n; i++) {
    const idx = new Array<number>(shape.length);
    let r = i;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r = Math.floor(r / shape[d]);
    }
    yield idx;
  }
}

/** Explicit transpose of a rows x cols matrix. */
function transpose(a: ArrayLike<number>, rows: number, cols: number): number[] {
  const t = new Array<number>(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

/** Naive C = A @ B for A m x k, B k x n. */
function naiveMatmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number) {
  const c = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = s;
    }
  }
  return c;
}

/** Random data with a few exact zeros (the kernel has a zero-skipping fast path). */
function data(rng: Random, n: number): Float64Array {
  const d = rng.normals(n);
  for (let i = 0; i < n; i += 5) d[i] = 0;
  return d;
}

// ---- linear algebra ----------------------------------------------------------------------------

Deno.test("reference matmul: every transpose, batched and shared operands, against a triple loop", async (t) => {
  const batch = 3, m = 4, k = 5, n = 3;
  for (const [batchA, batchB] of [[true, true], [true, false], [false, true], [false, false]]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const name = `batchA=${batchA} batchB=${batchB} transA=${transA} transB=${transB}`;
        await t.step(name, async () => {
          const rng = new Random(1, (transA ? 2 : 0) + (transB ? 1 : 0));
          const A = data(rng, (batchA ? batch : 1) * m * k);
          const Bm = data(rng, (batchB ? batch : 1) * k * n);
          const c = await read(
            be.matmul(be.upload(A), be.upload(Bm), {
              batch,
              m,
              k,
              n,
              transA,
              transB,
              batchA,
              batchB,
            }),
          );
          assert.equal(c.length, batch * m * n);
          for (let bi = 0; bi < batch; bi++) {
            const a = A.subarray((batchA ? bi : 0) * m * k, ((batchA ? bi : 0) + 1) * m * k);
            const b = Bm.subarray((batchB ? bi : 0) * k * n, ((batchB ? bi : 0) + 1) * k * n);
            // Stored transposed operands are transposed explicitly back before the plain product.
            const opA = transA ? transpose(a, k, m) : [...a];
            const opB = transB ? transpose(b, n, k) : [...b];
            assertClose(
              c.slice(bi * m * n, (bi + 1) * m * n),
              naiveMatmul(opA, opB, m, k, n),
              name,
              1e-12,
            );
          }
        });
      }
    }
  }
});

Deno.test("reference matmul: float32 storage rounds like float32 and agrees with float64", async () => {
  const rng = new Random(2);
  const a = rng.normals(12), b = rng.normals(20);
  const c32 = await be32.read(
    be32.matmul(be32.upload(a), be32.upload(b), {
      batch: 1,
      m: 3,
      k: 4,
      n: 5,
      transA: false,
      transB: false,
    }),
  );
  assert.ok(c32 instanceof Float32Array);
  assertClose(c32, naiveMatmul(a, b, 3, 4, 5), "float32 matmul", 1e-5);
});

// ---- convolution -------------------------------------------------------------------------------

interface Geo {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
}

/** Naive convolution: builds the zero-padded input first, then sums windows. */
function naiveConv(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  g: Geo,
) {
  const H = g.h + 2 * g.pad, W = g.w + 2 * g.pad;
  const xp = new Array<number>(g.n * g.c * H * W).fill(0);
  for (const [ni, ci, y, xx] of indices([g.n, g.c, g.h, g.w])) {
    xp[flat([ni, ci, y + g.pad, xx + g.pad], [g.n, g.c, H, W])] =
      x[flat([ni, ci, y, xx], [g.n, g.c, g.h, g.w])];
  }
  let oh = 0, ow = 0;
  while (oh * g.stride + g.kh <= H) oh++;
  while (ow * g.stride + g.kw <= W) ow++;
  const out = new Array<number>(g.n * g.o * oh * ow).fill(0);
  for (const [ni, oi, i, j] of indices([g.n, g.o, oh, ow])) {
    let s = bias ? bias[oi] : 0;
    for (const [ci, ky, kx] of indices([g.c, g.kh, g.kw])) {
      s += xp[flat([ni, ci, i * g.stride + ky, j * g.stride + kx], [g.n, g.c, H, W])] *
        w[flat([oi, ci, ky, kx], [g.o, g.c, g.kh, g.kw])];
    }
    out[flat([ni, oi, i, j], [g.n, g.o, oh, ow])] = s;
  }
  return { out, oh, ow };
}

const CONV_GEOS: Geo[] = [
  { n: 2, c: 3, h: 5, w: 5, o: 4, kh: 3, kw: 3, stride: 1, pad: 1 },
  { n: 1, c: 3, h: 5, w: 7, o: 4, kh: 3, kw: 3, stride: 2, pad: 1 },
  { n: 2, c: 3, h: 4, w: 3, o: 4, kh: 1, kw: 1, stride: 1, pad: 0 },
  { n: 2, c: 2, h: 4, w: 6, o: 3, kh: 2, kw: 3, stride: 1, pad: 1 },
  { n: 1, c: 2, h: 6, w: 6, o: 2, kh: 3, kw: 3, stride: 2, pad: 0 },
  { n: 1, c: 1, h: 3, w: 3, o: 1, kh: 3, kw: 3, stride: 3, pad: 2 },
];

Deno.test("reference conv2d: against a naive convolution over an explicitly padded input", async (t) => {
  for (const g of CONV_GEOS) {
    for (const withBias of [true, false]) {
      const name = `${JSON.stringify(g)} bias=${withBias}`;
      await t.step(name, async () => {
        const rng = new Random(3, g.h * 10 + g.w + (withBias ? 100 : 0));
        const x = rng.normals(g.n * g.c * g.h * g.w), w = rng.normals(g.o * g.c * g.kh * g.kw);
        const b = withBias ? rng.normals(g.o) : null;
        const want = naiveConv(x, w, b, g);
        const geo = { ...g, oh: want.oh, ow: want.ow };
        const y = await read(be.conv2d(be.upload(x), be.upload(w), b ? be.upload(b) : null, geo));
        assertClose(y, want.out, name, 1e-12);
      });
    }
  }
});

Deno.test("reference conv2d backward kernels are the adjoints of the forward", async () => {
  for (const g of CONV_GEOS) {
    const rng = new Random(4, g.h * 10 + g.w);
    const x = rng.normals(g.n * g.c * g.h * g.w), w = rng.normals(g.o * g.c * g.kh * g.kw);
    const { oh, ow } = naiveConv(x, w, null, g);
    const geo = { ...g, oh, ow };
    const dy = rng.normals(g.n * g.o * oh * ow);
    const y = await read(be.conv2d(be.upload(x), be.upload(w), null, geo));
    const dx = await read(be.conv2dBackwardData(be.upload(dy), be.upload(w), geo));
    const dw = await read(be.conv2dBackwardFilter(be.upload(x), be.upload(dy), geo));
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i] * b[i];
      return s;
    };
    // <conv(x, w), dy> = <x, conv^T_x(dy)> = <w, conv^T_w(dy)>
    const lhs = dot(y, dy);
    assertClose([dot(x, dx), dot(w, dw)], [lhs, lhs], JSON.stringify(g), 1e-10);
  }
});

// ---- normalisation, softmax --------------------------------------------------------------------

Deno.test("reference groupNorm: against per-group mean and variance computed directly", async (t) => {
  const cases: [number, number, number, number][] = [[2, 6, 9, 3], [2, 4, 1, 2], [1, 4, 4, 4], [
    3,
    4,
    5,
    1,
  ]];
  for (const [n, c, hw, groups] of cases) {
    await t.step(`n=${n} c=${c} hw=${hw} groups=${groups}`, async () => {
      const rng = new Random(5, n * 100 + c * 10 + groups);
      const x = rng.normals(n * c * hw).map((v) => 3 * v + 1);
      const gamma = rng.normals(c), beta = rng.normals(c), eps = 1e-5;
      const r = be.groupNorm(be.upload(x), { gamma: be.upload(gamma), beta: be.upload(beta) }, {
        n,
        c,
        hw,
        groups,
        eps,
      });
      const y = await read(r.y), mu = await read(r.mean), rs = await read(r.rstd);
      assert.equal(mu.length, n * groups);
      const cpg = c / groups;
      for (let ni = 0; ni < n; ni++) {
        for (let gi = 0; gi < groups; gi++) {
          const members: number[] = [];
          for (let ci = gi * cpg; ci < (gi + 1) * cpg; ci++) {
            for (let s = 0; s < hw; s++) members.push((ni * c + ci) * hw + s);
          }
          const m = members.reduce((a, i) => a + x[i], 0) / members.length;
          const v = members.reduce((a, i) => a + (x[i] - m) ** 2, 0) / members.length;
          assertClose(
            [mu[ni * groups + gi], rs[ni * groups + gi]],
            [m, 1 / Math.sqrt(v + eps)],
            "stats",
            1e-12,
          );
          for (const i of members) {
            const ci = Math.floor(i / hw) % c;
            const want = ((x[i] - m) / Math.sqrt(v + eps)) * gamma[ci] + beta[ci];
            assertClose([y[i]], [want], `y[${i}]`, 1e-12);
          }
        }
      }
    });
  }
});

Deno.test("reference softmax: rows sum to 1, match exp/sum, and survive large inputs", async () => {
  const rng = new Random(6);
  const rows = 4, cols = 7;
  const x = rng.normals(rows * cols).map((v) => 3 * v);
  const y = await read(be.softmax(be.upload(x), rows, cols));
  for (let r = 0; r < rows; r++) {
    const row = y.slice(r * cols, (r + 1) * cols);
    assertClose([row.reduce((a, b) => a + b, 0)], [1], `row ${r} sum`, 1e-14);
    assert.ok(row.every((v) => v > 0 && v < 1));
    const e = x.slice(r * cols, (r + 1) * cols).map(Math.exp);
    const s = e.reduce((a, b) => a + b, 0);
    assertClose(row, [...e].map((v) => v / s), `row ${r}`, 1e-13);
  }
  // Inputs whose exp overflows: the result must still be the (shift-invariant) softmax.
  const big = [1000, 1001, 1002, -1000, -1000, -1000];
  const yb = await read(be.softmax(be.upload(big), 2, 3));
  const e3 = [Math.exp(-2), Math.exp(-1), 1], s3 = e3.reduce((a, b) => a + b, 0);
  assertClose(yb, [...e3.map((v) => v / s3), 1 / 3, 1 / 3, 1 / 3], "large inputs", 1e-14);
  // Shift invariance on ordinary data.
  const shifted = await read(be.softmax(be.upload(x.map((v) => v + 50)), rows, cols));
  assertClose(shifted, y, "shift", 1e-12);
});

// ---- element-wise ------------------------------------------------------------------------------

Deno.test("reference unary kernels: against Math formulas", async () => {
  const x = [-3.5, -1, -0.25, 0.3, 1, 2.75, 40, -40];
  const pos = [0.1, 0.5, 1, 2, 9, 100, 1e-3, 7];
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const cases: [Parameters<typeof be.unary>[0], (v: number) => number, number[]][] = [
    ["neg", (v) => -v, x],
    ["exp", Math.exp, x],
    ["log", Math.log, pos],
    ["sqrt", Math.sqrt, pos],
    ["rsqrt", (v) => Math.pow(v, -0.5), pos],
    ["square", (v) => v ** 2, x],
    ["abs", (v) => (v < 0 ? -v : v), x],
    ["sign", (v) => (v > 0 ? 1 : v < 0 ? -1 : 0), [...x, 0]],
    ["floor", Math.floor, x],
    ["relu", (v) => Math.max(v, 0), x],
    ["silu", (v) => v * sig(v), x],
    [
      "gelu",
      (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
      x,
    ],
    ["tanh", (v) => (Math.exp(2 * v) - 1) / (Math.exp(2 * v) + 1), x.slice(0, 6)],
    ["sigmoid", sig, x],
    ["sin", Math.sin, x],
    ["cos", Math.cos, x],
  ];
  for (const [op, f, input] of cases) {
    const y = await read(be.unary(op, be.upload(input)));
    assertClose(y, input.map(f), op, 1e-13);
  }
  // No overflow to NaN in the tails of the logistic functions.
  const tails = await read(be.unary("sigmoid", be.upload([-800, 800])));
  assert.deepEqual(tails, [0, 1]);
  const silu = await read(be.unary("silu", be.upload([-800, 800])));
  assert.ok(Object.is(silu[0], -0) || silu[0] === 0);
  assert.equal(silu[1], 800);
});

Deno.test("reference binary kernel: broadcasting against per-index formulas", async () => {
  const rng = new Random(7);
  const f: Record<string, (a: number, b: number) => number> = {
    add: (a, b) => a + b,
    sub: (a, b) => a - b,
    mul: (a, b) => a * b,
    div: (a, b) => a / b,
    max: (a, b) => Math.max(a, b),
    min: (a, b) => Math.min(a, b),
  };
  const cases: [number[], number[]][] = [
    [[2, 3], [2, 3]],
    [[3, 4], [1, 4]],
    [[1, 4], [3, 4]],
    [[2, 1, 3], [1, 4, 1]],
    [[3, 4], [1, 1]],
    [[1, 1], [3, 4]],
    [[2, 3, 1], [1, 3, 5]],
  ];
  for (const [sa, sb] of cases) {
    const out = sa.map((d, i) => Math.max(d, sb[i]));
    const a = rng.normals(size(sa)), b = rng.normals(size(sb)).map((v) => v + 0.1);
    for (const op of Object.keys(f) as (keyof typeof f & Parameters<typeof be.binary>[0])[]) {
      const y = await read(be.binary(op, be.upload(a), be.upload(b), { a: sa, b: sb, out }));
      const want = [...indices(out)].map((idx) =>
        f[op](
          a[flat(idx.map((v, d) => (sa[d] === 1 ? 0 : v)), sa)],
          b[flat(idx.map((v, d) => (sb[d] === 1 ? 0 : v)), sb)],
        )
      );
      assertClose(y, want, `${op} [${sa}] [${sb}]`, 1e-14);
    }
  }
});

Deno.test("reference affine, clamp and sumSquares", async () => {
  const x = [-2, -0.5, 0, 0.5, 3];
  assertClose(await read(be.affine(be.upload(x), 1.5, -1)), x.map((v) => 1.5 * v - 1), "affine", 0);
  assert.deepEqual(await read(be.clamp(be.upload(x), -1, 1)), [-1, -0.5, 0, 0.5, 1]);
  const s = await read(be.sumSquares([be.upload([1, 2]), be.upload([3]), be.upload([-4, 0.5])]));
  assert.deepEqual(s, [1 + 4 + 9 + 16 + 0.25]);
});

Deno.test("reference loss kernel: l2, l1 and huber means against direct sums", async () => {
  const p = [0.2, -1.5, 3, 0.7, -0.1, 2], q = [0, 0.5, 1, 0.7, 0.3, -0.5];
  const d = p.map((v, i) => v - q[i]);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const huber = (v: number, delta: number) =>
    Math.abs(v) <= delta ? 0.5 * v * v : delta * Math.abs(v) - 0.5 * delta * delta;
  const P = be.upload(p), Q = be.upload(q);
  assertClose(
    await read(be.loss({ kind: "l2", delta: 1 }, P, Q)),
    [mean(d.map((v) => v * v))],
    "l2",
    1e-15,
  );
  assertClose(
    await read(be.loss({ kind: "l1", delta: 1 }, P, Q)),
    [mean(d.map(Math.abs))],
    "l1",
    1e-15,
  );
  for (const delta of [0.5, 1, 3]) {
    assertClose(
      await read(be.loss({ kind: "huber", delta }, P, Q)),
      [mean(d.map((v) => huber(v, delta)))],
      `huber ${delta}`,
      1e-15,
    );
  }
});

// ---- reductions and layout ---------------------------------------------------------------------

Deno.test("reference reduceSum: against manual sums over every axis subset", async () => {
  const shape = [2, 3, 4];
  const x = new Random(8).normals(24);
  for (let mask = 0; mask < 8; mask++) {
    const outShape = shape.map((d, i) => (mask & (1 << i) ? 1 : d));
    const want = new Array<number>(size(outShape)).fill(0);
    for (const idx of indices(shape)) {
      want[flat(idx.map((v, d) => (outShape[d] === 1 ? 0 : v)), outShape)] += x[flat(idx, shape)];
    }
    const y = await read(be.reduceSum(be.upload(x), shape, outShape));
    assertClose(y, want, `reduce to [${outShape}]`, 1e-14);
  }
});

Deno.test("reference permute: against the index formula, and the inverse permutation restores", async () => {
  const cases: [number[], number[]][] = [
    [[2, 3, 4], [2, 0, 1]],
    [[2, 3, 4], [1, 2, 0]],
    [[2, 3, 2, 5], [0, 2, 3, 1]],
    [[4, 5], [1, 0]],
    [[3, 2], [0, 1]],
  ];
  for (const [shape, perm] of cases) {
    const x = new Random(9, size(shape)).normals(size(shape));
    const outShape = perm.map((p) => shape[p]);
    const y = await read(be.permute(be.upload(x), shape, perm));
    for (const oidx of indices(outShape)) {
      const iidx = new Array<number>(shape.length);
      perm.forEach((p, i) => (iidx[p] = oidx[i]));
      assert.equal(y[flat(oidx, outShape)], x[flat(iidx, shape)], `[${shape}] perm [${perm}]`);
    }
    const inverse = shape.map((_, axis) => perm.indexOf(axis));
    const back = await read(be.permute(be.upload(y), outShape, inverse));
    assert.deepEqual(back, [...x]);
  }
});

Deno.test("reference upsampleNearest: against the index formula; its backward sums blocks", async () => {
  for (const [planes, h, w, f] of [[2, 3, 2, 2], [1, 2, 3, 3], [3, 1, 1, 4], [2, 2, 2, 1]]) {
    const x = new Random(10, planes * h * w * f).normals(planes * h * w);
    const y = await read(be.upsampleNearest(be.upload(x), { planes, h, w, factor: f }));
    const H = h * f, W = w * f;
    assert.equal(y.length, planes * H * W);
    for (const [p, i, j] of indices([planes, H, W])) {
      assert.equal(
        y[flat([p, i, j], [planes, H, W])],
        x[flat([p, Math.floor(i / f), Math.floor(j / f)], [planes, h, w])],
      );
    }
    const back = await read(be.upsampleNearestBackward(be.upload(y), { planes, h, w, factor: f }));
    assertClose(back, [...x].map((v) => v * f * f), "backward of upsample", 1e-14);
  }
});

Deno.test("reference concat and slice: index formula and round trip", async () => {
  const outer = 2, inner = 3, sizes = [1, 3, 2];
  const rng = new Random(11);
  const parts = sizes.map((s) => rng.normals(outer * s * inner));
  const total = sizes.reduce((a, b) => a + b, 0);
  const y = await read(be.concat(parts.map((p) => be.upload(p)), { outer, sizes, inner }));
  assert.equal(y.length, outer * total * inner);
  let start = 0;
  for (const [i, s] of sizes.entries()) {
    for (const [o, a, k] of indices([outer, s, inner])) {
      assert.equal(
        y[flat([o, start + a, k], [outer, total, inner])],
        parts[i][flat([o, a, k], [outer, s, inner])],
      );
    }
    const back = await read(be.slice(be.upload(y), { outer, axis: total, start, len: s, inner }));
    assert.deepEqual(back, [...parts[i]], `slice ${i}`);
    start += s;
  }
  // Slicing the whole axis is the identity; an empty slice is empty.
  assert.deepEqual(
    await read(be.slice(be.upload(y), { outer, axis: total, start: 0, len: total, inner })),
    y,
  );
  assert.equal(
    (await read(be.slice(be.upload(y), { outer, axis: total, start: 2, len: 0, inner }))).length,
    0,
  );
});

Deno.test("reference gather and gatherRows", async () => {
  const table = [10, 11, 12, 13, 14];
  assert.deepEqual(await read(be.gather(be.upload(table), be.upload([4, 0, 2, 2]))), [
    14,
    10,
    12,
    12,
  ]);
  const src = [0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32]; // 4 rows of 3
  const rows = await read(be.gatherRows(be.upload(src), be.upload([3, 1, 1]), 3));
  assert.deepEqual(rows, [30, 31, 32, 10, 11, 12, 10, 11, 12]);
  assert.deepEqual(await read(be.gatherRows(be.upload(src), be.upload([]), 3)), []);
});

// ---- storage ------------------------------------------------------------------------------------

Deno.test("reference storage: float64 keeps doubles, float32 rounds to float32", async () => {
  // (What every backend's memory does is in tests/backends/conformance/memory_test.ts.)
  assert.deepEqual(await read(be.upload([0.1])), [0.1]);
  assert.deepEqual(await read(be32.upload([0.1]), be32), [Math.fround(0.1)]);
});
