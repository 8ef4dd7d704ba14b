/**
 * The wasm backend against the reference backend (float32): every kernel of the interface on
 * random shapes, including sizes that are not multiples of 4 or of the GEMM tiles and batch 1,
 * forward and backward; its memory semantics (views, scopes, growth, out-of-memory); the random
 * fills (uniforms and integers bit-exact, normals within float32 rounding); and a whole MLP
 * training run that must give the reference's losses and weights.
 */

import assert from "node:assert/strict";
import { assertClose, uniformValues } from "../../helpers/compare.ts";
import type { Backend, Storage, UnaryOp } from "../../../src/backend.ts";
import { conv2dGeometry } from "../../../src/backend.ts";
import { createReferenceBackend } from "../../../src/backends/reference/mod.ts";
import { Random } from "../../../src/random.ts";
import { sample } from "../../../src/sample.ts";
import { train } from "../../../src/train.ts";
import { createWasmBackend, openWasmBackend, type WasmBackend } from "../../../wasm/backend.ts";
import { WasmOutOfMemoryError } from "../../../wasm/heap.ts";

const TOL = 1e-4;
const ref = createReferenceBackend();
const single = openWasmBackend({ threads: 1 });
/** The wasm backend under test: one thread, or two with every kernel split (see kernelTest). */
let wasm: WasmBackend = single;

/** Registers `fn` twice: on one thread, and on two threads with every kernel split. */
function kernelTest(name: string, fn: () => Promise<void>): void {
  Deno.test(`${name} (1 thread)`, async () => {
    wasm = single;
    await fn();
  });
  Deno.test(`${name} (2 threads, every kernel split)`, async () => {
    const threaded = await createWasmBackend({ threads: 2, parallelThreshold: 0 });
    wasm = threaded as WasmBackend;
    try {
      await fn();
    } finally {
      threaded.dispose();
      wasm = single;
    }
  });
}
const rng = new Random(20261124);

/** n uniforms in [lo, hi). */
function values(n: number, lo = -1, hi = 1): Float32Array {
  return uniformValues(rng, n, lo, hi);
}

