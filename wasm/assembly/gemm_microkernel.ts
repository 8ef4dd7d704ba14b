// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the register-blocked 4x8 micro-kernel (8 f32x4 accumulators; per k one v128
// load of packed A, splat by shuffles, and two of B), which computes every full tile of the GEMM
// engine (gemm.ts: matrix products and the im2col convolutions) and of the Winograd products
// (winograd_common.ts). Hand-unrolled.
//
// Why 4x8 rather than the usual 6x8: Deno runs WebAssembly without V8's trap handler, so every
// load carries an explicit bounds check (a compare, a subtraction and a branch), and V8 gives
// WebAssembly only 15 of the 16 xmm registers. 6x8 needs its A values as six loads a step (the
// checks then cost more than the multiply-adds: 41-43 GFLOP/s of a 58.7 ceiling on one core,
// L1-resident panels) or as shuffles of vectors kept live (registers spill: 37-41). 4x8 loads A
// once a step and splats it by four shuffles with 12 registers live: 48-53 GFLOP/s (2026-12-07,
// 2-core AMD EPYC, AVX-512; without bounds checks, V8's --no-wasm-bounds-checks, the 6x8
// load-splat form reads 57.6). Unrolling the k loop by two or four made it slower (28-36: the
// loads hoisted, registers spilled).

import { madd, vrelu } from "./simd.ts";

/**
 * The 4x8 micro-kernel: C[4 x 8] (row stride ldc bytes) (+)= packed A sliver (four floats a k) x
 * B sliver (eight floats a k, `bstep` bytes apart: 32 for a packed sliver), then the epilogue:
 * with `biasMode` 1 the four floats at `bias` are added one a row, with 2 the eight floats at
 * `bias` one a column; with `act` 1 ReLU (x > 0 ? x : 0, as the unary kernel). The epilogue runs
 * on the accumulators, before the store.
 */
export function micro4x8(
  kc: i32,
  pa: usize,
  pb: usize,
  c: usize,
  ldc: usize,
  acc: bool,
  bias: usize,
  biasMode: i32,
  act: i32,
  bstep: usize = 32,
): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  let a = pa;
  let b = pb;
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(b, 0);
    const b1 = v128.load(b, 16);
    const va = v128.load(a, 0);
    let s = i32x4.shuffle(va, va, 0, 0, 0, 0);
    c00 = madd(s, b0, c00);
    c01 = madd(s, b1, c01);
    s = i32x4.shuffle(va, va, 1, 1, 1, 1);
    c10 = madd(s, b0, c10);
    c11 = madd(s, b1, c11);
    s = i32x4.shuffle(va, va, 2, 2, 2, 2);
    c20 = madd(s, b0, c20);
    c21 = madd(s, b1, c21);
    s = i32x4.shuffle(va, va, 3, 3, 3, 3);
    c30 = madd(s, b0, c30);
    c31 = madd(s, b1, c31);
    a += 16;
    b += bstep;
  }
  const c1 = c + ldc;
  const c2 = c1 + ldc;
  const c3 = c2 + ldc;
  if (acc) {
    c00 = f32x4.add(v128.load(c), c00);
    c01 = f32x4.add(v128.load(c, 16), c01);
    c10 = f32x4.add(v128.load(c1), c10);
    c11 = f32x4.add(v128.load(c1, 16), c11);
    c20 = f32x4.add(v128.load(c2), c20);
    c21 = f32x4.add(v128.load(c2, 16), c21);
    c30 = f32x4.add(v128.load(c3), c30);
    c31 = f32x4.add(v128.load(c3, 16), c31);
  }
  if (biasMode == 1) {
    let s = v128.load32_splat(bias);
    c00 = f32x4.add(c00, s);
    c01 = f32x4.add(c01, s);
    s = v128.load32_splat(bias, 4);
    c10 = f32x4.add(c10, s);
    c11 = f32x4.add(c11, s);
    s = v128.load32_splat(bias, 8);
    c20 = f32x4.add(c20, s);
    c21 = f32x4.add(c21, s);
    s = v128.load32_splat(bias, 12);
    c30 = f32x4.add(c30, s);
    c31 = f32x4.add(c31, s);
  } else if (biasMode == 2) {
    const v0 = v128.load(bias);
    const v1 = v128.load(bias, 16);
    c00 = f32x4.add(c00, v0);
    c01 = f32x4.add(c01, v1);
    c10 = f32x4.add(c10, v0);
    c11 = f32x4.add(c11, v1);
    c20 = f32x4.add(c20, v0);
    c21 = f32x4.add(c21, v1);
    c30 = f32x4.add(c30, v0);
    c31 = f32x4.add(c31, v1);
  }
  if (act == 1) {
    c00 = vrelu(c00);
    c01 = vrelu(c01);
    c10 = vrelu(c10);
    c11 = vrelu(c11);
    c20 = vrelu(c20);
    c21 = vrelu(c21);
    c30 = vrelu(c30);
    c31 = vrelu(c31);
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c1, c10);
  v128.store(c1, c11, 16);
  v128.store(c2, c20);
  v128.store(c2, c21, 16);
  v128.store(c3, c30);
  v128.store(c3, c31, 16);
}
