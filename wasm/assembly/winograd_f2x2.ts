// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: 3x3, stride-1, pad-1 convolution by Winograd's minimal filtering F(2x2, 3x3)
// (Lavin & Gray 2015): each 2x2 output tile costs 16 multiply-adds per (output, input) channel
// pair instead of 36. With g a 3x3 filter and d a 4x4 input tile,
//   U = G g G^T,  V = B^T d B,  Y = A^T (sum over input channels of U (.) V) A,
// so the channel sums are 16 independent GEMMs, one per position xi of the 4x4 transformed tile,
// computed by transformedProducts (winograd_common.ts, shared with F(4x4, 3x3) of
// winograd_f4x4.ts): filter2 writes U already in the micro-kernel's 4-row slivers, and the kernel
// reads its 8-column slivers of V where the input transform left them (rows of V are a chunk of
// tiles long). winograd_conv.ts drives the transforms and products.
//
// Tiles are numbered over the batch, t = (n, ty, tx); a thread takes a range of tiles and works
// through it in chunks of `chunk` tiles, so that its transformed inputs V and GEMM results M stay
// in cache. Input and output transforms run on four tiles at once
// (one f32x4 lane per tile); the output transform writes NCHW directly, clipping the last tile
// row and column of odd sizes, and adds the bias.
//
// The same kernels compute the input gradient of such a convolution (a 3x3 stride-1 pad-1
// convolution of dy with the filter flipped in space and transposed in channels): filter2 with
// `flip` builds that filter's transform. The filter gradient, by the dual F(3x3, 2x2), is in
// winograd_filter_grad.ts (it shares transformWindows, the input transform of four tiles).

import { storePartial } from "./simd.ts";
import { kcBlock } from "./gemm_blocking";
import { filterAt, mRows, packedOffset, planeStride, zeroPadRows } from "./winograd_common";

/**
 * The transformed filter U[xi][m][k] = (G g G^T)[xi] for effective output channel m and input
 * channel k, with g = w[m][k] (w is o x c x 3 x 3), or, when `flip`, the filter of the input
 * gradient: output channels are the c input channels of w, input channels its o outputs,
 * g[ky][kx] = w[k][m][2 - ky][2 - kx]. Each xi's U is written as the micro-kernel reads it: K
 * blocks of kcBlock(ki) columns, each mRows(mo) / 4 slivers of 4 rows (rows past mo zero) by the
 * block's columns (packedOffset); winogradFilterBytes(2, mo, ki) bytes in all. Writes the rows of
 * effective output channels [begin, end), and the zero rows past mo when end is mo.
 */
