// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the skinny matrix products, for shapes that would fill the 4x8 tiles of the
// packed engine (gemm.ts) badly: gemmSkinnyN for few columns (n <= 4; a dot product per entry)
// and gemmSkinnyK for a short inner size (k <= 4; rows of B' scaled and added). Both compute each
// entry the same way whichever rows a call gets, so the bits do not depend on the thread split.

import { epilogue } from "./gemm";
import { hsum, madd, vrelu } from "./simd.ts";

/** One step of a dot product: acc + the four floats at r times b, lane by lane. */
@inline
function dotRow(r: usize, b: v128, acc: v128): v128 {
  return madd(v128.load(r), b, acc);
}

/**
 * Skinny N (n <= 4 columns, rows of A' contiguous): C[i, j] = A'(i, :) . bt[j, :] for rows
 * [begin, end), with bt the transposed B' (n rows of k, row stride bts elements). Each entry is one
 * f32x4 dot product over k (lanes summed (0 + 1) + (2 + 3)) plus the k % 4 rest in order, the same
 * whichever rows a call gets, so the bits do not depend on the thread split.
 */
export function gemmSkinnyN(
  a: usize,
  ars: i32,
  bt: usize,
  bts: i32,
  n: i32,
  k: i32,
  c: usize,
  ldc: i32,
  begin: i32,
  end: i32,
): void {
  const k4 = k & ~3;
  const aStep = <usize>ars << 2;
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const r0 = a + (<usize>i * aStep);
    const r1 = r0 + aStep;
    const r2 = r1 + aStep;
    const r3 = r2 + aStep;
    for (let j = 0; j < n; j += 2) {
      const two = j + 1 < n;
      const b0 = bt + (<usize>(j * bts) << 2);
      const b1 = two ? b0 + (<usize>bts << 2) : b0;
      let s00 = f32x4.splat(0);
      let s10 = f32x4.splat(0);
      let s20 = f32x4.splat(0);
      let s30 = f32x4.splat(0);
      let s01 = f32x4.splat(0);
      let s11 = f32x4.splat(0);
      let s21 = f32x4.splat(0);
      let s31 = f32x4.splat(0);
      for (let p = 0; p < k4; p += 4) {
        const o = <usize>p << 2;
        const v0 = v128.load(b0 + o);
        const v1 = v128.load(b1 + o);
        const x0 = v128.load(r0 + o);
        const x1 = v128.load(r1 + o);
        const x2 = v128.load(r2 + o);
        const x3 = v128.load(r3 + o);
        s00 = madd(x0, v0, s00);
        s10 = madd(x1, v0, s10);
        s20 = madd(x2, v0, s20);
        s30 = madd(x3, v0, s30);
        s01 = madd(x0, v1, s01);
        s11 = madd(x1, v1, s11);
        s21 = madd(x2, v1, s21);
        s31 = madd(x3, v1, s31);
      }
      let t00 = hsum(s00);
      let t10 = hsum(s10);
      let t20 = hsum(s20);
      let t30 = hsum(s30);
      let t01 = hsum(s01);
      let t11 = hsum(s11);
      let t21 = hsum(s21);
      let t31 = hsum(s31);
      for (let p = k4; p < k; p++) {
        const o = <usize>p << 2;
        const w0 = load<f32>(b0 + o);
        const w1 = load<f32>(b1 + o);
        t00 += load<f32>(r0 + o) * w0;
        t10 += load<f32>(r1 + o) * w0;
        t20 += load<f32>(r2 + o) * w0;
        t30 += load<f32>(r3 + o) * w0;
        t01 += load<f32>(r0 + o) * w1;
        t11 += load<f32>(r1 + o) * w1;
        t21 += load<f32>(r2 + o) * w1;
        t31 += load<f32>(r3 + o) * w1;
      }
      const cp = c + (<usize>(i * ldc + j) << 2);
      const cs = <usize>ldc << 2;
      store<f32>(cp, t00);
      store<f32>(cp + cs, t10);
      store<f32>(cp + 2 * cs, t20);
      store<f32>(cp + 3 * cs, t30);
      if (two) {
        store<f32>(cp, t01, 4);
        store<f32>(cp + cs, t11, 4);
        store<f32>(cp + 2 * cs, t21, 4);
        store<f32>(cp + 3 * cs, t31, 4);
      }
    }
  }
  for (; i < end; i++) {
    const r0 = a + (<usize>i * aStep);
    for (let j = 0; j < n; j++) {
      const b0 = bt + (<usize>(j * bts) << 2);
      let s = f32x4.splat(0);
      for (let p = 0; p < k4; p += 4) {
        const o = <usize>p << 2;
        s = dotRow(r0 + o, v128.load(b0 + o), s);
      }
      let t = hsum(s);
      for (let p = k4; p < k; p++) {
        const o = <usize>p << 2;
        t += load<f32>(r0 + o) * load<f32>(b0 + o);
      }
      store<f32>(c + (<usize>(i * ldc + j) << 2), t);
    }
  }
}

