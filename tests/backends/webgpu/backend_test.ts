/**
 * The WebGPU backend against the reference backend: every kernel forward and backward on odd
 * shapes and views at unaligned offsets, the memory model (scopes, pooled reuse, writes ordered
 * after recorded kernels), the random fills bit for bit, error paths, and a whole training run and
 * sampling run. Runs on any adapter, software ones included (llvmpipe); where there is no adapter
 * at all, every test prints why and passes.
 */

import assert from "node:assert/strict";
import type { Backend, GroupNormGeometry, Storage } from "../../../src/backend.ts";
import { conv2dGeometry } from "../../../src/backend.ts";
import { createReferenceBackend } from "../../../src/backends/reference/mod.ts";
import { DiffusionModel } from "../../../src/model.ts";
import { Random } from "../../../src/random.ts";
import { sample } from "../../../src/sample.ts";
import { type Dataset, train } from "../../../src/train.ts";
import { createWebGpuBackend, probeWebGpu, type WebGpuBackend } from "../../../gpu/mod.ts";
import { allKernels } from "../../../gpu/backend.ts";
import {
  TILE_LARGE,
  TILE_MEDIUM,
  TILE_SMALL,
  TILE_WIDE,
  TILE_XL,
} from "../../../gpu/kernels/gemm.ts";
import { sizeClass } from "../../../gpu/buffer_pool.ts";
import { ro, rw } from "../../../gpu/wgsl.ts";

const probe = await probeWebGpu();
const hasAdapter = probe.adapterInfo !== undefined;
const gpu: WebGpuBackend | null = hasAdapter
  ? await createWebGpuBackend({ allowFallbackAdapter: true })
  : null;
const ref = createReferenceBackend();

function gpuTest(name: string, fn: (be: WebGpuBackend) => Promise<void>): void {
  Deno.test({
    name: `webgpu: ${name}`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      if (!gpu) {
        console.log(`skipped (no WebGPU adapter: ${probe.reason})`);
        return;
      }
      await fn(gpu);
    },
  });
}

/** Asserts |actual - expected| <= tol * max(1, |expected|) element-wise (NaN matches NaN). */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    assert.ok(
      Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)),
      `${what}: element ${i} is ${a}, expected ${e} (tol ${tol})`,
    );
  }
}

/** Float32 normals, deterministic. */
function normals(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  const z = new Random(seed, 7).normals(n);
  return Float32Array.from(z, (v) => v * scale + shift);
}

/** The same data on both backends; on the GPU as a view at an odd offset of a larger buffer. */
function pair(be: Backend, data: ArrayLike<number>, pad = 3): [Storage, Storage] {
  const big = new Float32Array(data.length + pad + 5).fill(NaN);
  big.set(data, pad);
  const whole = be.upload(big);
  return [be.view(whole, pad, data.length), ref.upload(data)];
}

async function same(
  be: Backend,
  g: Storage,
  r: Storage,
  what: string,
  tol = 1e-4,
): Promise<void> {
  const [a, b] = await Promise.all([be.read(g), ref.read(r)]);
  assertClose(a, b, tol, what);
}

// ---- device, memory, scopes ------------------------------------------------------------------

gpuTest("probe and adapter report", async (be) => {
  assert.equal(typeof probe.usable, "boolean");
  assert.ok(probe.reason.length > 0);
  assert.equal(be.name, "webgpu");
  assert.ok(be.adapterInfo.description.length > 0);
  if (be.adapterInfo.isFallbackAdapter) {
    assert.equal(probe.usable, false, "a software adapter is not reported usable");
    await assert.rejects(() => createWebGpuBackend(), /software/);
  }
  await Promise.resolve();
});

gpuTest("warmup compiles every kernel with createComputePipelineAsync", async (be) => {
  await be.warmup();
  assert.ok(be.stats().pipelines >= allKernels().length);
});