export function filter2(w: usize, ut: usize, o: i32, c: i32, flip: i32, begin: i32, end: i32): void {
  const mo = flip != 0 ? c : o;
  const ki = flip != 0 ? o : c;
  const mp = mRows(mo);
  const kb = kcBlock(ki);
  const plane = <usize>(mp * ki) << 2;
  if (end == mo) zeroPadRows(ut, 16, mo, ki);
  for (let m = begin; m < end; m++) {
    for (let k = 0; k < ki; k++) {
      const src = filterAt(w, m, k, c, flip);
      // g[r][s], flipped when asked.
      let g0: f32, g1: f32, g2: f32, g3: f32, g4: f32, g5: f32, g6: f32, g7: f32, g8: f32;
      if (flip != 0) {
        g0 = load<f32>(src, 32); g1 = load<f32>(src, 28); g2 = load<f32>(src, 24);
        g3 = load<f32>(src, 20); g4 = load<f32>(src, 16); g5 = load<f32>(src, 12);
        g6 = load<f32>(src, 8); g7 = load<f32>(src, 4); g8 = load<f32>(src, 0);
      } else {
        g0 = load<f32>(src, 0); g1 = load<f32>(src, 4); g2 = load<f32>(src, 8);
        g3 = load<f32>(src, 12); g4 = load<f32>(src, 16); g5 = load<f32>(src, 20);
        g6 = load<f32>(src, 24); g7 = load<f32>(src, 28); g8 = load<f32>(src, 32);
      }
      // G g (4 x 3): rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 of the filter's rows.
      const a0 = g0, a1 = g1, a2 = g2;
      const b0 = (g0 + g3 + g6) * 0.5, b1 = (g1 + g4 + g7) * 0.5, b2 = (g2 + g5 + g8) * 0.5;
      const c0 = (g0 - g3 + g6) * 0.5, c1 = (g1 - g4 + g7) * 0.5, c2 = (g2 - g5 + g8) * 0.5;
      const d0 = g6, d1 = g7, d2 = g8;
      const dst = ut + packedOffset(m, k, mp, ki, kb);
      // (G g) G^T: the same combination along each row.
      store<f32>(dst + 0 * plane, a0);
      store<f32>(dst + 1 * plane, (a0 + a1 + a2) * 0.5);
      store<f32>(dst + 2 * plane, (a0 - a1 + a2) * 0.5);
      store<f32>(dst + 3 * plane, a2);
      store<f32>(dst + 4 * plane, b0);
      store<f32>(dst + 5 * plane, (b0 + b1 + b2) * 0.5);
      store<f32>(dst + 6 * plane, (b0 - b1 + b2) * 0.5);
      store<f32>(dst + 7 * plane, b2);
      store<f32>(dst + 8 * plane, c0);
      store<f32>(dst + 9 * plane, (c0 + c1 + c2) * 0.5);
      store<f32>(dst + 10 * plane, (c0 - c1 + c2) * 0.5);
      store<f32>(dst + 11 * plane, c2);
      store<f32>(dst + 12 * plane, d0);
      store<f32>(dst + 13 * plane, (d0 + d1 + d2) * 0.5);
      store<f32>(dst + 14 * plane, (d0 - d1 + d2) * 0.5);
      store<f32>(dst + 15 * plane, d2);
    }
  }
}

/**
 * B^T d B for four tiles (one a lane) whose 4 x 10 windows start at s0..s3 (rows), their lanes
 * masked by mA, mB (columns 0..7) and mA2, mB2 (columns 2..9) when `masked`; the 16 results go
 * to dst, `step` bytes apart.
 */
