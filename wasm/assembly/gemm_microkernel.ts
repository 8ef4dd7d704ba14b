// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the GEMM engine's register-blocked 6x8 micro-kernel (12 f32x4 accumulators;
// per k two v128 loads of packed B and six splats of packed A), which computes every full tile of
// gemm (gemm.ts) and of the Winograd products (winograd_common.ts). Hand-unrolled: one function.

import { madd } from "./simd.ts";

/**
 * The 6x8 micro-kernel: C[6 x 8] (row stride ldc bytes) (+)= packed A sliver x B sliver, whose
 * k-th row of eight floats is at pb + k * bstep (32 for a packed sliver).
 */
export function micro(
  kc: i32,
  pa: usize,
  pb: usize,
  c: usize,
  ldc: usize,
  acc: bool,
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
  let c40 = f32x4.splat(0);
  let c41 = f32x4.splat(0);
  let c50 = f32x4.splat(0);
  let c51 = f32x4.splat(0);
  let a = pa;
  let b = pb;
  // Two steps of k at a time: A's twelve values come in three vector loads and are splat by
  // shuffles, so a step costs 3.5 loads (each with Deno's bounds check) instead of 8 (measured on
  // L1-resident panels, 1 core: 39.4-39.9 -> 40.5-42.0 GFLOP/s when the machine is quiet, 21 -> 25
  // when a neighbour shares the core). The multiply-adds into each accumulator keep their order.
  let k = 0;
  for (; k + 1 < kc; k += 2) {
    const va = v128.load(a, 0);
    const vb = v128.load(a, 16);
    const vc = v128.load(a, 32);
    let b0 = v128.load(b, 0);
    let b1 = v128.load(b, 16);
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
    s = i32x4.shuffle(vb, vb, 0, 0, 0, 0);
    c40 = madd(s, b0, c40);
    c41 = madd(s, b1, c41);
    s = i32x4.shuffle(vb, vb, 1, 1, 1, 1);
    c50 = madd(s, b0, c50);
    c51 = madd(s, b1, c51);
    b += bstep;
    b0 = v128.load(b, 0);
    b1 = v128.load(b, 16);
    s = i32x4.shuffle(vb, vb, 2, 2, 2, 2);
    c00 = madd(s, b0, c00);
    c01 = madd(s, b1, c01);
    s = i32x4.shuffle(vb, vb, 3, 3, 3, 3);
    c10 = madd(s, b0, c10);
    c11 = madd(s, b1, c11);
    s = i32x4.shuffle(vc, vc, 0, 0, 0, 0);
    c20 = madd(s, b0, c20);
    c21 = madd(s, b1, c21);
    s = i32x4.shuffle(vc, vc, 1, 1, 1, 1);
    c30 = madd(s, b0, c30);
    c31 = madd(s, b1, c31);
    s = i32x4.shuffle(vc, vc, 2, 2, 2, 2);
    c40 = madd(s, b0, c40);
    c41 = madd(s, b1, c41);
    s = i32x4.shuffle(vc, vc, 3, 3, 3, 3);
    c50 = madd(s, b0, c50);
    c51 = madd(s, b1, c51);
    a += 48;
    b += bstep;
  }
  if (k < kc) {
    // The last, odd step.
    const b0 = v128.load(b, 0);
    const b1 = v128.load(b, 16);
    const a0 = v128.load32_splat(a, 0);
    c00 = madd(a0, b0, c00);
    c01 = madd(a0, b1, c01);
    const a1 = v128.load32_splat(a, 4);
    c10 = madd(a1, b0, c10);
    c11 = madd(a1, b1, c11);
    const a2 = v128.load32_splat(a, 8);
    c20 = madd(a2, b0, c20);
    c21 = madd(a2, b1, c21);
    const a3 = v128.load32_splat(a, 12);
    c30 = madd(a3, b0, c30);
    c31 = madd(a3, b1, c31);
    const a4 = v128.load32_splat(a, 16);
    c40 = madd(a4, b0, c40);
    c41 = madd(a4, b1, c41);
    const a5 = v128.load32_splat(a, 20);
    c50 = madd(a5, b0, c50);
    c51 = madd(a5, b1, c51);
  }
  if (acc) {
    v128.store(c, f32x4.add(v128.load(c), c00));
    v128.store(c, f32x4.add(v128.load(c, 16), c01), 16);
    c += ldc;
    v128.store(c, f32x4.add(v128.load(c), c10));
    v128.store(c, f32x4.add(v128.load(c, 16), c11), 16);
    c += ldc;
    v128.store(c, f32x4.add(v128.load(c), c20));
    v128.store(c, f32x4.add(v128.load(c, 16), c21), 16);
    c += ldc;
    v128.store(c, f32x4.add(v128.load(c), c30));
    v128.store(c, f32x4.add(v128.load(c, 16), c31), 16);
    c += ldc;
    v128.store(c, f32x4.add(v128.load(c), c40));
    v128.store(c, f32x4.add(v128.load(c, 16), c41), 16);
    c += ldc;
    v128.store(c, f32x4.add(v128.load(c), c50));
    v128.store(c, f32x4.add(v128.load(c, 16), c51), 16);
  } else {
    v128.store(c, c00);
    v128.store(c, c01, 16);
    c += ldc;
    v128.store(c, c10);
    v128.store(c, c11, 16);
    c += ldc;
    v128.store(c, c20);
    v128.store(c, c21, 16);
    c += ldc;
    v128.store(c, c30);
    v128.store(c, c31, 16);
    c += ldc;
    v128.store(c, c40);
    v128.store(c, c41, 16);
    c += ldc;
    v128.store(c, c50);
    v128.store(c, c51, 16);
  }
}