gpuTest("upload, read, views at odd offsets, write, fill, copy", async (be) => {
  const s = be.upload([1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual([...await be.read(s)], [1, 2, 3, 4, 5, 6, 7]);
  const v = be.view(s, 3, 3);
  assert.deepEqual([...await be.read(v)], [4, 5, 6]);
  be.write(v, [40, 50], 1);
  assert.deepEqual([...await be.read(s)], [1, 2, 3, 4, 40, 50, 7]);
  be.fill(be.view(s, 1, 2), -1);
  be.copy(be.view(s, 5, 2), be.view(s, 0, 2)); // same buffer: an aliased dispatch
  assert.deepEqual([...await be.read(s)], [1, -1, -1, 4, 40, 1, -1]);
  assert.throws(() => be.view(s, 5, 3), RangeError);
  assert.throws(() => be.write(s, [1, 2], 6), RangeError);
  assert.throws(() => be.unary("neg", ref.upload([1])), TypeError);
  assert.equal((await be.read(be.alloc(0))).length, 0);
  be.free(s);
  assert.throws(() => be.unary("neg", s), /freed/);
  assert.ok(sizeClass(1) === 256 && sizeClass(1000) === 1024 && sizeClass(1025) === 1280);
});

gpuTest(
  "alloc is zero even on a reused buffer; writes run after kernels recorded before",
  async (be) => {
    const a = be.upload(new Float32Array(100).fill(7));
    be.flush();
    be.free(a);
    be.flush();
    const b = be.alloc(100); // same size class: the pool hands back a's buffer
    assert.deepEqual([...await be.read(b)], new Array(100).fill(0));
    const x = be.upload([1, 2, 3]);
    const y = be.affine(x, 2, 0); // recorded, not yet submitted
    be.write(x, [10, 20, 30]); // must not overtake the affine
    const z = be.affine(x, 1, 1);
    assert.deepEqual([...await be.read(y)], [2, 4, 6]);
    assert.deepEqual([...await be.read(z)], [11, 21, 31]);
  },
);

gpuTest(
  "scopes release at endScope, keep survives, freed buffers wait for the submit",
  async (be) => {
    const x = be.upload([1, 2, 3, 4]);
    be.beginScope();
    const t = be.affine(x, 2, 0);
    const kept = be.affine(t, 1, 1);
    be.beginScope();
    const inner = be.affine(kept, 1, 0);
    be.endScope([inner]);
    be.endScope([kept]);
    await assert.rejects(() => be.read(t), /freed/);
    await assert.rejects(() => be.read(inner), /freed/);
    // t was released before the submit that computes kept from it: the pool must not hand its
    // buffer to this allocation (and overwrite it) before that submit.
    const clobber = be.upload([100, 100, 100, 100]);
    assert.deepEqual([...await be.read(kept)], [3, 5, 7, 9]);
    assert.deepEqual([...await be.read(clobber)], [100, 100, 100, 100]);
    assert.throws(() => be.endScope(), /beginScope/);
    // A steady loop of scoped steps creates no new buffers after the first.
    const step = () => {
      be.beginScope();
      const a = be.unary("exp", x);
      be.binary("add", a, x, { a: [4], b: [4], out: [4] });
      be.flush();
      be.endScope();
    };
    step();
    step();
    const before = be.stats().buffers;
    for (let i = 0; i < 5; i++) step();
    assert.equal(be.stats().buffers, before);
  },
);

// ---- element-wise ------------------------------------------------------------------------------

gpuTest("unary ops and their gradients", async (be) => {
  const n = 517;
  const ops = [
    "neg",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "square",
    "abs",
    "sign",
    "floor",
    "relu",
    "silu",
    "gelu",
    "tanh",
    "sigmoid",
    "sin",
    "cos",
  ] as const;
  const positive = new Set(["log", "sqrt", "rsqrt"]);
  for (const op of ops) {
    const raw = positive.has(op) ? normals(n, 1).map((v) => Math.abs(v) + 0.05) : normals(n, 2, 3);
    if (op === "sin" || op === "cos") raw[0] = 1000.5; // argument reduction
    if (op === "tanh" || op === "sigmoid" || op === "silu") raw[1] = 60, raw[2] = -60;
    const [gx, rx] = pair(be, raw);
    await same(be, be.unary(op, gx), ref.unary(op, rx), `unary ${op}`, 2e-5);
    if (op === "sign" || op === "floor") {
      assert.throws(() => be.unaryBackward(op, gx, gx), /no gradient/);
      continue;
    }
    const [gd, rd] = pair(be, normals(n, 3));
    await same(be, be.unaryBackward(op, gx, gd), ref.unaryBackward(op, rx, rd), `grad ${op}`, 5e-5);
  }
});

gpuTest("binary ops with broadcasting", async (be) => {
  const cases: [number[], number[], number[]][] = [
    [[5, 7], [5, 7], [5, 7]],
    [[3, 1, 5], [1, 4, 5], [3, 4, 5]],
    [[2, 3, 4, 5], [1, 3, 1, 1], [2, 3, 4, 5]],
    [[1, 1], [7, 9], [7, 9]],
    [[6, 1], [1, 1], [6, 1]],
    [[2, 1, 3, 1, 2], [1, 4, 1, 5, 2], [2, 4, 3, 5, 2]],
  ];
  for (const op of ["add", "sub", "mul", "div", "max", "min"] as const) {
    for (const [as, bs, os] of cases) {
      const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
      const [ga, ra] = pair(be, normals(size(as), 4));
      const bdata = normals(size(bs), 5);
      if (op === "div") {
        bdata.forEach((v, i) => (bdata[i] = Math.sign(v || 1) * (Math.abs(v) + 0.5)));
      }
      const [gb, rb] = pair(be, bdata, 1);
      await same(
        be,
        be.binary(op, ga, gb, { a: as, b: bs, out: os }),
        ref.binary(op, ra, rb, { a: as, b: bs, out: os }),
        `${op} [${as}] [${bs}]`,
      );
    }
  }
});

gpuTest("affine, axpy (aliased views too), clamp", async (be) => {
  const d = normals(300, 6);
  const [g, r] = pair(be, d);
  await same(be, be.affine(g, -1.5, 0.25), ref.affine(r, -1.5, 0.25), "affine");
  await same(be, be.clamp(g, -0.5, 0.7), ref.clamp(r, -0.5, 0.7), "clamp");
  const [gy, ry] = pair(be, normals(300, 7));
  be.axpy(gy, g, 0.3);
  ref.axpy(ry, r, 0.3);
  await same(be, gy, ry, "axpy");
  // y and x are views of one buffer: bound read_write twice.
  const buf = be.upload([1, 2, 3, 4, 5, 6]);
  be.axpy(be.view(buf, 0, 3), be.view(buf, 3, 3), 2);
  assert.deepEqual([...await be.read(buf)], [9, 12, 15, 4, 5, 6]);
});

// ---- reductions --------------------------------------------------------------------------------

gpuTest("reduceSum over every axis pattern, both kernels, long sums in chunks", async (be) => {
  const cases: [number[], number[]][] = [
    [[5, 7, 9], [1, 7, 1]],
    [[5, 7, 9], [5, 1, 9]],
    [[5, 7, 9], [1, 1, 1]],
    [[300, 3], [1, 3]],
    [[2, 3, 4, 5], [2, 1, 4, 1]],
    [[2, 3, 4, 5], [1, 3, 1, 5]],
    [[4100, 3], [4100, 1]],
    [[3, 4100, 2], [1, 4100, 1]],
    [[6, 5], [6, 5]],
    [[1, 9, 1], [1, 1, 1]],
    [[17, 3, 41, 37], [1, 3, 1, 1]], // 25,789 per sum: 6 chunks, the last one short
    [[9000, 2], [1, 1]], // one sum of 18,000: 4 chunks
  ];
  for (const [shape, out] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const [g, r] = pair(be, normals(n, 8));
    await same(
      be,
      be.reduceSum(g, shape, out),
      ref.reduceSum(r, shape, out),
      `[${shape}]->[${out}]`,
    );
  }
});

gpuTest("sumSquares over several storages", async (be) => {
  const [g1, r1] = pair(be, normals(5000, 9));
  const [g2, r2] = pair(be, normals(7, 10));
  const [g3, r3] = pair(be, normals(70000, 11));
  await same(be, be.sumSquares([g1, g2, g3]), ref.sumSquares([r1, r2, r3]), "sumSquares");
  assert.deepEqual([...await be.read(be.sumSquares([]))], [0]);
});

gpuTest("permute", async (be) => {
  const cases: [number[], number[]][] = [
    [[2, 3, 4, 5], [0, 2, 3, 1]],
    [[2, 3, 4, 5], [3, 1, 2, 0]],
    [[37, 53], [1, 0]],
    [[4, 1, 6], [2, 1, 0]],
    // The UNet's patches: space to depth and back.
    [[2, 1, 3, 2, 3, 2], [0, 1, 3, 5, 2, 4]],
    [[2, 1, 2, 2, 3, 3], [0, 1, 4, 2, 5, 3]],
  ];
  for (const [shape, perm] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const [g, r] = pair(be, normals(n, 12));
    await same(be, be.permute(g, shape, perm), ref.permute(r, shape, perm), `permute ${perm}`, 0);
  }
});

// ---- linear algebra ----------------------------------------------------------------------------

gpuTest("matmul: transposes, batch flags, odd and large tiles", async (be) => {
  const shapes = [
    [3, 37, 19, 45],
    [1, 1, 5, 1],
    [2, 200, 17, 200], // 64 x 64 tiles
    [4, 5, 70, 3],
  ];
  for (const [batch, m, k, n] of shapes) {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      for (const [ba, bb] of [[true, true], [false, true], [true, false]]) {
        if (batch === 2 && !(ba && bb)) continue;
        const [ga, ra] = pair(be, normals((ba ? batch : 1) * m * k, 13));
        const [gb, rb] = pair(be, normals((bb ? batch : 1) * k * n, 14), 5);
        await same(
          be,
          be.matmul(ga, gb, { batch, m, k, n, transA: ta, transB: tb, batchA: ba, batchB: bb }),
          ref.matmul(ra, rb, { batch, m, k, n, transA: ta, transB: tb, batchA: ba, batchB: bb }),
          `matmul b${batch} ${m}x${k}x${n} t${+ta}${+tb} b${+ba}${+bb}`,
        );
      }
    }
  }
});

/**
 * Products that pick each tile: [batch, m, k, n, the tile chooseTile must pick] (the choice itself
 * is tested in tests/webgpu_policy_test.ts).
 */
const TILE_CASES = [
  [1, 64, 19, 16384, TILE_XL],
  [1, 30, 11, 16384, TILE_WIDE],
  [1, 64, 7, 8192, TILE_LARGE],
  [1, 30, 9, 8192, TILE_MEDIUM],
  [1, 70, 5, 100, TILE_SMALL],
] as const;

gpuTest("matmul on every tile", async (be) => {
  for (const [batch, m, k, n] of TILE_CASES) {
    for (const [ta, tb] of [[false, false], [true, true]]) {
      const [ga, ra] = pair(be, normals(batch * m * k, 23));
      const [gb, rb] = pair(be, normals(batch * k * n, 24));
      await same(
        be,
        be.matmul(ga, gb, { batch, m, k, n, transA: ta, transB: tb }),
        ref.matmul(ra, rb, { batch, m, k, n, transA: ta, transB: tb }),
        `matmul ${m}x${k}x${n} t${+ta}${+tb}`,
      );
    }
  }
});

// ---- convolution -------------------------------------------------------------------------------

/**
 * A second backend whose convolutions are compiled the other way (shape-specialised where the
 * default is generic, as on software adapters, and generic where it is specialised).
 */
const other: WebGpuBackend | null = gpu
  ? await createWebGpuBackend({
    allowFallbackAdapter: true,
    specializeShapes: gpu.adapterInfo.isFallbackAdapter,
  })
  : null;

gpuTest("conv2d forward, data and filter gradients, generic and shape-specialised", async (be) => {
  const geos = [
    conv2dGeometry(2, 3, 7, 6, 5, 3, 1, 1),
    conv2dGeometry(2, 3, 7, 6, 5, 3, 2, 1),
    conv2dGeometry(1, 4, 5, 5, 2, 1, 1, 0),
    conv2dGeometry(2, 2, 9, 8, 3, 4, 2, 0),
    conv2dGeometry(4, 2, 16, 16, 3, 3, 1, 1), // filter gradient split over K
    conv2dGeometry(4, 2, 16, 16, 70, 3, 1, 1), // 64-row tiles in the forward product
    conv2dGeometry(2, 40, 7, 7, 24, 3, 1, 1), // forward and data gradient split over K
  ];
  await convCases(be, geos);
  // The other compilation on fewer shapes (llvmpipe takes seconds to compile each kernel, and
  // every tile's GEMM skeleton is tested by the matmul test above): stride 2, a filter gradient
  // split over K, a forward product split over K, and one on 64 x 128 tiles.
  await convCases(other!, [geos[1], geos[4], geos[6], conv2dGeometry(16, 3, 32, 32, 64, 3, 1, 1)]);
});

async function convCases(be: WebGpuBackend, geos: ReturnType<typeof conv2dGeometry>[]) {
  for (const g of geos) {
    const what = JSON.stringify(g);
    const [gx, rx] = pair(be, normals(g.n * g.c * g.h * g.w, 15));
    const [gw, rw] = pair(be, normals(g.o * g.c * g.kh * g.kw, 16, 0.3));
    const [gb, rb] = pair(be, normals(g.o, 17));
    await same(be, be.conv2d(gx, gw, gb, g), ref.conv2d(rx, rw, rb, g), `conv ${what}`);
    await same(be, be.conv2d(gx, gw, null, g), ref.conv2d(rx, rw, null, g), `conv nb ${what}`);
    const [gd, rd] = pair(be, normals(g.n * g.o * g.oh * g.ow, 18));
    await same(
      be,
      be.conv2dBackwardData(gd, gw, g),
      ref.conv2dBackwardData(rd, rw, g),
      `conv data ${what}`,
    );
    await same(
      be,
      be.conv2dBackwardFilter(gx, gd, g),
      ref.conv2dBackwardFilter(rx, rd, g),
      `conv filter ${what}`,
    );
  }
}

// ---- normalisation ---------------------------------------------------------------------------

gpuTest("group norm forward and backward", async (be) => {
  const geos: GroupNormGeometry[] = [
    { n: 3, c: 6, hw: 10, groups: 3, eps: 1e-5 },
    { n: 2, c: 4, hw: 1, groups: 2, eps: 1e-5 },
    { n: 2, c: 4, hw: 300, groups: 2, eps: 1e-5 },
    { n: 1, c: 5, hw: 7, groups: 5, eps: 1e-3 },
    { n: 70, c: 4, hw: 3, groups: 2, eps: 1e-5 }, // dgamma, dbeta: sums over more than 64 samples
  ];
  for (const g of geos) {
    const what = JSON.stringify(g), n = g.n * g.c * g.hw;
    const [gx, rx] = pair(be, normals(n, 19, 2, 0.5));
    const [gg, rg] = pair(be, normals(g.c, 20, 1, 1));
    const [gb, rb] = pair(be, normals(g.c, 21));
    const a = be.groupNorm(gx, { gamma: gg, beta: gb }, g),
      b = ref.groupNorm(rx, { gamma: rg, beta: rb }, g);
    await same(be, a.y, b.y, `gn y ${what}`);
    await same(be, a.mean, b.mean, `gn mean ${what}`);
    await same(be, a.rstd, b.rstd, `gn rstd ${what}`);
    const [gd, rd] = pair(be, normals(n, 22));
    const da = be.groupNormBackward(gd, { x: gx, gamma: gg, mean: a.mean, rstd: a.rstd }, g);
    const db = ref.groupNormBackward(rd, { x: rx, gamma: rg, mean: b.mean, rstd: b.rstd }, g);
    await same(be, da.dx, db.dx, `gn dx ${what}`);
    await same(be, da.dgamma, db.dgamma, `gn dgamma ${what}`);
    await same(be, da.dbeta, db.dbeta, `gn dbeta ${what}`);
  }
  assert.throws(
    () =>
      be.groupNorm(be.alloc(6), { gamma: be.alloc(3), beta: be.alloc(3) }, {
        n: 1,
        c: 3,
        hw: 2,
        groups: 2,
        eps: 0,
      }),
    /divide/,
  );
});

gpuTest("group norm fused with SiLU, forward and backward", async (be) => {
  const geos: GroupNormGeometry[] = [
    { n: 1, c: 6, hw: 35, groups: 3, eps: 1e-5, silu: true },
    { n: 3, c: 6, hw: 35, groups: 3, eps: 1e-5, silu: true },
    { n: 2, c: 4, hw: 1, groups: 2, eps: 1e-5, silu: true },
    { n: 2, c: 4, hw: 300, groups: 2, eps: 1e-5, silu: true },
    { n: 2, c: 8, hw: 9, groups: 1, eps: 1e-3, silu: true },
  ];
  let worst = 0;
  const track = async (g: Storage, r: Storage, what: string) => {
    const [a, b] = await Promise.all([be.read(g), ref.read(r)]);
    assertClose(a, b, 1e-4, what);
    for (let i = 0; i < b.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
    }
  };
  for (const [k, g] of geos.entries()) {
    const what = JSON.stringify(g), n = g.n * g.c * g.hw;
    const [gx, rx] = pair(be, normals(n, 23, 2, 0.5));
    // gamma and beta as views of one buffer, as in the parameter arena (the last case drives the
    // SiLU far into both tails).
    const gamma = normals(g.c, 24, k === geos.length - 1 ? 30 : 1, 1), beta = normals(g.c, 25);
    const both = be.upload([...gamma, ...beta]);
    const gg = be.view(both, 0, g.c), gb = be.view(both, g.c, g.c);
    const rg = ref.upload(gamma), rb = ref.upload(beta);
    const a = be.groupNorm(gx, { gamma: gg, beta: gb }, g),
      b = ref.groupNorm(rx, { gamma: rg, beta: rb }, g);
    await track(a.y, b.y, `gn+silu y ${what}`);
    await track(a.mean, b.mean, `gn+silu mean ${what}`);
    await track(a.rstd, b.rstd, `gn+silu rstd ${what}`);
    const [gd, rd] = pair(be, normals(n, 26));
    const da = be.groupNormBackward(
      gd,
      { x: gx, gamma: gg, beta: gb, mean: a.mean, rstd: a.rstd },
      g,
    );
    const db = ref.groupNormBackward(
      rd,
      { x: rx, gamma: rg, beta: rb, mean: b.mean, rstd: b.rstd },
      g,
    );
    await track(da.dx, db.dx, `gn+silu dx ${what}`);
    await track(da.dgamma, db.dgamma, `gn+silu dgamma ${what}`);
    await track(da.dbeta, db.dbeta, `gn+silu dbeta ${what}`);
  }
  console.log(`group norm + silu: max relative error vs reference ${worst.toExponential(2)}`);
});

gpuTest("softmax forward and backward", async (be) => {
  for (const [rows, cols] of [[7, 5], [3, 300], [1, 1]]) {
    const [gx, rx] = pair(be, normals(rows * cols, 23, 3));
    const gy = be.softmax(gx, rows, cols), ry = ref.softmax(rx, rows, cols);
    await same(be, gy, ry, `softmax ${rows}x${cols}`);
    const [gd, rd] = pair(be, normals(rows * cols, 24));
    await same(
      be,
      be.softmaxBackward(gy, gd, rows, cols),
      ref.softmaxBackward(ry, rd, rows, cols),
      `softmax grad ${rows}x${cols}`,
    );
  }
});

// ---- layout ------------------------------------------------------------------------------------

gpuTest("upsample, concat, slice, gather, gatherRows", async (be) => {
  for (const f of [2, 3]) {
    const [gx, rx] = pair(be, normals(3 * 5 * 4, 25));
    await same(
      be,
      be.upsampleNearest(gx, { planes: 3, h: 5, w: 4, factor: f }),
      ref.upsampleNearest(rx, { planes: 3, h: 5, w: 4, factor: f }),
      "up",
      0,
    );
    const [gd, rd] = pair(be, normals(3 * 5 * 4 * f * f, 26));
    await same(
      be,
      be.upsampleNearestBackward(gd, { planes: 3, h: 5, w: 4, factor: f }),
      ref.upsampleNearestBackward(rd, { planes: 3, h: 5, w: 4, factor: f }),
      "up grad",
    );
  }
  const sizes = [2, 0, 3], outer = 4, inner = 5;
  const parts = sizes.map((s, i) => pair(be, normals(outer * s * inner, 27 + i)));
  const gc = be.concat(parts.map((p) => p[0]), { outer, sizes, inner });
  const rc = ref.concat(parts.map((p) => p[1]), { outer, sizes, inner });
  await same(be, gc, rc, "concat", 0);
  await same(
    be,
    be.slice(gc, { outer, axis: 5, start: 1, len: 3, inner }),
    ref.slice(rc, { outer, axis: 5, start: 1, len: 3, inner }),
    "slice",
    0,
  );
  const [gt, rt] = pair(be, normals(40, 30));
  const idx = [3, 0, 39, 17, 17, 5];
  const [gi, ri] = pair(be, idx);
  await same(be, be.gather(gt, gi), ref.gather(rt, ri), "gather", 0);
  const rowsIdx = [3, 0, 9, 7, 7];
  const [gr, rr] = pair(be, rowsIdx);
  await same(be, be.gatherRows(gt, gr, 4), ref.gatherRows(rt, rr, 4), "gatherRows", 0);
});

// ---- losses, optimizer, EMA ----------------------------------------------------------------------

gpuTest("losses and their gradients", async (be) => {
  const n = 1001;
  const [gp, rp] = pair(be, normals(n, 31, 2));
  const [gt, rt] = pair(be, normals(n, 32));
  const [gs, rs] = pair(be, [0.7]);
  for (const kind of ["l2", "l1", "huber"] as const) {
    await same(
      be,
      be.loss({ kind, delta: 0.5 }, gp, gt),
      ref.loss({ kind, delta: 0.5 }, rp, rt),
      `loss ${kind}`,
    );
    await same(
      be,
      be.lossBackward({ kind, delta: 0.5 }, gp, gt, gs),
      ref.lossBackward({ kind, delta: 0.5 }, rp, rt, rs),
      `loss grad ${kind}`,
    );
  }
});

gpuTest(
  "adam (clipping, weight decay, AdamW) and ema on 64-aligned parameter views",
  async (be) => {
    const n = 200;
    for (
      const [decoupled, wd, clip] of [[false, 0, false], [false, 0.01, true], [
        true,
        0.1,
        true,
      ]] as const
    ) {
      const [gp, rp] = pair(be, normals(n, 33), 64);
      const [gg, rg] = pair(be, normals(n, 34, 3), 64);
      const [gm, rm] = pair(be, normals(n, 35, 0.1));
      const [gv, rv] = pair(be, normals(n, 36, 0.1).map(Math.abs));
      for (let step = 1; step <= 3; step++) {
        const settings = (sq: Storage | null) => ({
          lr: 1e-2,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: wd,
          decoupled,
          step,
          clip: clip ? { maxNorm: 1, gradSquaredNorm: sq! } : null,
        });
        be.adam(
          { params: gp, grads: gg, m: gm, v: gv },
          settings(clip ? be.sumSquares([gg]) : null),
        );
        ref.adam(
          { params: rp, grads: rg, m: rm, v: rv },
          settings(clip ? ref.sumSquares([rg]) : null),
        );
      }
      const what = `adam decoupled=${decoupled} wd=${wd} clip=${clip}`;
      await same(be, gp, rp, `${what} params`, 2e-5);
      await same(be, gm, rm, `${what} m`, 2e-5);
      await same(be, gv, rv, `${what} v`, 2e-5);
    }
    const [ge, re] = pair(be, normals(n, 37));
    const [gs, rs] = pair(be, normals(n, 38));
    be.ema(ge, gs, 0.95);
    ref.ema(re, rs, 0.95);
    await same(be, ge, re, "ema", 1e-6);
  },
);

// ---- random numbers ----------------------------------------------------------------------------

gpuTest("random fills reproduce src/random.ts (uniform and int bit for bit)", async (be) => {
  const draws = [
    { seed: 0, stream: 0, counter: 0 },
    { seed: 12345678901, stream: 3, counter: 77 },
    { seed: 5, stream: 4294967295, counter: 4294967294 }, // counter carries into the high word
  ];
  for (const draw of draws) {
    for (const n of [1, 6, 1003]) {
      const g = be.alloc(n), r = ref.alloc(n);
      be.randomUniform(g, draw);
      ref.randomUniform(r, draw);
      assert.deepEqual(
        [...await be.read(g)],
        [...await ref.read(r)],
        `uniform ${JSON.stringify(draw)}`,
      );
      be.randomInt(g, draw, 1, 1001);
      ref.randomInt(r, draw, 1, 1001);
      assert.deepEqual(
        [...await be.read(g)],
        [...await ref.read(r)],
        `int ${JSON.stringify(draw)}`,
      );
      be.randomNormal(g, draw);
      ref.randomNormal(r, draw);
      await same(be, g, r, `normal ${JSON.stringify(draw)}`, 1e-5);
    }
  }
  // Into a view at an odd offset: the neighbours stay untouched.
  const buf = be.upload(new Float32Array(12).fill(9));
  be.randomUniform(be.view(buf, 3, 5), draws[1]);
  const got = await be.read(buf),
    want = await ref.read((() => {
      const r = ref.alloc(5);
      ref.randomUniform(r, draws[1]);
      return r;
    })());
  assert.deepEqual([...got.slice(0, 3), ...got.slice(8)], new Array(7).fill(9));
  assert.deepEqual([...got.slice(3, 8)], [...want]);
});

// ---- error paths ---------------------------------------------------------------------------------

gpuTest(
  "a kernel that fails to compile, a lost device, and use after dispose end in clear errors",
  async () => {
    const bad = {
      key: "broken_for_test",
      bindings: [ro("x"), rw("out")],
      params: [["n", "u32"]] as const,
      workgroup: [64] as const,
      body: "  out[0] = undefined_name;",
    };
    const a = await createWebGpuBackend({ allowFallbackAdapter: true });
    await assert.rejects(
      () => a.pipelines.compile(bad),
      /broken_for_test kernel failed to compile/,
    );
    a.pipelines.get(bad, false); // the synchronous path records the failure...
    await assert.rejects(() => a.read(a.upload([1])), /failed to compile/); // ...and read reports it
    assert.throws(() => a.flush(), /failed to compile/);
    a.dispose();

    const b = await createWebGpuBackend({ allowFallbackAdapter: true });
    const x = b.upload([1, 2]);
    b.device.destroy(); // as if the device were lost
    await new Promise((r) => setTimeout(r, 50));
    const reading = b.read(x).then(() => "resolved", (e: Error) => e.message);
    const result = await Promise.race([
      reading,
      new Promise((r) => setTimeout(() => r("hang"), 5000)),
    ]);
    assert.match(String(result), /lost|dispose|destroy/i);
    assert.throws(() => b.unary("neg", x), /lost|dispose|destroy/i);
    b.dispose();
    assert.throws(() => b.alloc(1), /dispose|lost/);
  },
);

// ---- whole runs ----------------------------------------------------------------------------------

function gaussianData(n: number, seed: number): Dataset {
  const r = new Random(seed), z = r.normals(2 * n), v = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    v[2 * i] = 0.3 * z[2 * i] + 1;
    v[2 * i + 1] = 0.3 * z[2 * i + 1] - 1;
  }
  return { values: v, shape: [n, 2] };
}