@inline
function transformGroup(
  s0: usize,
  s1: usize,
  s2: usize,
  s3: usize,
  mA: v128,
  mB: v128,
  mA2: v128,
  mB2: v128,
  masked: bool,
  dst: usize,
  step: usize,
): void {
  let a = v128.load(s0);
  let b = v128.load(s0, 16);
  let a2 = v128.load(s0, 8);
  let b2 = v128.load(s0, 24);
  if (masked) {
    a = v128.and(a, mA); b = v128.and(b, mB); a2 = v128.and(a2, mA2); b2 = v128.and(b2, mB2);
  }
  let d0 = v128.shuffle<f32>(a, b, 0, 2, 4, 6);
  let d1 = v128.shuffle<f32>(a, b, 1, 3, 5, 7);
  let d2 = v128.shuffle<f32>(a2, b2, 0, 2, 4, 6);
  let d3 = v128.shuffle<f32>(a2, b2, 1, 3, 5, 7);
  const r00 = f32x4.sub(d0, d2);
  const r01 = f32x4.add(d1, d2);
  const r02 = f32x4.sub(d2, d1);
  const r03 = f32x4.sub(d1, d3);
  a = v128.load(s1);
  b = v128.load(s1, 16);
  a2 = v128.load(s1, 8);
  b2 = v128.load(s1, 24);
  if (masked) {
    a = v128.and(a, mA); b = v128.and(b, mB); a2 = v128.and(a2, mA2); b2 = v128.and(b2, mB2);
  }
  d0 = v128.shuffle<f32>(a, b, 0, 2, 4, 6);
  d1 = v128.shuffle<f32>(a, b, 1, 3, 5, 7);
  d2 = v128.shuffle<f32>(a2, b2, 0, 2, 4, 6);
  d3 = v128.shuffle<f32>(a2, b2, 1, 3, 5, 7);
  const r10 = f32x4.sub(d0, d2);
  const r11 = f32x4.add(d1, d2);
  const r12 = f32x4.sub(d2, d1);
  const r13 = f32x4.sub(d1, d3);
  a = v128.load(s2);
  b = v128.load(s2, 16);
  a2 = v128.load(s2, 8);
  b2 = v128.load(s2, 24);
  if (masked) {
    a = v128.and(a, mA); b = v128.and(b, mB); a2 = v128.and(a2, mA2); b2 = v128.and(b2, mB2);
  }
  d0 = v128.shuffle<f32>(a, b, 0, 2, 4, 6);
  d1 = v128.shuffle<f32>(a, b, 1, 3, 5, 7);
  d2 = v128.shuffle<f32>(a2, b2, 0, 2, 4, 6);
  d3 = v128.shuffle<f32>(a2, b2, 1, 3, 5, 7);
  const r20 = f32x4.sub(d0, d2);
  const r21 = f32x4.add(d1, d2);
  const r22 = f32x4.sub(d2, d1);
  const r23 = f32x4.sub(d1, d3);
  a = v128.load(s3);
  b = v128.load(s3, 16);
  a2 = v128.load(s3, 8);
  b2 = v128.load(s3, 24);
  if (masked) {
    a = v128.and(a, mA); b = v128.and(b, mB); a2 = v128.and(a2, mA2); b2 = v128.and(b2, mB2);
  }
  d0 = v128.shuffle<f32>(a, b, 0, 2, 4, 6);
  d1 = v128.shuffle<f32>(a, b, 1, 3, 5, 7);
  d2 = v128.shuffle<f32>(a2, b2, 0, 2, 4, 6);
  d3 = v128.shuffle<f32>(a2, b2, 1, 3, 5, 7);
  const r30 = f32x4.sub(d0, d2);
  const r31 = f32x4.add(d1, d2);
  const r32 = f32x4.sub(d2, d1);
  const r33 = f32x4.sub(d1, d3);
  let o = dst;
  v128.store(o, f32x4.sub(r00, r20));
  o += step;
  v128.store(o, f32x4.sub(r01, r21));
  o += step;
  v128.store(o, f32x4.sub(r02, r22));
  o += step;
  v128.store(o, f32x4.sub(r03, r23));
  o += step;
  v128.store(o, f32x4.add(r10, r20));
  o += step;
  v128.store(o, f32x4.add(r11, r21));
  o += step;
  v128.store(o, f32x4.add(r12, r22));
  o += step;
  v128.store(o, f32x4.add(r13, r23));
  o += step;
  v128.store(o, f32x4.sub(r20, r10));
  o += step;
  v128.store(o, f32x4.sub(r21, r11));
  o += step;
  v128.store(o, f32x4.sub(r22, r12));
  o += step;
  v128.store(o, f32x4.sub(r23, r13));
  o += step;
  v128.store(o, f32x4.sub(r10, r30));
  o += step;
  v128.store(o, f32x4.sub(r11, r31));
  o += step;
  v128.store(o, f32x4.sub(r12, r32));
  o += step;
  v128.store(o, f32x4.sub(r13, r33));
}

/**
 * transformGroup for four tiles whose 4 x 10 windows start at column col0 of a w-wide image (rows
 * at s0..s3, each pointing at column col0), the lanes outside the image masked to zero when the
 * windows reach past either edge; `wv` holds w in every lane, `lanes` 0, 1, 2, 3.
 */
