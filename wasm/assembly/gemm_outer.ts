// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: skinny products summed as outer products, p by p, for the shapes the packed GEMM
// (gemm.ts) would run in mostly empty tiles and the dot-product kernels (gemm_skinny.ts) cannot
// take: gemmOuterN for few columns (n <= 4) with A' transposed (its columns contiguous: the filter
// gradient x^T dy of a layer with few inputs), gemmOuterM for few rows (m <= 4) with the rows of B'
// contiguous (the filter gradient of a layer with few outputs). Each entry is the packed GEMM's
// sum: over each K block of kcBlock(k), multiply-adds in order from zero, each block then added to
// the blocks before it. So the bits are the packed GEMM's, whichever rows or columns a thread gets.

import { kcBlock } from "./gemm_blocking";
import { loadPrefix, madd } from "./simd.ts";

/** Lanes [0, count) of v into the floats at p, `stride` bytes apart; added to them unless `first`. */
@inline
function storeLanes(p: usize, stride: usize, v: v128, count: i32, first: bool): void {
  for (let r = 0; r < count; r++) {
    const o = p + <usize>r * stride;
    let x: f32 = 0;
    if (r == 0) x = f32x4.extract_lane(v, 0);
    else if (r == 1) x = f32x4.extract_lane(v, 1);
    else if (r == 2) x = f32x4.extract_lane(v, 2);
    else x = f32x4.extract_lane(v, 3);
    store<f32>(o, first ? x : load<f32>(o) + x);
  }
}

/**
 * The shared loop of both kernels, for one block of kc steps: tile[j][v] (v < 2, j < q) = the sum
 * over p < kc, by multiply-adds in order from zero, of X[v](p) times s_j(p), where X[v](p) holds
 * the `count` (1 to 8) floats at vp + p vstep + 16 v (zeros past count) and s_j(p) is the float at
 * sp + p sstep + j sstride, splat. `tile` takes q x 2 vectors.
 */
@inline
function outerBlock(
  vp: usize,
  vstep: usize,
  count: i32,
  sp: usize,
  sstride: usize,
  sstep: usize,
  q: i32,
  kc: i32,
  tile: usize,
): void {
  let s00 = f32x4.splat(0);
  let s01 = f32x4.splat(0);
  let s10 = f32x4.splat(0);
  let s11 = f32x4.splat(0);
  let s20 = f32x4.splat(0);
  let s21 = f32x4.splat(0);
  let s30 = f32x4.splat(0);
  let s31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    let x0: v128;
    let x1: v128;
    if (count == 8) {
      x0 = v128.load(vp);
      x1 = v128.load(vp, 16);
    } else {
      x0 = loadPrefix(vp, count);
      x1 = loadPrefix(vp + 16, count - 4);
    }
    const w0 = v128.load32_splat(sp);
    s00 = madd(x0, w0, s00);
    s01 = madd(x1, w0, s01);
    if (q > 1) {
      const w1 = v128.load32_splat(sp + sstride);
      s10 = madd(x0, w1, s10);
      s11 = madd(x1, w1, s11);
    }
    if (q > 2) {
      const w2 = v128.load32_splat(sp + 2 * sstride);
      s20 = madd(x0, w2, s20);
      s21 = madd(x1, w2, s21);
    }
    if (q > 3) {
      const w3 = v128.load32_splat(sp + 3 * sstride);
      s30 = madd(x0, w3, s30);
      s31 = madd(x1, w3, s31);
    }
    vp += vstep;
    sp += sstep;
  }
  v128.store(tile, s00);
  v128.store(tile, s01, 16);
  if (q > 1) {
    v128.store(tile, s10, 32);
    v128.store(tile, s11, 48);
  }
  if (q > 2) {
    v128.store(tile, s20, 64);
    v128.store(tile, s21, 80);
  }
  if (q > 3) {
    v128.store(tile, s30, 96);
    v128.store(tile, s31, 112);
  }
}

/**
 * Few columns: C[i, j] = sum over p of A'(i, p) B'(p, j) for rows i in [begin, end) and every
 * column j < n (n <= 4), with A'(i, p) = a[i + p acs] (its columns contiguous), B'(p, j) = b[p brs
 * + j bcs] and C row-major with row stride ldc. Eight rows at a time (two vectors of A' a p), each
 * column of B' splat; `tile` is 128 bytes of this thread's scratch.
 */