gpuTest("a training run and a sampling run match the reference backend", async (be) => {
  const data = gaussianData(200, 1);
  const common = {
    data,
    steps: 10,
    batchSize: 16,
    network: { hidden: 32 },
    schedule: { kind: "cosine" as const, T: 20 },
    progressEvery: 1,
    seed: 3,
  };
  const gl: number[] = [], rl: number[] = [];
  const stats: ReturnType<WebGpuBackend["stats"]>[] = [];
  const gm = await train({
    ...common,
    backend: be,
    onProgress: (p) => {
      gl.push(p.loss);
      stats.push(be.stats());
    },
  });
  const rm = await train({
    ...common,
    backend: createReferenceBackend(),
    onProgress: (p) => rl.push(p.loss),
  });
  assert.equal(gl.length, 10);
  // Steady state: one submit per step plus the loss read, and no new buffers or bind groups.
  const [s4, s9] = [stats[4], stats[9]];
  assert.equal(s9.submits - s4.submits, 10, "two submits per step (flush, read)");
  assert.equal(s9.buffers, s4.buffers, "no buffers created in steady state");
  assert.equal(s9.bindGroups, s4.bindGroups, "no bind groups created in steady state");
  assert.equal(s9.pipelines, s4.pipelines);
  assertClose(gl, rl, 1e-4, "losses");
  const gw = await gm.weights("raw"), rw = await rm.weights("raw");
  for (const [name, v] of rw) assertClose(gw.get(name)!, v, 1e-4, `weight ${name}`);
  const ge = await gm.weights("ema"), re = await rm.weights("ema");
  for (const [name, v] of re) assertClose(ge.get(name)!, v, 1e-4, `ema ${name}`);

  // Sampling from identical weights on both backends.
  const raw = await rm.backend.read(rm.params.values), ema = await rm.backend.read(rm.ema!.values);
  const onGpu = new DiffusionModel(rm.config, be, raw, ema);
  const opts = { count: 50, seed: 9, trajectoryAt: [10] };
  const gs = await sample(onGpu, opts), rs = await sample(rm, opts);
  assert.deepEqual(gs.shape, rs.shape);
  assertClose(gs.values, rs.values, 1e-3, "samples");
});