@inline
export function transformWindows(
  s0: usize,
  s1: usize,
  s2: usize,
  s3: usize,
  col0: i32,
  w: i32,
  wv: v128,
  lanes: v128,
  dst: usize,
  step: usize,
): void {
  if (col0 < 0 || col0 + 9 >= w) {
    const base = i32x4.add(i32x4.splat(col0), lanes);
    const mA = i32x4.lt_u(base, wv);
    const mB = i32x4.lt_u(i32x4.add(base, i32x4.splat(4)), wv);
    const mA2 = i32x4.lt_u(i32x4.add(base, i32x4.splat(2)), wv);
    const mB2 = i32x4.lt_u(i32x4.add(base, i32x4.splat(6)), wv);
    transformGroup(s0, s1, s2, s3, mA, mB, mA2, mB2, true, dst, step);
  } else transformGroup(s0, s1, s2, s3, wv, wv, wv, wv, false, dst, step);
}

/**
 * V[xi][c][t - t0] = (B^T d B)[xi] for tiles t in [t0, t0 + count) and every input channel c, d
 * the tile's 4x4 input window (zero outside the image); rows of V are `ldv` long, its planes
 * planeStride(cin, ldv) bytes apart. Window lanes outside the image are masked to zero and rows
 * outside it read `zeros` (48 zero bytes); loads may touch up to 7 elements past a row and one
 * before it (inside the memory; those lanes are masked).
 * Groups of four tiles run over a row of tiles; the lanes past its end land in V slots that the
 * next row rewrites, or in the slack at the end of V's rows.
 */
export function inputTransform2(
  x: usize,
  cin: i32,
  h: i32,
  w: i32,
  t0: i32,
  count: i32,
  v: usize,
  ldv: i32,
  zeros: usize,
): void {
  const tw = (w + 1) >> 1;
  const tiles = tw * ((h + 1) >> 1);
  const planeBytes = <usize>(h * w) << 2;
  const xiStep = planeStride(cin, ldv);
  const cStep = <usize>ldv << 2;
  const wv = i32x4.splat(w);
  const lanes = i32x4(0, 1, 2, 3);
  const end = t0 + count;
  let t = t0;
  while (t < end) {
    const ni = t / tiles;
    const r = t - ni * tiles;
    const ty = r / tw;
    const tx = r - ty * tw;
    const len = min(tw - tx, end - t);
    const img = x + <usize>(ni * cin) * planeBytes;
    const iy = 2 * ty - 1;
    const v0 = iy >= 0;
    const v3 = iy + 3 < h;
    const v2 = iy + 2 < h;
    const wb = <usize>w << 2;
    // Channel by channel, the groups of four tiles along the row: each (xi, channel) row of V is
    // then written in order, and each channel's four input rows read in order.
    let row = v + (<usize>(t - t0) << 2);
    for (let c = 0; c < cin; c++) {
      // Rows iy .. iy + 3 of the channel (row iy + 1 is always inside).
      const q1 = img + <usize>c * planeBytes + (<usize>((iy + 1) * w) << 2);
      for (let g = 0; g < len; g += 4) {
        const col0 = 2 * (tx + g) - 1;
        const p1 = q1 + (<usize>col0 << 2);
        const s0 = v0 ? p1 - wb : zeros;
        const s2 = v2 ? p1 + wb : zeros;
        const s3 = v3 ? p1 + 2 * wb : zeros;
        const dst = row + (<usize>g << 2);
        transformWindows(s0, p1, s2, s3, col0, w, wv, lanes, dst, xiStep);
      }
      row += cStep;
    }
    t += len;
  }
}

/** Stores the first `count` (1..8) of the eight values lo, hi at p. */
@inline
function store8(p: usize, lo: v128, hi: v128, count: i32): void {
  if (count >= 8) {
    v128.store(p, lo);
    v128.store(p, hi, 16);
  } else if (count >= 4) {
    v128.store(p, lo);
    storePartial(p + 16, hi, count - 4);
  } else {
    storePartial(p, lo, count);
  }
}

/**
 * y[n][o] = A^T M A + bias for tiles [t0, t0 + count): M[xi][o][t - t0] with rows ldm long and xi
 * planes `plane` bytes apart. Four tiles of one channel at a time (a lane each), along a row of
 * tiles, their two output rows written as eight consecutive pixels each.
 */
