/**
 * Conformance of `matmul` on every backend: every transpose of either operand, batched and shared
 * operands, sizes that are not multiples of 4 or of any GEMM tile, batch 1, products that pick each
 * of WebGPU's GEMM tiles, skinny products (few columns or a short inner size), operands that are
 * views at unaligned offsets, and an empty inner size (zeros).
 */

import assert from "node:assert/strict";
import { linearByParts, type MatmulSpec } from "../../../src/backend.ts";
import { conformance } from "./harness.ts";

/** Which operands are batched: both, only B (A shared), only A (B shared). */
const BATCH_FLAGS = [[true, true], [false, true], [true, false]] as const;

/** A row: [batch, m, k, n], and the batch flags and transposes it runs with. */
interface Row {
  shape: [number, number, number, number];
  flags: readonly (readonly [boolean, boolean])[];
  transposes: readonly (readonly [boolean, boolean])[];
}

const ALL_TRANSPOSES = [[false, false], [true, false], [false, true], [true, true]] as const;

/** A row of odd sizes: with `shared`, also with A shared and with B shared. */
function odd(batch: number, m: number, k: number, n: number, shared: boolean): Row {
  return {
    shape: [batch, m, k, n],
    flags: shared ? BATCH_FLAGS : [BATCH_FLAGS[0]],
    transposes: ALL_TRANSPOSES,
  };
}

/** Odd sizes and batches, batch 1 included. */
const GENERAL: Row[] = [
  odd(1, 1, 1, 1, false),
  odd(1, 5, 3, 7, false),
  odd(1, 6, 8, 8, false),
  odd(1, 13, 17, 11, false),
  odd(1, 64, 3, 256, false),
  odd(1, 64, 256, 2, false),
  odd(1, 67, 260, 29, false),
  odd(1, 7, 300, 530, false),
  odd(1, 100, 270, 130, false),
  odd(1, 1, 5, 1, true),
  odd(3, 9, 10, 12, true),
  odd(2, 100, 37, 19, true),
  odd(3, 37, 19, 45, true),
  odd(2, 200, 17, 200, false), // 64 x 64 tiles
  odd(4, 5, 70, 3, true),
];

/** Products that pick each of WebGPU's GEMM tiles: XL, wide, large, medium, small. */
const TILES: Row[] = [
  [1, 64, 19, 16384],
  [1, 30, 11, 16384],
  [1, 64, 7, 8192],
  [1, 30, 9, 8192],
  [1, 70, 5, 100],
].map(([batch, m, k, n]) => ({
  shape: [batch, m, k, n] as [number, number, number, number],
  flags: [BATCH_FLAGS[0]],
  transposes: [[false, false], [true, true]] as const,
}));

/**
 * Skinny products, batch 2: few columns (the MLP's output layer), a short inner size (its input
 * layer), row counts around blocks of 4, and shapes at the edges of wasm's skinny kernels.
 */
const SKINNY: Row[] = [
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
].map(([m, k, n]) => ({
  shape: [2, m, k, n] as [number, number, number, number],
  flags: [BATCH_FLAGS[0]],
  transposes: ALL_TRANSPOSES,
}));

conformance(
  "linalg: matmul, every transpose, batched and shared operands, odd sizes",
  async (c) => {
    const { be, ref, data } = c;
    for (
      const { shape: [batch, m, k, n], flags, transposes } of [...GENERAL, ...TILES, ...SKINNY]
    ) {
      for (const [transA, transB] of transposes) {
        for (const [batchA, batchB] of flags) {
          const spec: MatmulSpec = { batch, m, k, n, transA, transB, batchA, batchB };
          const [ab, ar] = c.pair(data.normal((batchA ? batch : 1) * m * k));
          const [bb, br] = c.pair(data.normal((batchB ? batch : 1) * k * n), 5);
          await c.same(
            be.matmul(ab, bb, spec),
            ref.matmul(ar, br, spec),
            `matmul ${batch}x${m}x${k}x${n} tA=${transA} tB=${transB} bA=${batchA} bB=${batchB}`,
          );
        }
      }
    }
  },
);

conformance("linalg: matmul of views at unaligned offsets; k = 0 gives zeros", async (c) => {
  const { be, ref, data } = c;
  const a = data.uniform(5 * 7 + 1), b = data.uniform(7 * 9 + 3);
  const spec = { batch: 1, m: 5, k: 7, n: 9, transA: false, transB: false };
  const [ab, bb] = [c.upload(a), c.upload(b)], [ar, br] = [ref.upload(a), ref.upload(b)];
  await c.same(
    be.matmul(be.view(ab, 1, 35), be.view(bb, 3, 63), spec),
    ref.matmul(ref.view(ar, 1, 35), ref.view(br, 3, 63), spec),
    "matmul of views",
  );
  const z = be.matmul(be.alloc(0), be.alloc(0), { ...spec, m: 3, k: 0, n: 4 });
  assert.deepEqual([...await c.read(z)], new Array(12).fill(0));
});

/** Linear layers [m, k, n]: odd sizes, the MLP's, the skinny kernels' (by parts) and partial tiles. */
const LINEAR_SHAPES = [
  [1, 1, 1],
  [5, 3, 7],
  [13, 17, 11],
  [67, 260, 29],
  [100, 256, 256],
  [7, 300, 530],
  [64, 3, 256],
  [64, 256, 2],
  [250, 33, 9],
] as const;

conformance(
  "linalg: linear with and without its bias and ReLU, odd sizes, views",
  async (c) => {
    const { be, ref, data } = c;
    for (const [m, k, n] of LINEAR_SHAPES) {
      for (const withBias of [true, false]) {
        for (const activation of ["none", "relu"] as const) {
          const [xb, xr] = c.pair(data.normal(m * k));
          const [wb, wr] = c.pair(data.normal(n * k), 3);
          const [bb, br] = withBias ? c.pair(data.normal(n), 1) : [null, null];
          const spec = { m, k, n, activation };
          await c.same(
            be.linear(xb, wb, bb, spec),
            ref.linear(xr, wr, br, spec),
            `linear ${m}x${k} -> ${n} bias=${withBias} ${activation}`,
          );
        }
      }
    }
  },
);

conformance(
  "linalg: linear equals its three kernels (product, bias, ReLU) bit for bit",
  async (c) => {
    const { be, data } = c;
    for (const [m, k, n] of LINEAR_SHAPES) {
      const x = c.upload(data.normal(m * k)), w = c.upload(data.normal(n * k));
      const b = c.upload(data.normal(n));
      const spec = { m, k, n, activation: "relu" } as const;
      const fused = c.read(be.linear(x, w, b, spec));
      const parts = c.read(linearByParts(be, x, w, b, spec));
      const bits = async (
        v: Promise<Float32Array | Float64Array>,
      ) => [...new Uint32Array(Float32Array.from(await v).buffer)];
      assert.deepEqual(await bits(fused), await bits(parts), `linear ${m}x${k} -> ${n}`);
    }
  },
);