/** n values of magnitude in [lo, hi) and random sign. */
function awayFromZero(n: number, lo = 0.2, hi = 2): Float32Array {
  const v = values(n, lo, hi), s = rng.uniforms(n);
  for (let i = 0; i < n; i++) if (s[i] < 0.5) v[i] = -v[i];
  return v;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Uploads the same data to both backends. */
function both(data: ArrayLike<number>): [Storage, Storage] {
  return [wasm.upload(data), ref.upload(data)];
}

async function same(w: Storage, r: Storage, what: string, tol = TOL, scale = 0): Promise<void> {
  assertClose(await wasm.read(w), await ref.read(r), what, tol, scale);
}

// ---- memory ---------------------------------------------------------------------------------

Deno.test("wasm memory: alloc, upload, write, read, view, fill, copy", async () => {
  const be = openWasmBackend({ initialMiB: 1 });
  const z = be.alloc(13);
  assert.deepEqual([...await be.read(z)], new Array(13).fill(0));
  const a = be.upload([1, 2, 3, 4, 5, 6, 7]);
  be.write(a, [9, 8], 3);
  assert.deepEqual([...await be.read(a)], [1, 2, 3, 9, 8, 6, 7]);
  const v = be.view(a, 2, 4);
  assert.equal(v.length, 4);
  assert.deepEqual([...await be.read(v)], [3, 9, 8, 6]);
  const vv = be.view(v, 1, 2);
  be.fill(vv, -1);
  assert.deepEqual([...await be.read(a)], [1, 2, 3, -1, -1, 6, 7]);
  be.free(vv); // a view: nothing happens
  assert.deepEqual([...await be.read(a)], [1, 2, 3, -1, -1, 6, 7]);
  const b = be.alloc(4);
  be.copy(b, v);
  assert.deepEqual([...await be.read(b)], [3, -1, -1, 6]);
  assert.throws(() => be.view(a, 5, 3), RangeError);
  assert.throws(() => be.write(a, [1, 2], 6), RangeError);
  assert.throws(() => be.copy(b, a), RangeError);
  be.free(a);
  await assert.rejects(async () => await be.read(a), /freed/);
  assert.throws(() => be.fill(v, 0), /freed/);
  assert.throws(() => be.read(ref.alloc(2)), /another backend/);
  assert.throws(() => wasm.read(be.alloc(2)), /another backend/);
  // Freed memory is handed out again zero-filled.
  const c = be.upload(new Array(100).fill(7));
  be.free(c);
  assert.deepEqual([...await be.read(be.alloc(100))], new Array(100).fill(0));
});

Deno.test("wasm memory: scopes release all but the kept handles; blocks coalesce", async () => {
  const be = openWasmBackend({ initialMiB: 1 });
  const before = be.heap.used, ranges = be.heap.freeRanges;
  const outer = be.upload([1, 2, 3]);
  be.beginScope();
  const t1 = be.alloc(1000);
  const kept = be.upload([4, 5]);
  be.beginScope();
  const inner = be.alloc(50);
  const innerKept = be.affine(kept, 2, 0);
  be.endScope([innerKept]);
  assert.throws(() => be.read(inner), /freed/);
  assert.deepEqual([...await be.read(innerKept)], [8, 10]);
  be.free(t1); // freed by hand inside a scope: the scope skips it
  const keptView = be.view(kept, 1, 1);
  be.endScope([keptView]); // keeping a view keeps its storage
  assert.deepEqual([...await be.read(kept)], [4, 5]);
  assert.throws(() => be.read(innerKept), /freed/);
  be.free(kept);
  be.free(outer);
  assert.equal(be.heap.used, before);
  assert.equal(be.heap.freeRanges, ranges);
  assert.throws(() => be.endScope(), /without beginScope/);
});

Deno.test("wasm memory: grows past its initial size and keeps the data", async () => {
  const be = openWasmBackend({ initialMiB: 1 });
  const small = be.upload([1, 2, 3]);
  const cap = be.heap.capacity;
  const big = be.alloc(3 << 20); // 12 MiB
  assert.ok(be.heap.capacity > cap);
  be.fill(big, 2);
  const v = be.view(big, (3 << 20) - 3, 3);
  assert.deepEqual([...await be.read(v)], [2, 2, 2]);
  assert.deepEqual([...await be.read(small)], [1, 2, 3]);
  const y = be.affine(small, 1, 1);
  assert.deepEqual([...await be.read(y)], [2, 3, 4]);
});

Deno.test("wasm memory: running out ends in an error naming the size asked for", () => {
  const be = openWasmBackend({ initialMiB: 1, maxMiB: 8 });
  be.alloc(1000);
  assert.throws(
    () => be.alloc(4 << 20),
    (e: unknown) =>
      e instanceof WasmOutOfMemoryError && e.bytes === 16 << 20 &&
      /out of memory allocating 16777216 bytes \(4194304 float32 values\)/.test(e.message),
  );
  be.alloc(1000); // still usable
});

// ---- element-wise ---------------------------------------------------------------------------

const UNARY: UnaryOp[] = [
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
];
const POSITIVE = new Set<UnaryOp>(["log", "sqrt", "rsqrt"]);

kernelTest("wasm unary and unaryBackward match the reference", async () => {
  for (const n of [1, 3, 37, 1000]) {
    for (const op of UNARY) {
      const x = POSITIVE.has(op) ? values(n, 0.05, 4) : values(n, -6, 6);
      const [xw, xr] = both(x);
      await same(wasm.unary(op, xw), ref.unary(op, xr), `${op} n=${n}`);
      if (op === "sign" || op === "floor") {
        assert.throws(() => wasm.unaryBackward(op, xw, xw), /no gradient/);
        continue;
      }
      const [dw, dr] = both(values(n));
      await same(wasm.unaryBackward(op, xw, dw), ref.unaryBackward(op, xr, dr), `${op}' n=${n}`);
    }
  }
  // Special values: zeros and large magnitudes.
  const x = [0, -0, 1e-8, -1e-8, 50, -50, 100, -100, 88, -88];
  const [xw, xr] = both(x);
  for (const op of ["relu", "silu", "gelu", "tanh", "sigmoid", "exp", "sign", "abs"] as const) {
    await same(wasm.unary(op, xw), ref.unary(op, xr), `${op} special`);
  }
});

kernelTest("wasm binary broadcasting matches the reference", async () => {
  const cases: [number[], number[], number[]][] = [
    [[37], [37], [37]],
    [[5, 7], [1, 7], [5, 7]],
    [[5, 7], [5, 1], [5, 7]],
    [[1, 7], [5, 7], [5, 7]],
    [[4, 1], [1, 6], [4, 6]],
    [[1, 1], [3, 5], [3, 5]],
    [[3, 5, 7], [1, 5, 1], [3, 5, 7]],
    [[3, 5, 7], [3, 1, 7], [3, 5, 7]],
    [[2, 3, 4, 5], [2, 1, 4, 1], [2, 3, 4, 5]],
    [[2, 1, 4, 1], [1, 3, 1, 5], [2, 3, 4, 5]],
    [[1, 3, 1], [2, 3, 9], [2, 3, 9]],
    [[1], [1], [1]],
    [[64, 256], [1, 256], [64, 256]],
  ];
  for (const op of ["add", "sub", "mul", "div", "max", "min"] as const) {
    for (const [as, bs, os] of cases) {
      const a = values(size(as)), b = op === "div" ? awayFromZero(size(bs)) : values(size(bs));
      const [aw, ar] = both(a), [bw, br] = both(b);
      await same(
        wasm.binary(op, aw, bw, { a: as, b: bs, out: os }),
        ref.binary(op, ar, br, { a: as, b: bs, out: os }),
        `${op} [${as}] [${bs}]`,
      );
    }
  }
});

kernelTest("wasm affine, axpy (into a view) and clamp match the reference", async () => {
  for (const n of [1, 6, 77]) {
    const [xw, xr] = both(values(n, -3, 3));
    await same(wasm.affine(xw, 0.37, -1.25), ref.affine(xr, 0.37, -1.25), `affine ${n}`);
    await same(wasm.clamp(xw, -1, 0.5), ref.clamp(xr, -1, 0.5), `clamp ${n}`);
    const y = values(n + 5);
    const [yw, yr] = both(y);
    wasm.axpy(wasm.view(yw, 2, n), xw, -0.7);
    ref.axpy(ref.view(yr, 2, n), xr, -0.7);
    await same(yw, yr, `axpy ${n}`);
  }
});

kernelTest("wasm reduceSum, sumSquares and permute match the reference", async () => {
  const reductions: [number[], number[]][] = [
    [[64, 256], [1, 256]],
    [[64, 256], [64, 1]],
    [[7, 5], [1, 1]],
    [[3, 4, 5], [1, 4, 1]],
    [[3, 4, 5], [3, 1, 5]],
    [[2, 3, 4, 5], [2, 1, 1, 5]],
    [[2, 3, 4, 5], [1, 3, 4, 1]],
    [[5, 1, 3], [1, 1, 3]],
    [[9], [9]],
    [[1000], [1]],
  ];
  for (const [s, o] of reductions) {
    const [xw, xr] = both(values(size(s)));
    await same(wasm.reduceSum(xw, s, o), ref.reduceSum(xr, s, o), `reduceSum [${s}]->[${o}]`);
  }
  const xs = [values(1), values(33), values(1000)];
  const sw = xs.map((x) => wasm.upload(x)), sr = xs.map((x) => ref.upload(x));
  await same(wasm.sumSquares(sw), ref.sumSquares(sr), "sumSquares");
  const perms: [number[], number[]][] = [
    [[5, 7], [1, 0]],
    [[3, 4, 5], [2, 0, 1]],
    [[3, 4, 5], [0, 2, 1]],
    [[3, 4, 5], [1, 0, 2]],
    [[2, 3, 4, 5], [0, 2, 1, 3]],
    [[2, 3, 4, 5], [3, 2, 1, 0]],
    [[6, 1, 5], [1, 2, 0]],
    // The UNet's patches: space to depth and back (2x2 patches of 1x6x6, batch 2).
    [[2, 1, 3, 2, 3, 2], [0, 1, 3, 5, 2, 4]],
    [[2, 1, 2, 2, 3, 3], [0, 1, 4, 2, 5, 3]],
  ];
  for (const [s, p] of perms) {
    const [xw, xr] = both(values(size(s)));
    await same(wasm.permute(xw, s, p), ref.permute(xr, s, p), `permute [${s}] (${p})`);
  }
});

// ---- linear algebra -------------------------------------------------------------------------

kernelTest("wasm matmul matches the reference (all transposes, batches, odd sizes)", async () => {
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1],
    [1, 5, 3, 7],
    [1, 6, 8, 8],
    [1, 13, 17, 11],
    [1, 64, 3, 256],
    [1, 64, 256, 2],
    [1, 67, 260, 29],
    [1, 7, 300, 530],
    [1, 100, 270, 130],
    [3, 9, 10, 12],
    [2, 100, 37, 19],
  ];
  for (const [batch, m, k, n] of shapes) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        for (const [bA, bB] of [[true, true], [false, true], [true, false]]) {
          if (batch === 1 && !(bA && bB)) continue;
          const a = values((bA ? batch : 1) * m * k), b = values((bB ? batch : 1) * k * n);
          const [aw, ar] = both(a), [bw, br] = both(b);
          await same(
            wasm.matmul(aw, bw, { batch, m, k, n, transA: tA, transB: tB, batchA: bA, batchB: bB }),
            ref.matmul(ar, br, { batch, m, k, n, transA: tA, transB: tB, batchA: bA, batchB: bB }),
            `matmul ${batch}x${m}x${k}x${n} tA=${tA} tB=${tB} bA=${bA} bB=${bB}`,
            TOL,
            Math.sqrt(k) / 4,
          );
        }
      }
    }
  }
  // Inputs that are views at unaligned offsets.
  const [aw, ar] = both(values(5 * 7 + 1)), [bw, br] = both(values(7 * 9 + 3));
  await same(
    wasm.matmul(wasm.view(aw, 1, 35), wasm.view(bw, 3, 63), {
      batch: 1,
      m: 5,
      k: 7,
      n: 9,
      transA: false,
      transB: false,
    }),
    ref.matmul(ref.view(ar, 1, 35), ref.view(br, 3, 63), {
      batch: 1,
      m: 5,
      k: 7,
      n: 9,
      transA: false,
      transB: false,
    }),
    "matmul of views",
  );
  // k = 0 gives zeros.
  const z = wasm.matmul(wasm.alloc(0), wasm.alloc(0), {
    batch: 1,
    m: 3,
    k: 0,
    n: 4,
    transA: false,
    transB: false,
  });
  assert.deepEqual([...await wasm.read(z)], new Array(12).fill(0));
});