// ---- profiling ---------------------------------------------------------------------------------

gpuTest("profile: GPU time per kernel, labelled by shape, only when asked for", async (be) => {
  await assert.rejects(be.profile(), /profile: true/);
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter?.features.has("timestamp-query")) {
    console.log("skipped (the adapter has no timestamp-query feature)");
    return;
  }
  const prof = await createWebGpuBackend({ allowFallbackAdapter: true, profile: true });
  try {
    const a = prof.upload(normals(40 * 30, 31)), b = prof.upload(normals(30 * 20, 32));
    for (let i = 0; i < 3; i++) {
      prof.matmul(a, b, { batch: 1, m: 40, k: 30, n: 20, transA: false, transB: false });
    }
    const g = conv2dGeometry(2, 3, 9, 9, 4, 3, 1, 1);
    prof.conv2d(prof.upload(normals(2 * 3 * 81, 33)), prof.upload(normals(4 * 27, 34)), null, g);
    prof.flush();
    const rows = await prof.profile(true);
    const mm = rows.find((r) => r.label === "matmul 1x 40x30 @ 30x20");
    assert.ok(mm, `a matmul row among ${rows.map((r) => r.label)}`);
    assert.equal(mm.calls, 3);
    const conv = rows.find((r) => r.label === "conv fwd 3->4 3x3/1 @9 n2");
    assert.ok(conv, `a conv row among ${rows.map((r) => r.label)}`);
    for (const r of rows) assert.ok(r.ms >= 0 && r.ms < 1e4, `${r.label}: ${r.ms} ms`);
    assert.ok(rows.some((r) => r.ms > 0), "some kernel took measurable time");
    assert.ok(rows.every((r, i) => i === 0 || rows[i - 1].ms >= r.ms), "largest first");
    assert.deepEqual(await prof.profile(), [], "profile(true) started afresh");
  } finally {
    prof.dispose();
  }
});