/**
 * Skinny K (k <= 4): C[i, :] = sum over p < k, in order, of A'(i, p) B'(p, :) for rows
 * [begin, end), with B' rows contiguous (row stride bps elements); then, when `bias` is not 0, the
 * n floats at bias added one a column, and with `act` 1 ReLU (x > 0 ? x : 0). Columns by fours,
 * the n % 4 rest one by one (the same columns for every row, so the bits do not depend on the
 * thread split). One copy of the loops for each k, so that none tests k per vector.
 */
export function gemmSkinnyK(
  a: usize,
  ars: i32,
  acs: i32,
  bp: usize,
  bps: i32,
  n: i32,
  k: i32,
  c: usize,
  ldc: i32,
  bias: usize,
  act: i32,
  begin: i32,
  end: i32,
): void {
  if (k == 1) skinnyKRows(a, ars, acs, bp, bps, n, 1, c, ldc, bias, act, begin, end);
  else if (k == 2) skinnyKRows(a, ars, acs, bp, bps, n, 2, c, ldc, bias, act, begin, end);
  else if (k == 3) skinnyKRows(a, ars, acs, bp, bps, n, 3, c, ldc, bias, act, begin, end);
  else skinnyKRows(a, ars, acs, bp, bps, n, 4, c, ldc, bias, act, begin, end);
}