Deno.test("wasm skinny matmuls (n <= 4, k <= 4) match the reference, same bits on 1 and 2 threads", async () => {
  const threaded = await createWasmBackend({ threads: 2, parallelThreshold: 0 });
  const packed = openWasmBackend({ threads: 1, skinnyGemm: false });
  try {
    // [m, k, n]: few columns (the MLP's output layer), a short inner size (its input layer), odd
    // sizes, row counts around the 4-row blocks, and shapes at the edges of both paths.
    const shapes: [number, number, number][] = [
      [64, 256, 2],
      [63, 257, 1],
      [5, 4, 3],
      [3, 9, 4],
      [4, 17, 4],
      [11, 6, 5],
      [64, 3, 256],
      [37, 1, 9],
      [9, 4, 4],
      [4, 2, 1],
      [3, 3, 7],
      [101, 3, 255],
      [250, 2, 3],
    ];
    for (const [m, k, n] of shapes) {
      for (const tA of [false, true]) {
        for (const tB of [false, true]) {
          const what = `skinny matmul ${m}x${k}x${n} tA=${tA} tB=${tB}`;
          const a = values(2 * m * k), b = values(2 * k * n);
          const run = (be: Backend) =>
            be.read(
              be.matmul(be.upload(a), be.upload(b), { batch: 2, m, k, n, transA: tA, transB: tB }),
            );
          const want = await ref.read(
            ref.matmul(ref.upload(a), ref.upload(b), { batch: 2, m, k, n, transA: tA, transB: tB }),
          );
          const one = await run(single);
          assertClose(one, want, what, TOL, Math.sqrt(k) / 4);
          assertClose(await run(packed), want, `${what} (packed GEMM)`, TOL, Math.sqrt(k) / 4);
          assert.deepEqual(await run(threaded), one, `${what}: 1 vs 2 threads`);
        }
      }
    }
  } finally {
    threaded.dispose();
  }
});

