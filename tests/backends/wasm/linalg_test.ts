/**
 * The wasm backend's skinny GEMM kernels (few columns, n <= 4, or a short inner size, k <= 4): the
 * packed GEMM they replace (`skinnyGemm: false`) matches the reference at the same shapes, and two
 * threads with every kernel split give the same bits as one. The packed GEMM split by rows and by
 * columns (each thread reusing the operand it packed for an earlier chunk of the same product)
 * gives the reference's values and the same bits on one thread and two. (The skinny kernels
 * themselves are checked against the reference with every backend's matmul, in
 * tests/backends/conformance/linalg_test.ts; their choice in conv_policy_test.ts.)
 */

import assert from "node:assert/strict";
import type { Backend } from "../../../src/backend.ts";
import { createReferenceBackend } from "../../../src/backends/reference/mod.ts";
import { Random } from "../../../src/random.ts";
import { createWasmBackend, openWasmBackend } from "../../../wasm/backend.ts";
import { assertClose, uniformValues } from "../../helpers/compare.ts";

const rng = new Random(20261124);

Deno.test("wasm skinny matmuls (n <= 4, k <= 4): the packed GEMM agrees, same bits on 1 and 2 threads", async () => {
  const ref = createReferenceBackend();
  const single = openWasmBackend({ threads: 1 });
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
          const a = uniformValues(rng, 2 * m * k), b = uniformValues(rng, 2 * k * n);
          const spec = { batch: 2, m, k, n, transA: tA, transB: tB };
          const run = (be: Backend) => be.read(be.matmul(be.upload(a), be.upload(b), spec));
          const want = await run(ref);
          assertClose(await run(packed), want, `${what} (packed GEMM)`, 1e-4, Math.sqrt(k) / 4);
          assert.deepEqual(await run(threaded), await run(single), `${what}: 1 vs 2 threads`);
        }
      }
    }
  } finally {
    threaded.dispose();
  }
});

Deno.test("wasm outer-product skinny matmuls (n <= 4 with A' transposed, m <= 4 with B' rows contiguous): the packed GEMM's bits, on 1 and 2 threads", async () => {
  const single = openWasmBackend({ threads: 1 });
  const threaded = await createWasmBackend({ threads: 2, parallelThreshold: 0 });
  const packed = openWasmBackend({ threads: 1, skinnyGemm: false });
  try {
    // [m, k, n, transA, transB]: the MLP's first- and last-layer filter gradients (spiral demo:
    // 96 hidden, batch 256, 3 inputs, 2 outputs), rows or columns not a multiple of 8 or 4, inner
    // sizes past one K block of 384 (two and three blocks), one row, one column.
    const shapes: [number, number, number, boolean, boolean][] = [
      [96, 256, 3, true, false],
      [96, 256, 3, true, true],
      [2, 256, 96, true, false],
      [37, 13, 1, true, false],
      [21, 1000, 4, true, true],
      [3, 777, 9, false, false],
      [4, 385, 17, true, false],
      [1, 9, 30, false, false],
      [3, 3, 50, true, false],
      [1, 5, 1, true, false],
    ];
    for (const [m, k, n, tA, tB] of shapes) {
      const what = `matmul ${m}x${k}x${n} tA=${tA} tB=${tB}`;
      const a = uniformValues(rng, m * k), b = uniformValues(rng, k * n);
      const spec = { batch: 1, m, k, n, transA: tA, transB: tB };
      const run = (be: Backend) => be.read(be.matmul(be.upload(a), be.upload(b), spec));
      const want = await run(packed);
      assert.deepEqual(await run(single), want, `${what}: 1 thread`);
      assert.deepEqual(await run(threaded), want, `${what}: 2 threads, split`);
    }
  } finally {
    threaded.dispose();
  }
});

