/**
 * The kernel measurements of `deno task bench` (scripts/bench.ts): timing helpers, the WebAssembly
 * SIMD multiply-add ceiling, and the GFLOP/s of the `wasm` backend's matrix products and
 * convolutions at the models' shapes.
 *
 * @module
 */

import { Random } from "../data.ts";
import type { Conv2dGeometry } from "../engine.ts";
import { instantiate, kernelModule, type WasmBackend } from "../wasm/mod.ts";

/** Best of `reps` timings of `fn` (after one warm-up), in ms. */
function best(fn: () => void, reps = 5): number {
  fn();
  let b = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    b = Math.min(b, performance.now() - t0);
  }
  return b;
}

/**
 * How long (ms) a kernel row goes on running after its first six runs: the machine's slow phases
 * last seconds (the four runs of a 100 ms row within 0.4 s once all fell in one, and the row read
 * a third of its speed).
 */
export const ROW_BUDGET_MS = 1000;

/**
 * The best timing of `fn` (after one warm-up), in ms, over at least `runs` runs and until
 * `budgetMs` have passed (at most 40 runs): the machine's speed drifts in phases of seconds, and a
 * fixed few runs of a long kernel can all land in a slow one.
 */
function bestWithin(fn: () => void, runs: number, budgetMs: number): number {
  fn();
  let b = Infinity;
  const start = performance.now();
  for (let r = 0; r < 40 && (r < runs || performance.now() - start < budgetMs); r++) {
    const t0 = performance.now();
    fn();
    b = Math.min(b, performance.now() - t0);
  }
  return b;
}

/** `x` with `digits` decimals, right-aligned in 8 characters. */
export function fmt(x: number, digits = 1): string {
  return x.toFixed(digits).padStart(8);
}

/**
 * This machine's WebAssembly SIMD multiply-add ceiling on one core, in GFLOP/s: a loop of 12
 * independent `f32x4` multiply-adds (relaxed or plain SIMD), the best of several runs (fewer and
 * shorter with `quick`).
 */
export function ceiling(relaxed: boolean, quick: boolean): number {
  const { module } = kernelModule(false, relaxed);
  const memory = new WebAssembly.Memory({ initial: 2 });
  const k = instantiate(module, memory);
  const p = k.heapBase() + 64 & ~63;
  const f = new Float32Array(memory.buffer, p, 64);
  for (let i = 0; i < 64; i++) f[i] = 0.5 + i * 1e-4;
  f.fill(0.999999, 0, 4);
  f.fill(1e-6, 4, 8);
  const n = quick ? 2e6 : 1e7;
  const ms = best(() => k.fmaCeiling(n, p), quick ? 2 : 5);
  // 12 accumulators x 4 lanes x 2 flops per multiply-add.
  return (n * 12 * 4 * 2) / (ms / 1e3) / 1e9;
}

/** A matrix product of the bench: C[m x n] = A'[m x k] B'[k x n], A' = Aᵀ with tA, B' = Bᵀ with tB. */
export interface GemmCase {
  /** The row's label. */
  label: string;
  /** Rows of C. */
  m: number;
  /** The inner size. */
  k: number;
  /** Columns of C. */
  n: number;
  /** A is stored transposed. */
  tA: boolean;
  /** B is stored transposed. */
  tB: boolean;
}

/** The spiral MLP's products (width 256) at `batch` rows: forward, both gradients, both ends. */
export function gemmCases(batch: number, label: string): GemmCase[] {
  const h = 256;
  return [
    { label: `${label} fwd ${batch}x3 -> ${h}`, m: batch, k: 3, n: h, tA: false, tB: true },
    { label: `${label} fwd ${batch}x${h} -> ${h}`, m: batch, k: h, n: h, tA: false, tB: true },
    { label: `${label} dX  ${batch}x${h} <- ${h}`, m: batch, k: h, n: h, tA: false, tB: false },
    { label: `${label} dW  ${h}x${h} over ${batch}`, m: h, k: batch, n: h, tA: true, tB: false },
    { label: `${label} fwd ${batch}x${h} -> 2`, m: batch, k: h, n: 2, tA: false, tB: true },
  ];
}

/**
 * GFLOP/s of product `c` through `be.matmul` (its allocation included): the best of at least six
 * runs and more until ROW_BUDGET_MS has passed (a few runs with `quick`).
 */
export function gemmGflops(be: WasmBackend, c: GemmCase, quick: boolean): number {
  const r = new Random(1);
  const a = be.upload(r.uniforms(c.m * c.k)), b = be.upload(r.uniforms(c.k * c.n));
  const flops = 2 * c.m * c.k * c.n;
  const reps = Math.max(1, Math.min(2000, Math.round((quick ? 2e7 : 1e8) / flops)));
  const ms = bestWithin(
    () => {
      for (let i = 0; i < reps; i++) {
        be.beginScope();
        be.matmul(a, b, { batch: 1, m: c.m, k: c.k, n: c.n, transA: c.tA, transB: c.tB });
        be.endScope();
      }
    },
    quick ? 2 : 6,
    quick ? 0 : ROW_BUDGET_MS,
  ) / reps;
  be.free(a);
  be.free(b);
  return flops / (ms / 1e3) / 1e9;
}

/** The UNet's convolution shapes (batch 128): [label, channels in, out, side, kernel, stride]. */
export const CONV_SHAPES: [string, number, number, number, number, number][] = [
  ["3x3 32->32 @28", 32, 32, 28, 3, 1],
  ["3x3 64->64 @28", 64, 64, 28, 3, 1],
  ["3x3 96->32 @28", 96, 32, 28, 3, 1],
  ["3x3 64->64 @14", 64, 64, 14, 3, 1],
  ["3x3 64->64 @7", 64, 64, 7, 3, 1],
  ["3x3 s2 32->32 @28", 32, 32, 28, 3, 2],
  ["1x1 96->32 @28", 96, 32, 28, 1, 1],
];

/**
 * GFLOP/s of the forward, data-gradient and filter-gradient kernels of one convolution, each the
 * best of at least six runs and more until ROW_BUDGET_MS has passed (one run with `quick`).
 */
export function convGflops(
  be: WasmBackend,
  g: Conv2dGeometry,
  quick: boolean,
): [number, number, number] {
  const r = new Random(2);
  const x = be.upload(r.uniforms(g.n * g.c * g.h * g.w));
  const w = be.upload(r.uniforms(g.o * g.c * g.kh * g.kw));
  const dy = be.upload(r.uniforms(g.n * g.o * g.oh * g.ow));
  const flops = 2 * g.n * g.o * g.oh * g.ow * g.c * g.kh * g.kw;
  const time = (fn: () => void) =>
    bestWithin(
      () => {
        be.beginScope();
        fn();
        be.endScope();
      },
      quick ? 1 : 6,
      quick ? 0 : ROW_BUDGET_MS,
    );
  const gf = (ms: number) => flops / (ms / 1e3) / 1e9;
  const out: [number, number, number] = [
    gf(time(() => be.conv2d(x, w, null, g))),
    gf(time(() => be.conv2dBackwardData(dy, w, g))),
    gf(time(() => be.conv2dBackwardFilter(x, dy, g))),
  ];
  for (const s of [x, w, dy]) be.free(s);
  return out;
}