// ---- convolution ----------------------------------------------------------------------------

kernelTest("wasm conv2d and both gradients match the reference", async () => {
  const geos = [
    conv2dGeometry(1, 1, 5, 5, 1, 3, 1, 1),
    conv2dGeometry(2, 3, 9, 11, 5, 3, 1, 1),
    conv2dGeometry(1, 4, 14, 14, 8, 3, 1, 1),
    conv2dGeometry(2, 3, 9, 11, 5, 3, 2, 1),
    conv2dGeometry(1, 8, 14, 14, 7, 3, 2, 1),
    conv2dGeometry(2, 6, 7, 5, 9, 1, 1, 0),
    conv2dGeometry(1, 5, 9, 9, 4, 1, 2, 0),
    conv2dGeometry(1, 3, 6, 7, 2, 3, 1, 0),
    conv2dGeometry(2, 16, 12, 12, 16, 3, 1, 1),
    conv2dGeometry(1, 2, 20, 20, 3, 3, 1, 1),
    conv2dGeometry(2, 3, 6, 6, 4, 3, 3, 0),
    // A rectangular window.
    { n: 2, c: 3, h: 8, w: 9, o: 4, kh: 3, kw: 1, stride: 1, pad: 1, oh: 8, ow: 11 },
    // The MNIST UNet's shapes at a small batch (columns of the batched GEMM cross images).
    conv2dGeometry(3, 32, 28, 28, 32, 3, 1, 1),
    conv2dGeometry(3, 32, 28, 28, 32, 3, 2, 1),
    conv2dGeometry(3, 96, 28, 28, 32, 1, 1, 0),
    conv2dGeometry(3, 32, 28, 28, 1, 3, 1, 1),
    conv2dGeometry(3, 64, 14, 14, 64, 3, 2, 1),
    conv2dGeometry(3, 128, 14, 14, 64, 1, 1, 0),
    conv2dGeometry(5, 64, 7, 7, 64, 3, 1, 1),
    conv2dGeometry(5, 128, 7, 7, 64, 3, 1, 1),
  ];
  for (const g of geos) {
    const what = `conv ${JSON.stringify(g)}`;
    const x = values(g.n * g.c * g.h * g.w), w = values(g.o * g.c * g.kh * g.kw);
    const bias = values(g.o), dy = values(g.n * g.o * g.oh * g.ow);
    const [xw, xr] = both(x), [ww, wr] = both(w), [bw, br] = both(bias), [dw, dr] = both(dy);
    const scale = Math.sqrt(g.c * g.kh * g.kw) / 4;
    await same(wasm.conv2d(xw, ww, bw, g), ref.conv2d(xr, wr, br, g), what, TOL, scale);
    await same(
      wasm.conv2d(xw, ww, null, g),
      ref.conv2d(xr, wr, null, g),
      what + " no bias",
      TOL,
      scale,
    );
    await same(
      wasm.conv2dBackwardData(dw, ww, g),
      ref.conv2dBackwardData(dr, wr, g),
      what + " dx",
      TOL,
      Math.sqrt(g.o * g.kh * g.kw) / 4,
    );
    await same(
      wasm.conv2dBackwardFilter(xw, dw, g),
      ref.conv2dBackwardFilter(xr, dr, g),
      what + " dw",
      TOL,
      Math.sqrt(g.n * g.oh * g.ow) / 4,
    );
  }
});

// ---- normalisation and softmax --------------------------------------------------------------