export function outputTransform2(
  mb: usize,
  ldm: i32,
  plane: usize,
  bias: usize,
  y: usize,
  cout: i32,
  h: i32,
  w: i32,
  t0: i32,
  count: i32,
): void {
  const tw = (w + 1) >> 1;
  const tiles = tw * ((h + 1) >> 1);
  const hw = h * w;
  const wBytes = <usize>w << 2;
  const planeBytes = <usize>hw << 2;
  const rowStep = <usize>ldm << 2;
  const end = t0 + count;
  let t = t0;
  while (t < end) {
    const ni = t / tiles;
    const r = t - ni * tiles;
    const ty = r / tw;
    const tx = r - ty * tw;
    const len = min(tw - tx, end - t);
    const second = 2 * ty + 1 < h;
    let row = mb + (<usize>(t - t0) << 2);
    let img = y + (<usize>(ni * cout) * <usize>hw << 2) + (<usize>(2 * ty * w + 2 * tx) << 2);
    for (let o = 0; o < cout; o++) {
      const bv = bias != 0 ? v128.load32_splat(bias + (<usize>o << 2)) : f32x4.splat(0);
      for (let g = 0; g < len; g += 4) {
        const width = min(2 * min(4, len - g), w - 2 * (tx + g));
        const m = row + (<usize>g << 2);
        // m A per row of the 4x4 tile: s0 = m0 + m1 + m2, s1 = m1 - m2 - m3.
        let m0 = v128.load(m);
        let m1 = v128.load(m + plane);
        let m2 = v128.load(m + 2 * plane);
        let m3 = v128.load(m + 3 * plane);
        const s00 = f32x4.add(f32x4.add(m0, m1), m2);
        const s01 = f32x4.sub(f32x4.sub(m1, m2), m3);
        m0 = v128.load(m + 4 * plane);
        m1 = v128.load(m + 5 * plane);
        m2 = v128.load(m + 6 * plane);
        m3 = v128.load(m + 7 * plane);
        const s10 = f32x4.add(f32x4.add(m0, m1), m2);
        const s11 = f32x4.sub(f32x4.sub(m1, m2), m3);
        m0 = v128.load(m + 8 * plane);
        m1 = v128.load(m + 9 * plane);
        m2 = v128.load(m + 10 * plane);
        m3 = v128.load(m + 11 * plane);
        const s20 = f32x4.add(f32x4.add(m0, m1), m2);
        const s21 = f32x4.sub(f32x4.sub(m1, m2), m3);
        m0 = v128.load(m + 12 * plane);
        m1 = v128.load(m + 13 * plane);
        m2 = v128.load(m + 14 * plane);
        m3 = v128.load(m + 15 * plane);
        const s30 = f32x4.add(f32x4.add(m0, m1), m2);
        const s31 = f32x4.sub(f32x4.sub(m1, m2), m3);
        // A^T down the columns, plus the bias: y00, y01 (output row 2 ty), y10, y11 (the next).
        const y00 = f32x4.add(f32x4.add(f32x4.add(s00, s10), s20), bv);
        const y01 = f32x4.add(f32x4.add(f32x4.add(s01, s11), s21), bv);
        const out = img + (<usize>(2 * g) << 2);
        store8(out, v128.shuffle<f32>(y00, y01, 0, 4, 1, 5), v128.shuffle<f32>(y00, y01, 2, 6, 3, 7), width);
        if (second) {
          const y10 = f32x4.add(f32x4.sub(f32x4.sub(s10, s20), s30), bv);
          const y11 = f32x4.add(f32x4.sub(f32x4.sub(s11, s21), s31), bv);
          store8(out + wBytes, v128.shuffle<f32>(y10, y11, 0, 4, 1, 5), v128.shuffle<f32>(y10, y11, 2, 6, 3, 7), width);
        }
      }
      row += rowStep;
      img += planeBytes;
    }
    t += len;
  }
}