/** gemmSkinnyK's loops, inlined with k a constant. */
@inline
function skinnyKRows(
  a: usize,
  ars: i32,
  acs: i32,
  bp: usize,
  bps: i32,
  n: i32,
  k: i32,
  c: usize,
  ldc: i32,
  bias: usize,
  act: i32,
  begin: i32,
  end: i32,
): void {
  const n4 = n & ~3;
  const bStep = <usize>bps << 2;
  const b0 = bp;
  const b1 = k > 1 ? b0 + bStep : b0;
  const b2 = k > 2 ? b1 + bStep : b0;
  const b3 = k > 3 ? b2 + bStep : b0;
  const ac = <usize>acs << 2;
  let i = begin;
  // Two rows at a time share the loads of B'.
  for (; i + 2 <= end; i += 2) {
    const ar = a + (<usize>(i * ars) << 2);
    const ar2 = ar + (<usize>ars << 2);
    const e0 = load<f32>(ar);
    const e1 = k > 1 ? load<f32>(ar + ac) : <f32>0;
    const e2 = k > 2 ? load<f32>(ar + 2 * ac) : <f32>0;
    const e3 = k > 3 ? load<f32>(ar + 3 * ac) : <f32>0;
    const f0 = load<f32>(ar2);
    const f1 = k > 1 ? load<f32>(ar2 + ac) : <f32>0;
    const f2 = k > 2 ? load<f32>(ar2 + 2 * ac) : <f32>0;
    const f3 = k > 3 ? load<f32>(ar2 + 3 * ac) : <f32>0;
    const x0 = f32x4.splat(e0);
    const x1 = f32x4.splat(e1);
    const x2 = f32x4.splat(e2);
    const x3 = f32x4.splat(e3);
    const y0 = f32x4.splat(f0);
    const y1 = f32x4.splat(f1);
    const y2 = f32x4.splat(f2);
    const y3 = f32x4.splat(f3);
    const cr = c + (<usize>(i * ldc) << 2);
    const cr2 = cr + (<usize>ldc << 2);
    let j = 0;
    for (; j < n4; j += 4) {
      const o = <usize>j << 2;
      const v0 = v128.load(b0 + o);
      let u = f32x4.mul(x0, v0);
      let w = f32x4.mul(y0, v0);
      if (k > 1) {
        const v1 = v128.load(b1 + o);
        u = madd(x1, v1, u);
        w = madd(y1, v1, w);
      }
      if (k > 2) {
        const v2 = v128.load(b2 + o);
        u = madd(x2, v2, u);
        w = madd(y2, v2, w);
      }
      if (k > 3) {
        const v3 = v128.load(b3 + o);
        u = madd(x3, v3, u);
        w = madd(y3, v3, w);
      }
      if (bias != 0) {
        const bv = v128.load(bias + o);
        u = f32x4.add(u, bv);
        w = f32x4.add(w, bv);
      }
      if (act == 1) {
        u = vrelu(u);
        w = vrelu(w);
      }
      v128.store(cr + o, u);
      v128.store(cr2 + o, w);
    }
    for (; j < n; j++) {
      const o = <usize>j << 2;
      const t = skinnyKDot(e0, e1, e2, e3, b0 + o, b1 + o, b2 + o, b3 + o, k);
      const t2 = skinnyKDot(f0, f1, f2, f3, b0 + o, b1 + o, b2 + o, b3 + o, k);
      store<f32>(cr + o, epilogue(t, bias, bias != 0 ? 2 : 0, act, 0, j));
      store<f32>(cr2 + o, epilogue(t2, bias, bias != 0 ? 2 : 0, act, 0, j));
    }
  }
  for (; i < end; i++) {
    const ar = a + (<usize>(i * ars) << 2);
    const e0 = load<f32>(ar);
    const e1 = k > 1 ? load<f32>(ar + ac) : <f32>0;
    const e2 = k > 2 ? load<f32>(ar + 2 * ac) : <f32>0;
    const e3 = k > 3 ? load<f32>(ar + 3 * ac) : <f32>0;
    const x0 = f32x4.splat(e0);
    const x1 = f32x4.splat(e1);
    const x2 = f32x4.splat(e2);
    const x3 = f32x4.splat(e3);
    const cr = c + (<usize>(i * ldc) << 2);
    let j = 0;
    for (; j < n4; j += 4) {
      const o = <usize>j << 2;
      let u = f32x4.mul(x0, v128.load(b0 + o));
      if (k > 1) u = madd(x1, v128.load(b1 + o), u);
      if (k > 2) u = madd(x2, v128.load(b2 + o), u);
      if (k > 3) u = madd(x3, v128.load(b3 + o), u);
      if (bias != 0) u = f32x4.add(u, v128.load(bias + o));
      if (act == 1) u = vrelu(u);
      v128.store(cr + o, u);
    }
    for (; j < n; j++) {
      const o = <usize>j << 2;
      const t = skinnyKDot(e0, e1, e2, e3, b0 + o, b1 + o, b2 + o, b3 + o, k);
      store<f32>(cr + o, epilogue(t, bias, bias != 0 ? 2 : 0, act, 0, j));
    }
  }
}

/** One entry of gemmSkinnyK's column rest: the sum over p < k of e_p times the float at b_p. */
@inline
function skinnyKDot(
  e0: f32,
  e1: f32,
  e2: f32,
  e3: f32,
  b0: usize,
  b1: usize,
  b2: usize,
  b3: usize,
  k: i32,
): f32 {
  let t = e0 * load<f32>(b0);
  if (k > 1) t += e1 * load<f32>(b1);
  if (k > 2) t += e2 * load<f32>(b2);
  if (k > 3) t += e3 * load<f32>(b3);
  return t;
}