kernelTest("wasm groupNorm forward and backward match the reference", async () => {
  const geos = [
    { n: 1, c: 6, hw: 5, groups: 3, eps: 1e-5 },
    { n: 2, c: 8, hw: 13, groups: 4, eps: 1e-5 },
    { n: 3, c: 32, hw: 1, groups: 8, eps: 1e-5 },
    { n: 2, c: 16, hw: 49, groups: 8, eps: 1e-6 },
    { n: 1, c: 4, hw: 7, groups: 1, eps: 1e-5 },
  ];
  for (const g of geos) {
    const what = `groupNorm ${JSON.stringify(g)}`;
    const x = values(g.n * g.c * g.hw, -2, 3);
    const [xw, xr] = both(x), [gw, gr] = both(values(g.c, 0.5, 1.5)), [bw, br] = both(values(g.c));
    const fw = wasm.groupNorm(xw, { gamma: gw, beta: bw }, g),
      fr = ref.groupNorm(xr, { gamma: gr, beta: br }, g);
    await same(fw.y, fr.y, what + " y");
    await same(fw.mean, fr.mean, what + " mean");
    await same(fw.rstd, fr.rstd, what + " rstd");
    const [dw, dr] = both(values(x.length));
    const bwd = wasm.groupNormBackward(dw, { x: xw, gamma: gw, mean: fw.mean, rstd: fw.rstd }, g);
    const bref = ref.groupNormBackward(dr, { x: xr, gamma: gr, mean: fr.mean, rstd: fr.rstd }, g);
    await same(bwd.dx, bref.dx, what + " dx");
    await same(bwd.dgamma, bref.dgamma, what + " dgamma");
    await same(bwd.dbeta, bref.dbeta, what + " dbeta");
  }
});

kernelTest("wasm groupNorm: a large mean beside a small spread keeps its variance", async () => {
  // The statistics come from one pass (sum and sum of squares in double precision): values of
  // mean 40 and spread 0.01 (mean^2 / variance about 5e7) still normalise as the reference does.
  const g = { n: 2, c: 16, hw: 784, groups: 8, eps: 1e-6 };
  const x = values(g.n * g.c * g.hw, 39.99, 40.01);
  const [xw, xr] = both(x), [gw, gr] = both(values(g.c, 0.5, 1.5)), [bw, br] = both(values(g.c));
  const fw = wasm.groupNorm(xw, { gamma: gw, beta: bw }, g),
    fr = ref.groupNorm(xr, { gamma: gr, beta: br }, g);
  await same(fw.rstd, fr.rstd, "rstd");
  await same(fw.y, fr.y, "y");
});

kernelTest(
  "wasm groupNorm fused with SiLU, forward and backward, matches the reference",
  async () => {
    const geos = [
      { n: 1, c: 6, hw: 35, groups: 3, eps: 1e-5, silu: true },
      { n: 3, c: 6, hw: 35, groups: 3, eps: 1e-5, silu: true },
      { n: 2, c: 8, hw: 13, groups: 4, eps: 1e-5, silu: true },
      { n: 3, c: 32, hw: 1, groups: 8, eps: 1e-5, silu: true },
      { n: 2, c: 4, hw: 6, groups: 1, eps: 1e-6, silu: true },
      { n: 1, c: 12, hw: 3, groups: 4, eps: 1e-5, silu: true },
      { n: 2, c: 8, hw: 198, groups: 2, eps: 1e-5, silu: true },
      { n: 2, c: 16, hw: 49, groups: 8, eps: 1e-5, silu: true },
    ];
    let worst = 0;
    const track = async (w: Storage, r: Storage, what: string) => {
      const a = await wasm.read(w), e = await ref.read(r);
      assertClose(a, e, what);
      for (let i = 0; i < e.length; i++) {
        worst = Math.max(worst, Math.abs(a[i] - e[i]) / Math.max(1, Math.abs(e[i])));
      }
    };
    for (const [k, g] of geos.entries()) {
      const what = `groupNorm+silu ${JSON.stringify(g)}`;
      const x = values(g.n * g.c * g.hw, -2, 3);
      // The last case drives the SiLU far into both tails (|z| up to about 60).
      const [gw, gr] = both(k === geos.length - 1 ? values(g.c, -30, 30) : values(g.c, -1.5, 1.5));
      const [xw, xr] = both(x), [bw, br] = both(values(g.c));
      const fw = wasm.groupNorm(xw, { gamma: gw, beta: bw }, g),
        fr = ref.groupNorm(xr, { gamma: gr, beta: br }, g);
      await track(fw.y, fr.y, what + " y");
      await track(fw.mean, fr.mean, what + " mean");
      await track(fw.rstd, fr.rstd, what + " rstd");
      const [dw, dr] = both(values(x.length));
      const bwd = wasm.groupNormBackward(dw, {
        x: xw,
        gamma: gw,
        beta: bw,
        mean: fw.mean,
        rstd: fw.rstd,
      }, g);
      const bref = ref.groupNormBackward(dr, {
        x: xr,
        gamma: gr,
        beta: br,
        mean: fr.mean,
        rstd: fr.rstd,
      }, g);
      await track(bwd.dx, bref.dx, what + " dx");
      await track(bwd.dgamma, bref.dgamma, what + " dgamma");
      await track(bwd.dbeta, bref.dbeta, what + " dbeta");
    }
    assert.throws(
      () =>
        wasm.groupNormBackward(wasm.alloc(6), {
          x: wasm.alloc(6),
          gamma: wasm.alloc(3),
          mean: wasm.alloc(1),
          rstd: wasm.alloc(1),
        }, { n: 1, c: 3, hw: 2, groups: 1, eps: 1e-5, silu: true }),
      /beta/,
    );
    console.log(`groupNorm+silu: max relative error vs reference ${worst.toExponential(2)}`);
  },
);