export function gemmOuterN(
  a: usize,
  acs: i32,
  b: usize,
  brs: i32,
  bcs: i32,
  n: i32,
  k: i32,
  c: usize,
  ldc: i32,
  begin: i32,
  end: i32,
  tile: usize,
): void {
  if (n == 1) outerNRows(a, acs, b, brs, bcs, 1, k, c, ldc, begin, end, tile);
  else if (n == 2) outerNRows(a, acs, b, brs, bcs, 2, k, c, ldc, begin, end, tile);
  else if (n == 3) outerNRows(a, acs, b, brs, bcs, 3, k, c, ldc, begin, end, tile);
  else outerNRows(a, acs, b, brs, bcs, 4, k, c, ldc, begin, end, tile);
}

/** gemmOuterN's loops, inlined with n a constant. */
@inline
function outerNRows(
  a: usize,
  acs: i32,
  b: usize,
  brs: i32,
  bcs: i32,
  n: i32,
  k: i32,
  c: usize,
  ldc: i32,
  begin: i32,
  end: i32,
  tile: usize,
): void {
  const kb = kcBlock(k);
  const aStep = <usize>acs << 2;
  const cRow = <usize>ldc << 2;
  for (let i = begin; i < end; i += 8) {
    const rows = min(8, end - i);
    const top = min(4, rows);
    for (let pc = 0; pc < k; pc += kb) {
      const kc = min(kb, k - pc);
      const ap = a + ((<usize>i + <usize>pc * <usize>acs) << 2);
      const bp = b + <usize>pc * (<usize>brs << 2);
      outerBlock(ap, aStep, rows, bp, <usize>bcs << 2, <usize>brs << 2, n, kc, tile);
      const first = pc == 0;
      const cp = c + <usize>i * cRow;
      for (let j = 0; j < n; j++) {
        const t = tile + (<usize>j << 5);
        const cj = cp + (<usize>j << 2);
        storeLanes(cj, cRow, v128.load(t), top, first);
        if (rows > 4) storeLanes(cj + 4 * cRow, cRow, v128.load(t, 16), rows - 4, first);
      }
    }
  }
}

/**
 * Few rows: C[i, j] = sum over p of A'(i, p) B'(p, j) for every row i < m (m <= 4) and columns j
 * in [begin, end), with A'(i, p) = a[i ars + p acs], B'(p, j) = b[p brs + j] (its rows contiguous)
 * and C row-major with row stride ldc. Eight columns at a time (two vectors of B' a p), each row of
 * A' splat; `tile` is 128 bytes of this thread's scratch.
 */
export function gemmOuterM(
  a: usize,
  ars: i32,
  acs: i32,
  b: usize,
  brs: i32,
  m: i32,
  k: i32,
  c: usize,
  ldc: i32,
  begin: i32,
  end: i32,
  tile: usize,
): void {
  if (m == 1) outerMCols(a, ars, acs, b, brs, 1, k, c, ldc, begin, end, tile);
  else if (m == 2) outerMCols(a, ars, acs, b, brs, 2, k, c, ldc, begin, end, tile);
  else if (m == 3) outerMCols(a, ars, acs, b, brs, 3, k, c, ldc, begin, end, tile);
  else outerMCols(a, ars, acs, b, brs, 4, k, c, ldc, begin, end, tile);
}

/** gemmOuterM's loops, inlined with m a constant. */
@inline
function outerMCols(
  a: usize,
  ars: i32,
  acs: i32,
  b: usize,
  brs: i32,
  m: i32,
  k: i32,
  c: usize,
  ldc: i32,
  begin: i32,
  end: i32,
  tile: usize,
): void {
  const kb = kcBlock(k);
  const bStep = <usize>brs << 2;
  const cRow = <usize>ldc << 2;
  for (let j = begin; j < end; j += 8) {
    const cols = min(8, end - j);
    for (let pc = 0; pc < k; pc += kb) {
      const kc = min(kb, k - pc);
      const ap = a + <usize>pc * (<usize>acs << 2);
      const bp = b + <usize>pc * bStep + (<usize>j << 2);
      // B' times A' rather than A' times B': the same products, so the same bits.
      outerBlock(bp, bStep, cols, ap, <usize>ars << 2, <usize>acs << 2, m, kc, tile);
      const first = pc == 0;
      for (let i = 0; i < m; i++) {
        const t = tile + (<usize>i << 5);
        const cp = c + (<usize>i * cRow) + (<usize>j << 2);
        if (cols == 8) {
          v128.store(cp, first ? v128.load(t) : f32x4.add(v128.load(cp), v128.load(t)));
          v128.store(cp, first ? v128.load(t, 16) : f32x4.add(v128.load(cp, 16), v128.load(t, 16)), 16);
        } else {
          storeLanes(cp, 4, v128.load(t), min(4, cols), first);
          if (cols > 4) storeLanes(cp + 16, 4, v128.load(t, 16), cols - 4, first);
        }
      }
    }
  }
}