Deno.test("wasm packed GEMM split over threads by rows and by columns, each thread keeping what it packed: the reference's values, the bits of one thread", async () => {
  const ref = createReferenceBackend();
  const single = openWasmBackend({ threads: 1 });
  const threaded = await createWasmBackend({ threads: 2 });
  // More threads than cores (as on a machine of many): chunks land on threads in other orders.
  const four = await createWasmBackend({ threads: 4 });
  try {
    // [m, k, n]. Split by rows (n < m, or n = m with B' one panel): B' one panel (n <= 512, k <=
    // 384), kept by each thread for its later chunks (the spiral MLP's hidden layer, odd sizes; a
    // square C), and B' beyond one panel (k = 400, n = 600). Split by columns: A' one block (m <=
    // 96, k <= 384), kept likewise, and A' packed once for all threads (m = 97, k = 385).
    const shapes: [number, number, number][] = [
      [257, 96, 95],
      [1031, 97, 94],
      [1100, 400, 37],
      [2001, 21, 600],
      [130, 64, 130],
      [45, 77, 143],
      [96, 384, 200],
      [97, 50, 301],
      [40, 385, 101],
    ];
    for (const [m, k, n] of shapes) {
      for (const [tA, tB] of [[false, false], [true, true]]) {
        const what = `matmul ${m}x${k}x${n} tA=${tA} tB=${tB}`;
        const a = uniformValues(rng, m * k), b = uniformValues(rng, k * n);
        const spec = { batch: 1, m, k, n, transA: tA, transB: tB };
        const run = (be: Backend) => be.read(be.matmul(be.upload(a), be.upload(b), spec));
        const got = await run(threaded);
        assertClose(got, await run(ref), what, 1e-4, Math.sqrt(k) / 4);
        const one = await run(single);
        assert.deepEqual(got, one, `${what}: 1 vs 2 threads`);
        assert.deepEqual(await run(four), one, `${what}: 1 vs 4 threads`);
      }
    }
  } finally {
    threaded.dispose();
    four.dispose();
  }
});

Deno.test("wasm batches of small products (attention's) split whole products over threads: the reference's values, the bits of one product at a time", async () => {
  const ref = createReferenceBackend();
  // Threshold 0: every product on its own, split (one thread here); the default threshold: each
  // product whole on one thread, the batch split between two.
  const single = openWasmBackend({ threads: 1, parallelThreshold: 0 });
  const threaded = await createWasmBackend({ threads: 2 });
  try {
    // [batch, m, k, n]: attention's score and value products at 7x7 (4 heads of 16), odd sizes.
    const shapes: [number, number, number, number][] = [[96, 49, 16, 49], [96, 49, 49, 16], [
      37,
      13,
      11,
      9,
    ]];
    for (const [batch, m, k, n] of shapes) {
      for (const [batchA, batchB] of [[true, true], [false, true], [true, false]]) {
        for (const tB of [false, true]) {
          const what = `batch ${batch} of ${m}x${k}x${n} bA=${batchA} bB=${batchB} tB=${tB}`;
          const a = uniformValues(rng, (batchA ? batch : 1) * m * k);
          const b = uniformValues(rng, (batchB ? batch : 1) * k * n);
          const spec = { batch, m, k, n, transB: tB, batchA, batchB };
          const run = (be: Backend) => be.read(be.matmul(be.upload(a), be.upload(b), spec));
          const got = await run(threaded);
          assertClose(got, await run(ref), what, 1e-4, Math.sqrt(k) / 4);
          assert.deepEqual(got, await run(single), `${what}: 1 vs 2 threads`);
        }
      }
    }
  } finally {
    threaded.dispose();
  }
});

Deno.test("wasm ReLU is x > 0 ? x : +0 for NaN and -0 too: the unary kernel, the GEMM's epilogue, the skinny kernel's", async () => {
  const be = openWasmBackend({ threads: 1 });
  // Each value v of `xs` must come out as relu(v) = v > 0 ? v : +0, bit for bit (Object.is tells
  // -0 from +0).
  const xs = [NaN, -0, 0, -1, 2.5, Infinity, -Infinity, 1e-40, -1e-40];
  const want = xs.map((v) => (v > 0 ? v : 0));
  const check = (got: Float32Array, what: string) => {
    const exact = want.map((v) => Math.fround(v));
    got.forEach((g, i) => assert.ok(Object.is(g, exact[i]), `${what}: relu(${xs[i]}) = ${g}`));
  };
  check(await be.read(be.unary("relu", be.upload(Float32Array.from(xs)))), "unary");
  // y[i, j] = 1 * x[i] (+ zeros) + bias: through the packed GEMM (k = 8, n = 8: one 4x8 tile and
  // a partial one) and the skinny one (k = 1), on column 0 of each row; a -0 input with a -0 bias
  // sums to -0.
  for (const k of [8, 1]) {
    const m = xs.length, n = 8;
    const x = new Float32Array(m * k), w = new Float32Array(n * k), bias = new Float32Array(n);
    xs.forEach((v, i) => (x[i * k] = v));
    w[0] = 1;
    bias[0] = -0;
    const y = await be.read(
      be.linear(be.upload(x), be.upload(w), be.upload(bias), { m, k, n, activation: "relu" }),
    );
    check(Float32Array.from(xs, (_, i) => y[i * n]), `linear with k = ${k}`);
  }
  be.dispose();
});