Deno.test("wasm groupNorm (plain and fused with SiLU) gives the same bits on 1 and 2 threads", async () => {
  const threaded = await createWasmBackend({ threads: 2, parallelThreshold: 0 });
  try {
    const geos = [
      { n: 1, c: 6, hw: 35, groups: 3, eps: 1e-5 },
      { n: 3, c: 16, hw: 49, groups: 8, eps: 1e-5 },
      { n: 5, c: 4, hw: 3, groups: 2, eps: 1e-5 },
      { n: 2, c: 8, hw: 198, groups: 4, eps: 1e-5 },
    ];
    for (const base of geos) {
      for (const silu of [false, true]) {
        const g = { ...base, silu }, what = `groupNorm ${JSON.stringify(g)}`;
        const x = values(g.n * g.c * g.hw, -2, 3), dy = values(x.length);
        const gamma = values(g.c, -1.5, 1.5), beta = values(g.c);
        const run = (be: Backend) => {
          const [xs, gs, bs] = [be.upload(x), be.upload(gamma), be.upload(beta)];
          const f = be.groupNorm(xs, { gamma: gs, beta: bs }, g);
          const b = be.groupNormBackward(be.upload(dy), {
            x: xs,
            gamma: gs,
            beta: bs,
            mean: f.mean,
            rstd: f.rstd,
          }, g);
          return Promise.all([f.y, f.mean, f.rstd, b.dx, b.dgamma, b.dbeta].map((s) => be.read(s)));
        };
        const one = await run(single), two = await run(threaded);
        for (let i = 0; i < one.length; i++) {
          assert.deepEqual(two[i], one[i], `${what} output ${i}`);
        }
      }
    }
  } finally {
    threaded.dispose();
  }
});

kernelTest(
  "wasm exp, sigmoid, silu and tanh are within 1e-6 relative of float64 math",
  async () => {
    // Dense sweeps: exp over nearly its whole float32 range, the others where they are not flat.
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
    for (
      const [op, x] of [
        ["exp", sweep(-87, 88, 20001)],
        ["sigmoid", sweep(-30, 30, 6001)],
        ["silu", sweep(-30, 30, 6001)],
        ["tanh", sweep(-10, 10, 4001)],
      ] as const
    ) {
      const y = await wasm.read(wasm.unary(op, wasm.upload(x)));
      for (let i = 0; i < x.length; i++) {
        const e = f64[op](x[i]);
        assert.ok(
          Math.abs(y[i] - e) <= 1e-6 * Math.abs(e) + 1e-30,
          `${op}(${x[i]}) is ${y[i]}, expected ${e}`,
        );
      }
    }
  },
);

kernelTest("wasm softmax forward and backward match the reference", async () => {
  for (const [rows, cols] of [[1, 1], [5, 7], [3, 33], [64, 49], [2, 4]]) {
    const [xw, xr] = both(values(rows * cols, -5, 5));
    const yw = wasm.softmax(xw, rows, cols), yr = ref.softmax(xr, rows, cols);
    await same(yw, yr, `softmax ${rows}x${cols}`);
    const [dw, dr] = both(values(rows * cols));
    await same(
      wasm.softmaxBackward(yw, dw, rows, cols),
      ref.softmaxBackward(yr, dr, rows, cols),
      `softmax' ${rows}x${cols}`,
    );
  }
});

// ---- resampling and layout ------------------------------------------------------------------

kernelTest("wasm upsampling, concat, slice and gathers match the reference", async () => {
  const shapes = [[1, 1, 1, 2], [3, 5, 7, 2], [2, 4, 9, 3], [2, 7, 7, 2], [3, 3, 8, 2], [
    5,
    2,
    14,
    2,
  ]];
  for (const [planes, h, w, f] of shapes) {
    const [xw, xr] = both(values(planes * h * w));
    await same(
      wasm.upsampleNearest(xw, { planes, h, w, factor: f }),
      ref.upsampleNearest(xr, { planes, h, w, factor: f }),
      `upsample ${planes}x${h}x${w} by ${f}`,
    );
    const [dw, dr] = both(values(planes * h * w * f * f));
    await same(
      wasm.upsampleNearestBackward(dw, { planes, h, w, factor: f }),
      ref.upsampleNearestBackward(dr, { planes, h, w, factor: f }),
      `upsample' ${planes}x${h}x${w} by ${f}`,
    );
  }
  for (
    const [outer, sizes, inner] of [[1, [2, 3], 1], [4, [1, 5, 2], 3], [6, [3, 1], 7]] as const
  ) {
    const xs = sizes.map((s) => values(outer * s * inner));
    const cw = wasm.concat(xs.map((x) => wasm.upload(x)), { outer, sizes, inner });
    const cr = ref.concat(xs.map((x) => ref.upload(x)), { outer, sizes, inner });
    await same(cw, cr, `concat ${outer} [${sizes}] ${inner}`);
    const axis = sizes.reduce((a, b) => a + b, 0);
    for (let start = 0; start < axis; start += 2) {
      const len = Math.min(2, axis - start);
      await same(
        wasm.slice(cw, { outer, axis, start, len, inner }),
        ref.slice(cr, { outer, axis, start, len, inner }),
        `slice ${start}:${start + len}`,
      );
    }
  }
  const table = values(50), index = Float32Array.from(rng.uniforms(77), (u) => Math.floor(u * 50));
  const [tw, tr] = both(table), [iw, ir] = both(index);
  await same(wasm.gather(tw, iw), ref.gather(tr, ir), "gather");
  const rows = values(10 * 3), idx = Float32Array.from(rng.uniforms(16), (u) => Math.floor(u * 10));
  const [rw, rr] = both(rows), [jw, jr] = both(idx);
  await same(wasm.gatherRows(rw, jw, 3), ref.gatherRows(rr, jr, 3), "gatherRows");
});

