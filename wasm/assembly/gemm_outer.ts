// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: skinny products summed as outer products, p by p, for the shapes the packed GEMM
// (gemm.ts) would run in mostly empty tiles and the dot-product kernels (gemm_skinny.ts) cannot
// take: gemmOuterN for few columns (n <= 4) with A' transposed (its columns contiguous: the filter
// gradient x^T dy of a layer with few inputs), gemmOuterM for few rows (m <= 4) with the rows of B'
// contiguous (the filter gradient of a layer with few outputs). Each entry is the packed GEMM's
// sum: over each K block of kcBlock(k), multiply-adds in order from zero, each block then added to
// the blocks before it. So the bits are the packed GEMM's, whichever rows or columns a thread gets.

import { kcBlock } from "./gemm_blocking";
import { madd } from "./simd.ts";

/** The `count` (1 to 4) floats at p in lanes [0, count), zeros in the others. */
@inline
function loadPartial(p: usize, count: i32): v128 {
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (count > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (count > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  if (count > 3) v = f32x4.replace_lane(v, 3, load<f32>(p, 12));
  return v;
}

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
 * Few columns: C[i, j] = sum over p of A'(i, p) B'(p, j) for rows i in [begin, end) and every
 * column j < n (n <= 4), with A'(i, p) = a[i + p acs] (its columns contiguous), B'(p, j) = b[p brs
 * + j bcs] and C row-major with row stride ldc. Eight rows at a time (two vectors of A' a p).
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
): void {
  if (n == 1) outerNRows(a, acs, b, brs, bcs, 1, k, c, ldc, begin, end);
  else if (n == 2) outerNRows(a, acs, b, brs, bcs, 2, k, c, ldc, begin, end);
  else if (n == 3) outerNRows(a, acs, b, brs, bcs, 3, k, c, ldc, begin, end);
  else outerNRows(a, acs, b, brs, bcs, 4, k, c, ldc, begin, end);
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
): void {
  const kb = kcBlock(k);
  const aStep = <usize>acs << 2;
  const bStep = <usize>brs << 2;
  const bCol = <usize>bcs << 2;
  const cRow = <usize>ldc << 2;
  for (let i = begin; i < end; i += 8) {
    const rows = min(8, end - i);
    for (let pc = 0; pc < k; pc += kb) {
      const kc = min(kb, k - pc);
      let s00 = f32x4.splat(0);
      let s01 = f32x4.splat(0);
      let s02 = f32x4.splat(0);
      let s03 = f32x4.splat(0);
      let s10 = f32x4.splat(0);
      let s11 = f32x4.splat(0);
      let s12 = f32x4.splat(0);
      let s13 = f32x4.splat(0);
      let ap = a + ((<usize>i + <usize>pc * <usize>acs) << 2);
      let bp = b + <usize>pc * bStep;
      for (let p = 0; p < kc; p++) {
        let x0: v128;
        let x1: v128;
        if (rows == 8) {
          x0 = v128.load(ap);
          x1 = v128.load(ap, 16);
        } else {
          x0 = loadPartial(ap, min(4, rows));
          x1 = rows > 4 ? loadPartial(ap + 16, rows - 4) : f32x4.splat(0);
        }
        const w0 = v128.load32_splat(bp);
        s00 = madd(x0, w0, s00);
        s10 = madd(x1, w0, s10);
        if (n > 1) {
          const w1 = v128.load32_splat(bp + bCol);
          s01 = madd(x0, w1, s01);
          s11 = madd(x1, w1, s11);
        }
        if (n > 2) {
          const w2 = v128.load32_splat(bp + 2 * bCol);
          s02 = madd(x0, w2, s02);
          s12 = madd(x1, w2, s12);
        }
        if (n > 3) {
          const w3 = v128.load32_splat(bp + 3 * bCol);
          s03 = madd(x0, w3, s03);
          s13 = madd(x1, w3, s13);
        }
        ap += aStep;
        bp += bStep;
      }
      const first = pc == 0;
      const top = min(4, rows);
      const cp = c + <usize>i * cRow;
      const cq = cp + 4 * cRow;
      storeLanes(cp, cRow, s00, top, first);
      if (rows > 4) storeLanes(cq, cRow, s10, rows - 4, first);
      if (n > 1) {
        storeLanes(cp + 4, cRow, s01, top, first);
        if (rows > 4) storeLanes(cq + 4, cRow, s11, rows - 4, first);
      }
      if (n > 2) {
        storeLanes(cp + 8, cRow, s02, top, first);
        if (rows > 4) storeLanes(cq + 8, cRow, s12, rows - 4, first);
      }
      if (n > 3) {
        storeLanes(cp + 12, cRow, s03, top, first);
        if (rows > 4) storeLanes(cq + 12, cRow, s13, rows - 4, first);
      }
    }
  }
}

/**
 * Few rows: C[i, j] = sum over p of A'(i, p) B'(p, j) for every row i < m (m <= 4) and columns j
 * in [begin, end), with A'(i, p) = a[i ars + p acs], B'(p, j) = b[p brs + j] (its rows contiguous)
 * and C row-major with row stride ldc. Eight columns at a time (two vectors of B' a p).
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
): void {
  if (m == 1) outerMCols(a, ars, acs, b, brs, 1, k, c, ldc, begin, end);
  else if (m == 2) outerMCols(a, ars, acs, b, brs, 2, k, c, ldc, begin, end);
  else if (m == 3) outerMCols(a, ars, acs, b, brs, 3, k, c, ldc, begin, end);
  else outerMCols(a, ars, acs, b, brs, 4, k, c, ldc, begin, end);
}

/** One row of gemmOuterM's sums into C: columns [0, cols) of the row at cp. */
@inline
function storeRow(cp: usize, u: v128, v: v128, cols: i32, first: bool): void {
  if (cols == 8) {
    v128.store(cp, first ? u : f32x4.add(v128.load(cp), u));
    v128.store(cp, first ? v : f32x4.add(v128.load(cp, 16), v), 16);
  } else {
    storeLanes(cp, 4, u, min(4, cols), first);
    if (cols > 4) storeLanes(cp + 16, 4, v, cols - 4, first);
  }
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
): void {
  const kb = kcBlock(k);
  const aRow = <usize>ars << 2;
  const aStep = <usize>acs << 2;
  const bStep = <usize>brs << 2;
  const cRow = <usize>ldc << 2;
  for (let j = begin; j < end; j += 8) {
    const cols = min(8, end - j);
    for (let pc = 0; pc < k; pc += kb) {
      const kc = min(kb, k - pc);
      let s00 = f32x4.splat(0);
      let s01 = f32x4.splat(0);
      let s10 = f32x4.splat(0);
      let s11 = f32x4.splat(0);
      let s20 = f32x4.splat(0);
      let s21 = f32x4.splat(0);
      let s30 = f32x4.splat(0);
      let s31 = f32x4.splat(0);
      let ap = a + <usize>pc * aStep;
      let bp = b + <usize>pc * bStep + (<usize>j << 2);
      for (let p = 0; p < kc; p++) {
        let y0: v128;
        let y1: v128;
        if (cols == 8) {
          y0 = v128.load(bp);
          y1 = v128.load(bp, 16);
        } else {
          y0 = loadPartial(bp, min(4, cols));
          y1 = cols > 4 ? loadPartial(bp + 16, cols - 4) : f32x4.splat(0);
        }
        const e0 = v128.load32_splat(ap);
        s00 = madd(e0, y0, s00);
        s01 = madd(e0, y1, s01);
        if (m > 1) {
          const e1 = v128.load32_splat(ap + aRow);
          s10 = madd(e1, y0, s10);
          s11 = madd(e1, y1, s11);
        }
        if (m > 2) {
          const e2 = v128.load32_splat(ap + 2 * aRow);
          s20 = madd(e2, y0, s20);
          s21 = madd(e2, y1, s21);
        }
        if (m > 3) {
          const e3 = v128.load32_splat(ap + 3 * aRow);
          s30 = madd(e3, y0, s30);
          s31 = madd(e3, y1, s31);
        }
        ap += aStep;
        bp += bStep;
      }
      const first = pc == 0;
      const cp = c + (<usize>j << 2);
      storeRow(cp, s00, s01, cols, first);
      if (m > 1) storeRow(cp + cRow, s10, s11, cols, first);
      if (m > 2) storeRow(cp + 2 * cRow, s20, s21, cols, first);
      if (m > 3) storeRow(cp + 3 * cRow, s30, s31, cols, first);
    }
  }
}
