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
 * The best timings of the two functions, in ms, run in turn (which goes first alternating) over at
 * least `runs` timed runs each and until `budgetMs` have passed (at most 40 each): the machine's
 * speed drifts in phases of seconds, and a fixed few runs of a long kernel can all land in a slow
 * one; taken in turn, a phase falls on both alike, so their ratio (two threads against one) holds
 * where the figures themselves do not. Each timed run follows an untimed one of the same function,
 * so that it finds its data in cache and its worker threads awake, as a run after a run does.
 */
function bestOfPair(fns: readonly [() => void, () => void], runs: number, budgetMs: number) {
  const b: [number, number] = [Infinity, Infinity];
  const start = performance.now();
  for (let r = 0; r < 40 && (r < runs || performance.now() - start < budgetMs); r++) {
    for (const i of r % 2 ? [1, 0] : [0, 1]) {
      fns[i]();
      const t0 = performance.now();
      fns[i]();
      b[i] = Math.min(b[i], performance.now() - t0);
    }
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
 * GFLOP/s of product `c` through `matmul` (its allocation included) on one thread and on all: the
 * best of at least six runs each, taken in turn, and more until twice ROW_BUDGET_MS has passed (a
 * few runs with `quick`).
 */
export function gemmGflops(
  one: WasmBackend,
  all: WasmBackend,
  c: GemmCase,
  quick: boolean,
): [number, number] {
  const r = new Random(1);
  const av = r.uniforms(c.m * c.k), bv = r.uniforms(c.k * c.n);
  const flops = 2 * c.m * c.k * c.n;
  const reps = Math.max(1, Math.min(2000, Math.round((quick ? 2e7 : 1e8) / flops)));
  const spec = { batch: 1, m: c.m, k: c.k, n: c.n, transA: c.tA, transB: c.tB };
  const run = (be: WasmBackend) => {
    const a = be.upload(av), b = be.upload(bv);
    const fn = () => {
      for (let i = 0; i < reps; i++) {
        be.beginScope();
        be.matmul(a, b, spec);
        be.endScope();
      }
    };
    return { fn, free: () => [a, b].forEach((s) => be.free(s)) };
  };
  const runs = [run(one), run(all)] as const;
  const ms = bestOfPair([runs[0].fn, runs[1].fn], quick ? 2 : 6, quick ? 0 : 2 * ROW_BUDGET_MS);
  runs.forEach((x) => x.free());
  return [flops / (ms[0] / reps / 1e3) / 1e9, flops / (ms[1] / reps / 1e3) / 1e9];
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
 * GFLOP/s of the forward, data-gradient and filter-gradient kernels of one convolution on one
 * thread and on all, each pass the best of at least six runs a backend, taken in turn, and more
 * until twice ROW_BUDGET_MS has passed (one run with `quick`).
 */
export function convGflops(
  one: WasmBackend,
  all: WasmBackend,
  g: Conv2dGeometry,
  quick: boolean,
): [[number, number, number], [number, number, number]] {
  const r = new Random(2);
  const xv = r.uniforms(g.n * g.c * g.h * g.w);
  const wv = r.uniforms(g.o * g.c * g.kh * g.kw);
  const dv = r.uniforms(g.n * g.o * g.oh * g.ow);
  const flops = 2 * g.n * g.o * g.oh * g.ow * g.c * g.kh * g.kw;
  const passes = [one, all].map((be) => {
    const x = be.upload(xv), w = be.upload(wv), dy = be.upload(dv);
    const scoped = (fn: () => void) => () => {
      be.beginScope();
      fn();
      be.endScope();
    };
    return {
      fns: [
        scoped(() => be.conv2d(x, w, null, g)),
        scoped(() => be.conv2dBackwardData(dy, w, g)),
        scoped(() => be.conv2dBackwardFilter(x, dy, g)),
      ],
      free: () => [x, w, dy].forEach((s) => be.free(s)),
    };
  });
  const gf = (ms: number) => flops / (ms / 1e3) / 1e9;
  const out: [[number, number, number], [number, number, number]] = [[0, 0, 0], [0, 0, 0]];
  for (let i = 0; i < 3; i++) {
    const [ms1, msN] = bestOfPair(
      [passes[0].fns[i], passes[1].fns[i]],
      quick ? 1 : 6,
      quick ? 0 : 2 * ROW_BUDGET_MS,
    );
    out[0][i] = gf(ms1);
    out[1][i] = gf(msN);
  }
  passes.forEach((p) => p.free());
  return out;
}