// ---- losses and optimisation ----------------------------------------------------------------

kernelTest("wasm losses and their gradients match the reference", async () => {
  for (const n of [1, 7, 128]) {
    const [pw, pr] = both(values(n, -3, 3)), [tw, tr] = both(values(n, -3, 3));
    const [sw, sr] = both([0.7]);
    for (const kind of ["l2", "l1", "huber"] as const) {
      await same(
        wasm.loss({ kind, delta: 0.8 }, pw, tw),
        ref.loss({ kind, delta: 0.8 }, pr, tr),
        `${kind} ${n}`,
      );
      await same(
        wasm.lossBackward({ kind, delta: 0.8 }, pw, tw, sw),
        ref.lossBackward({ kind, delta: 0.8 }, pr, tr, sr),
        `${kind}' ${n}`,
      );
    }
  }
});

kernelTest(
  "wasm adam (clipping, coupled and decoupled decay) and ema match the reference",
  async () => {
    for (const n of [1, 5, 1003]) {
      for (
        const [decoupled, weightDecay, maxNorm] of [[false, 0, 0], [false, 0.01, 1], [
          true,
          0.1,
          100,
        ]] as const
      ) {
        const p = values(n), g = values(n), m = values(n, -0.1, 0.1), v = values(n, 0, 0.1);
        const [pw, pr] = both(p), [gw, gr] = both(g), [mw, mr] = both(m), [vw, vr] = both(v);
        for (let step = 1; step <= 3; step++) {
          const settings = (be: Backend, grads: Storage) => ({
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weightDecay,
            decoupled,
            step,
            clip: maxNorm ? { maxNorm, gradSquaredNorm: be.sumSquares([grads]) } : null,
          });
          wasm.adam({ params: pw, grads: gw, m: mw, v: vw }, settings(wasm, gw));
          ref.adam({ params: pr, grads: gr, m: mr, v: vr }, settings(ref, gr));
        }
        const what = `adam n=${n} decoupled=${decoupled} wd=${weightDecay} clip=${maxNorm}`;
        await same(pw, pr, what + " params");
        await same(mw, mr, what + " m");
        await same(vw, vr, what + " v");
      }
      const [tw, tr] = both(values(n)), [sw, sr] = both(values(n));
      wasm.ema(tw, sw, 0.95);
      ref.ema(tr, sr, 0.95);
      await same(tw, tr, `ema ${n}`);
    }
  },
);

// ---- random numbers -------------------------------------------------------------------------

kernelTest("wasm random fills reproduce src/random.ts", async () => {
  const draws = [
    { seed: 0, stream: 0, counter: 0 },
    { seed: 7, stream: 3, counter: 12345 },
    { seed: 2 ** 40 + 11, stream: 2 ** 32 - 1, counter: 2 ** 35 + 3 },
  ];
  for (const draw of draws) {
    for (const n of [1, 2, 3, 5, 8, 1001]) {
      const uw = wasm.alloc(n), ur = ref.alloc(n);
      wasm.randomUniform(uw, draw);
      ref.randomUniform(ur, draw);
      assert.deepEqual(await wasm.read(uw), await ref.read(ur), `uniform ${n}`);
      wasm.randomInt(uw, draw, -3, 1000);
      ref.randomInt(ur, draw, -3, 1000);
      assert.deepEqual(await wasm.read(uw), await ref.read(ur), `int ${n}`);
      wasm.randomNormal(uw, draw);
      ref.randomNormal(ur, draw);
      assertClose(await wasm.read(uw), await ref.read(ur), `normal ${n}`, 2 ** -23);
    }
  }
  // A fill into a view writes only the view.
  const buf = wasm.upload(new Array(9).fill(5));
  wasm.randomUniform(wasm.view(buf, 2, 5), draws[1]);
  const got = await wasm.read(buf);
  assert.deepEqual([got[0], got[1], got[7], got[8]], [5, 5, 5, 5]);
});

Deno.test("the plain-SIMD build agrees with the relaxed one", async () => {
  const plain = openWasmBackend({ relaxedSimd: false });
  assert.equal(plain.relaxedSimd, false);
  const a = values(37 * 50), b = values(50 * 29), x = values(101, -5, 5);
  const mw = wasm.matmul(wasm.upload(a), wasm.upload(b), {
    batch: 1,
    m: 37,
    k: 50,
    n: 29,
    transA: false,
    transB: false,
  });
  const mp = plain.matmul(plain.upload(a), plain.upload(b), {
    batch: 1,
    m: 37,
    k: 50,
    n: 29,
    transA: false,
    transB: false,
  });
  assertClose(await plain.read(mp), await wasm.read(mw), "plain matmul");
  for (const op of ["silu", "gelu", "tanh", "exp"] as const) {
    const yw = wasm.unary(op, wasm.upload(x)), yp = plain.unary(op, plain.upload(x));
    assertClose(await plain.read(yp), await wasm.read(yw), `plain ${op}`);
  }
});

// ---- a whole training run -------------------------------------------------------------------

Deno.test("training the MLP on wasm gives the reference's losses and weights", async () => {
  const r = new Random(99), z = r.normals(2 * 300), v = new Float32Array(2 * 300);
  for (let i = 0; i < v.length; i++) v[i] = 0.5 * z[i] + (i % 2 ? -1 : 1);
  const data = { values: v, shape: [300, 2] };
  const run = async (backend: Backend, steps = 20) => {
    const losses: number[] = [];
    const model = await train({
      data,
      steps,
      batchSize: 16,
      network: { hidden: 32 },
      schedule: { kind: "cosine", T: 20 },
      progressEvery: 1,
      onProgress: (p) => losses.push(p.loss),
      backend,
    });
    const samples = (await sample(model, { count: 50, steps: 5, seed: 3 })).values;
    return { losses, raw: await model.weights("raw"), ema: await model.weights("ema"), samples };
  };
  const be = await createWasmBackend({ threads: 1 });
  const w = await run(be), rf = await run(createReferenceBackend());
  assert.equal(w.losses.length, 20);
  assertClose(w.losses, rf.losses, "losses");
  for (const [name, value] of rf.raw) assertClose(w.raw.get(name)!, value, `raw ${name}`);
  for (const [name, value] of rf.ema) assertClose(w.ema.get(name)!, value, `ema ${name}`);
  assertClose(w.samples, rf.samples, "samples", 1e-3);
  // Two threads with every kernel split give exactly the one-thread results.
  const threaded = await createWasmBackend({ threads: 2, parallelThreshold: 0 });
  try {
    const t = await run(threaded);
    assert.deepEqual(t.losses, w.losses);
    for (const [name, value] of w.raw) assert.deepEqual(t.raw.get(name), value, name);
    for (const [name, value] of w.ema) assert.deepEqual(t.ema.get(name), value, name);
    assert.deepEqual(t.samples, w.samples, "samples");
  } finally {
    threaded.dispose();
  }
  // Every step releases its intermediates: a longer run leaves no more memory in use than a
  // shorter one (each leaves its model and optimizer state).
  const heap = (be as WasmBackend).heap, u0 = heap.used;
  await run(be, 2);
  const u1 = heap.used;
  await run(be, 9);
  assert.equal(heap.used - u1, u1 - u0, "memory left in use grows with the number of steps");
  be.dispose();
});

Deno.test("threads: kernels run on the calling thread until the workers listen, same results", async () => {
  const be = openWasmBackend({ threads: 2, parallelThreshold: 0 });
  assert.equal(be.threads, 2);
  // Before the workers listen, kernels run on the calling thread.
  const a = values(40 * 50), b = values(50 * 30);
  const c0 = await be.read(
    be.matmul(be.upload(a), be.upload(b), {
      batch: 1,
      m: 40,
      k: 50,
      n: 30,
      transA: false,
      transB: false,
    }),
  );
  await be.ready();
  const c1 = await be.read(
    be.matmul(be.upload(a), be.upload(b), {
      batch: 1,
      m: 40,
      k: 50,
      n: 30,
      transA: false,
      transB: false,
    }),
  );
  assert.deepEqual(c1, c0);
  be.dispose();
  const one = openWasmBackend({ threads: 1 });
  assert.equal(one.threads, 1);
});

Deno.test("threads: workers that stop when idle and start again give the same results", async () => {
  const be = openWasmBackend({ threads: 2, parallelThreshold: 0, threadIdleMs: 5 });
  const a = values(70 * 90), b = values(90 * 50), x = values(5000);
  const [aw, bw, xw] = [be.upload(a), be.upload(b), be.upload(x)];
  const [as, bs, xs] = [single.upload(a), single.upload(b), single.upload(x)];
  const want = await single.read(
    single.matmul(as, bs, { batch: 1, m: 70, k: 90, n: 50, transA: false, transB: false }),
  );
  const wantSilu = await single.read(single.unary("silu", xs));
  try {
    // Stops and starts overlap: workers of an earlier start may outlive their terminate().
    for (let round = 0; round < 40; round++) {
      if (round % 4 === 0) await be.ready();
      for (let i = 0; i < 30; i++) {
        be.beginScope();
        assert.deepEqual(
          await be.read(
            be.matmul(aw, bw, { batch: 1, m: 70, k: 90, n: 50, transA: false, transB: false }),
          ),
          want,
        );
        assert.deepEqual(await be.read(be.unary("silu", xw)), wantSilu);
        be.endScope();
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 0));
      }
      await new Promise((r) => setTimeout(r, 3 + (round % 4) * 4));
    }
  } finally {
    be.dispose();
  }
});
