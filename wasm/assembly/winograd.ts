// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: 3x3, stride-1, pad-1 convolution by Winograd's minimal filtering F(2x2, 3x3)
// (Lavin & Gray 2015): each 2x2 output tile costs 16 multiply-adds per (output, input) channel
// pair instead of 36. With g a 3x3 filter and d a 4x4 input tile,
//   U = G g G^T,  V = B^T d B,  Y = A^T (sum over input channels of U (.) V) A,
// so the channel sums are 16 independent GEMMs, one per position xi of the 4x4 transformed tile:
//   M[xi] (out channels x tiles) = U[xi] (out x in channels) times V[xi] (in channels x tiles),
// computed by the 6x8 micro-kernel of gemm_microkernel.ts with nothing packed per call
// (transformedProducts, shared with F(4x4, 3x3) of winograd4.ts): filter2 writes U already in the
// micro-kernel's 6-row slivers, and the kernel reads its 8-column slivers of V where the input
// transform left them (rows of V are a chunk of tiles long). winograd_conv.ts drives the
// transforms and products.
//
// Tiles are numbered over the batch, t = (n, ty, tx); a thread takes a range of tiles and works
// through it in chunks of `chunk` tiles, so that its transformed inputs V and GEMM results M stay
// in cache. Input and output transforms run on four tiles at once
// (one f32x4 lane per tile); the output transform writes NCHW directly, clipping the last tile
// row and column of odd sizes, and adds the bias.
//
// The same kernels compute the input gradient of such a convolution (a 3x3 stride-1 pad-1
// convolution of dy with the filter flipped in space and transposed in channels): filter2 with
// `flip` builds that filter's transform. The filter gradient, by the dual F(3x3, 2x2), is at the
// end of this file.

import { madd, storePartial } from "./simd.ts";
import { kcBlock } from "./gemm_blocking";
import { micro } from "./gemm_microkernel";

/** Row stride (elements) of V: a chunk of tiles plus room for the last group's four lanes. */
@inline
function vStride(chunk: i32): i32 {
  return (chunk + 4 + 15) & ~15;
}

/**
 * Row stride (elements) of the forward's V and M: a chunk of tiles, room for the last group's four
 * lanes and the micro-kernel's eight columns, and an odd number of 32-byte blocks, so that the
 * rows a micro-kernel call reads do not all fall in the same few cache sets.
 */
@inline
export function tStride(chunk: i32): i32 {
  return ((chunk + 4 + 7) & ~7) | 8;
}

/** The micro-kernel's rows: the output channels rounded up to 6. */
@inline
export function mRows(cout: i32): i32 {
  return (cout + 5) / 6 * 6;
}

/**
 * The byte offset of U(m, k) in a transformed filter plane packed as the micro-kernel reads it:
 * K blocks of kb columns (block pc at pc * mp), each mp / 6 slivers of 6 rows by the block's kc
 * columns, k-major (the layout of packAAll in gemm_pack.ts); ki input channels, mp rows.
 */
@inline
export function packedOffset(m: i32, k: i32, mp: i32, ki: i32, kb: i32): usize {
  const pc = k / kb * kb;
  const kc = min(kb, ki - pc);
  return <usize>(pc * mp + m / 6 * 6 * kc + (k - pc) * 6 + m % 6) << 2;
}

/**
 * Zeroes the rows past mo (up to mRows(mo)) of a transformed filter of `planes` positions with ki
 * input channels, packed as packedOffset lays it out.
 */
export function zeroPadRows(ut: usize, planes: i32, mo: i32, ki: i32): void {
  const mp = mRows(mo);
  const kb = kcBlock(ki);
  const plane = <usize>(mp * ki) << 2;
  for (let xi = 0; xi < planes; xi++) {
    const u = ut + <usize>xi * plane;
    for (let k = 0; k < ki; k++) {
      for (let m = mo; m < mp; m++) store<f32>(u + packedOffset(m, k, mp, ki, kb), 0);
    }
  }
}

/**
 * M[xi] = U[xi] V[xi] for `planes` transformed positions xi: U packed (packedOffset; planes
 * mp x cin), V cin rows by the chunk's tiles, M mp rows, both with rows `ld` floats long; count
 * tiles. K block by K block, a column sliver of V against every row sliver of U (in cache) before
 * the next; columns past count (up to the next multiple of 8) are computed and never read.
 */
export function transformedProducts(
  planes: i32,
  ut: usize,
  v: usize,
  mb: usize,
  cin: i32,
  mp: i32,
  ld: i32,
  count: i32,
): void {
  const ldBytes = <usize>ld << 2;
  const uPlane = <usize>(mp * cin) << 2;
  const vPlane = <usize>cin * ldBytes;
  const mPlane = <usize>mp * ldBytes;
  const kb = kcBlock(cin);
  for (let xi = 0; xi < planes; xi++) {
    const u = ut + <usize>xi * uPlane;
    const vx = v + <usize>xi * vPlane;
    const mx = mb + <usize>xi * mPlane;
    for (let pc = 0; pc < cin; pc += kb) {
      const kc = min(kb, cin - pc);
      const ublock = u + (<usize>(pc * mp) << 2);
      const acc = pc > 0;
      for (let j = 0; j < count; j += 8) {
        const bp = vx + <usize>pc * ldBytes + (<usize>j << 2);
        let cp = mx + (<usize>j << 2);
        let ap = ublock;
        for (let ir = 0; ir < mp; ir += 6) {
          micro(kc, ap, bp, cp, ldBytes, acc, ldBytes);
          ap += <usize>(6 * kc) << 2;
          cp += 6 * ldBytes;
        }
      }
    }
  }
}

/**
 * The transformed filter U[xi][m][k] = (G g G^T)[xi] for effective output channel m and input
 * channel k, with g = w[m][k] (w is o x c x 3 x 3), or, when `flip`, the filter of the input
 * gradient: output channels are the c input channels of w, input channels its o outputs,
 * g[ky][kx] = w[k][m][2 - ky][2 - kx]. Each xi's U is written as the micro-kernel reads it: K
 * blocks of kcBlock(ki) columns, each mRows(mo) / 6 slivers of 6 rows (rows past mo zero) by the
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
      const src = w + (<usize>((flip != 0 ? k * c + m : m * c + k) * 9) << 2);
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
 * V[xi][c][t - t0] = (B^T d B)[xi] for tiles t in [t0, t0 + count) and every input channel c, d
 * the tile's 4x4 input window (zero outside the image); rows of V are `ldv` long. Window lanes
 * outside the image are masked to zero and rows outside it read `zeros` (48 zero bytes); loads may
 * touch up to 7 elements past a row and one before it (inside the memory; those lanes are masked).
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
  const xiStep = <usize>(cin * ldv) << 2;
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
        if (col0 < 0 || col0 + 9 >= w) {
          const base = i32x4.add(i32x4.splat(col0), lanes);
          const mA = i32x4.lt_u(base, wv);
          const mB = i32x4.lt_u(i32x4.add(base, i32x4.splat(4)), wv);
          const mA2 = i32x4.lt_u(i32x4.add(base, i32x4.splat(2)), wv);
          const mB2 = i32x4.lt_u(i32x4.add(base, i32x4.splat(6)), wv);
          transformGroup(s0, p1, s2, s3, mA, mB, mA2, mB2, true, dst, xiStep);
        } else transformGroup(s0, p1, s2, s3, wv, wv, wv, wv, false, dst, xiStep);
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

// ---- the filter gradient, by Winograd F(3x3, 2x2) ---------------------------------------------
//
// The filter gradient of the same convolution, dW[o][c] = the sum over images and output pixels
// p of dy[o][p] x[c][p + offset], is the dual algorithm: with the output pixels in 2x2 tiles (the
// same tiles and 4x4 input windows d as above, dy zero outside the image), each tile adds
//   G^T ((A dy A^T) (.) (B^T d B)) G
// to dW, with A^T, B^T and G those of F(2x2, 3x3). So for each position xi of the 4x4 transformed
// tile, M[xi] (out x in channels) = the sum over tiles of U[xi] (out channels x tiles) times
// V[xi]^T (tiles x in channels), 16 GEMMs whose inner dimension runs over the tiles, and then
// dW[o][c] = G^T M[.][o][c] G. U and V keep the tiles contiguous, as the transforms write them
// (four tiles a lane), and a dot-product kernel multiplies them as they are: no packing (the
// packed GEMM of gemm.ts, which has to transpose both of them, measured 12 to 30% slower overall).
// Their rows (channels) are rounded up to the kernel's 3 x 4 blocks, the extra rows zero. The last
// row of A, (0, -1), is taken as (0, 1) and its sign moved into the final G^T . G.

/** Rows of U: the out channels rounded up to 3. */
@inline
function dyRows(o: i32): i32 {
  return (o + 2) / 3 * 3;
}

/** Rows of V: the in channels rounded up to 4. */
@inline
function xRows(c: i32): i32 {
  return (c + 3) & ~3;
}

/**
 * Elements between the xi planes of U or V (rows of ld): a cache line more than the rows, so that
 * the 16 planes a transform writes at once do not share cache sets.
 */
@inline
function planeOf(rows: i32, ld: i32): i32 {
  return rows * ld + 16;
}

/** Bytes of scratch one thread needs for winogradFilterGrad. */
export function winogradFilterGradScratchBytes(c: i32, o: i32, chunk: i32): i32 {
  const ld = vStride(chunk);
  const v = 16 * planeOf(xRows(c), ld);
  const u = 16 * planeOf(dyRows(o), ld);
  const m = 16 * dyRows(o) * xRows(c);
  return ((v + u + m) << 2) + 64 + 64 + 256;
}

/**
 * V[xi][ch][t - t0] = (B^T d B)[xi] as inputTransform computes it, for x (n x c x h x w), but a
 * channel at a time, so that reads and writes run along rows; xi planes are `plane` elements
 * apart.
 */
function inputTransformByChannel(
  x: usize,
  c: i32,
  plane: i32,
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
  const xiStep = <usize>plane << 2;
  const wb = <usize>w << 2;
  const wv = i32x4.splat(w);
  const lanes = i32x4(0, 1, 2, 3);
  const end = t0 + count;
  for (let ch = 0; ch < c; ch++) {
    const vc = v + (<usize>(ch * ldv) << 2);
    let t = t0;
    while (t < end) {
      const ni = t / tiles;
      const r = t - ni * tiles;
      const ty = r / tw;
      const tx = r - ty * tw;
      const len = min(tw - tx, end - t);
      const iy = 2 * ty - 1;
      const v0 = iy >= 0;
      const v2 = iy + 2 < h;
      const v3 = iy + 3 < h;
      // Row iy + 1 (always inside) of the channel's plane.
      const p1 = x + <usize>(ni * c + ch) * planeBytes + (<usize>((iy + 1) * w) << 2);
      for (let g = 0; g < len; g += 4) {
        const col0 = 2 * (tx + g) - 1;
        const q1 = p1 + (<usize>col0 << 2);
        const s0 = v0 ? q1 - wb : zeros;
        const s2 = v2 ? q1 + wb : zeros;
        const s3 = v3 ? q1 + 2 * wb : zeros;
        const dst = vc + (<usize>(t - t0 + g) << 2);
        if (col0 < 0 || col0 + 9 >= w) {
          const base = i32x4.add(i32x4.splat(col0), lanes);
          const mA = i32x4.lt_u(base, wv);
          const mB = i32x4.lt_u(i32x4.add(base, i32x4.splat(4)), wv);
          const mA2 = i32x4.lt_u(i32x4.add(base, i32x4.splat(2)), wv);
          const mB2 = i32x4.lt_u(i32x4.add(base, i32x4.splat(6)), wv);
          transformGroup(s0, q1, s2, s3, mA, mB, mA2, mB2, true, dst, xiStep);
        } else {
          transformGroup(s0, q1, s2, s3, wv, wv, wv, wv, false, dst, xiStep);
        }
      }
      t += len;
    }
  }
}

/**
 * A dy A^T (the sign of its last row and column dropped) for four tiles (one a lane) whose two
 * dy rows of eight columns start at s0 and s1, their lanes masked by mA, mB (columns 0..3 and
 * 4..7) when `masked`; the 16 results go to dst, `step` bytes apart.
 */
@inline
function dyGroup(
  s0: usize,
  s1: usize,
  mA: v128,
  mB: v128,
  masked: bool,
  dst: usize,
  step: usize,
): void {
  let a = v128.load(s0);
  let b = v128.load(s0, 16);
  let c = v128.load(s1);
  let d = v128.load(s1, 16);
  if (masked) {
    a = v128.and(a, mA); b = v128.and(b, mB); c = v128.and(c, mA); d = v128.and(d, mB);
  }
  const y00 = v128.shuffle<f32>(a, b, 0, 2, 4, 6);
  const y01 = v128.shuffle<f32>(a, b, 1, 3, 5, 7);
  const y10 = v128.shuffle<f32>(c, d, 0, 2, 4, 6);
  const y11 = v128.shuffle<f32>(c, d, 1, 3, 5, 7);
  // A dy: rows y0, y0 + y1, y0 - y1, y1 (p, q the columns); then the same along each row.
  const p1 = f32x4.add(y00, y10);
  const q1 = f32x4.add(y01, y11);
  const p2 = f32x4.sub(y00, y10);
  const q2 = f32x4.sub(y01, y11);
  let o = dst;
  v128.store(o, y00);
  o += step;
  v128.store(o, f32x4.add(y00, y01));
  o += step;
  v128.store(o, f32x4.sub(y00, y01));
  o += step;
  v128.store(o, y01);
  o += step;
  v128.store(o, p1);
  o += step;
  v128.store(o, f32x4.add(p1, q1));
  o += step;
  v128.store(o, f32x4.sub(p1, q1));
  o += step;
  v128.store(o, q1);
  o += step;
  v128.store(o, p2);
  o += step;
  v128.store(o, f32x4.add(p2, q2));
  o += step;
  v128.store(o, f32x4.sub(p2, q2));
  o += step;
  v128.store(o, q2);
  o += step;
  v128.store(o, y10);
  o += step;
  v128.store(o, f32x4.add(y10, y11));
  o += step;
  v128.store(o, f32x4.sub(y10, y11));
  o += step;
  v128.store(o, y11);
}

/**
 * U[xi][k][t - t0] = (A dy A^T)[xi] (signs as in dyGroup) for tiles t in [t0, t0 + count) and
 * every output channel k of dy (n x o x h x w), the tile's pixels outside the image zero; rows of
 * U are `ldu` long, xi planes `plane` elements apart. A channel at a time, so that reads and
 * writes run along rows. Loads may touch up to 7 elements past a row (inside the memory; those
 * lanes are masked); a missing second row reads `zeros` (32 bytes). Lanes past the end of a row
 * of tiles land in slots rewritten later or in the slack of U's rows.
 */
function dyTransform(
  dy: usize,
  o: i32,
  plane: i32,
  h: i32,
  w: i32,
  t0: i32,
  count: i32,
  u: usize,
  ldu: i32,
  zeros: usize,
): void {
  const tw = (w + 1) >> 1;
  const tiles = tw * ((h + 1) >> 1);
  const planeBytes = <usize>(h * w) << 2;
  const xiStep = <usize>plane << 2;
  const wb = <usize>w << 2;
  const wv = i32x4.splat(w);
  const lanes = i32x4(0, 1, 2, 3);
  const end = t0 + count;
  for (let k = 0; k < o; k++) {
    const uk = u + (<usize>(k * ldu) << 2);
    let t = t0;
    while (t < end) {
      const ni = t / tiles;
      const r = t - ni * tiles;
      const ty = r / tw;
      const tx = r - ty * tw;
      const len = min(tw - tx, end - t);
      const second = 2 * ty + 1 < h;
      const p0 = dy + <usize>(ni * o + k) * planeBytes + (<usize>(2 * ty * w) << 2);
      for (let g = 0; g < len; g += 4) {
        const col0 = 2 * (tx + g);
        const s0 = p0 + (<usize>col0 << 2);
        const s1 = second ? s0 + wb : zeros;
        const dst = uk + (<usize>(t - t0 + g) << 2);
        if (col0 + 8 > w) {
          const base = i32x4.add(i32x4.splat(col0), lanes);
          const mA = i32x4.lt_u(base, wv);
          const mB = i32x4.lt_u(i32x4.add(base, i32x4.splat(4)), wv);
          dyGroup(s0, s1, mA, mB, true, dst, xiStep);
        } else {
          dyGroup(s0, s1, wv, wv, false, dst, xiStep);
        }
      }
      t += len;
    }
  }
}

/**
 * The sums of the lanes of a, b, c and d, as the lanes of one vector (in a fixed order, so the
 * bits do not depend on anything else).
 */
@inline
function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * m[i][j] (+)= the sum over k < kc of u[i][k] v[j][k], for rows i < rows (a multiple of 3) of u
 * and j < cols (a multiple of 4) of v, both with rows ld long; m has rows cols long; kc is a
 * multiple of 4. Each 3 x 4 block of m keeps 12 accumulators of four partial sums (lanes) over
 * the k's, added up at the end: per four k's, 7 loads feed 12 multiply-adds.
 */
function dotGemm(
  u: usize,
  v: usize,
  ld: i32,
  rows: i32,
  cols: i32,
  kc: i32,
  m: usize,
  acc: bool,
): void {
  const ldb = <usize>ld << 2;
  const cb = <usize>cols << 2;
  for (let i = 0; i < rows; i += 3) {
    const u0 = u + <usize>i * ldb;
    const u1 = u0 + ldb;
    const u2 = u1 + ldb;
    const stop = u0 + (<usize>kc << 2);
    for (let j = 0; j < cols; j += 4) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0), c03 = f32x4.splat(0);
      let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0), c13 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c22 = f32x4.splat(0), c23 = f32x4.splat(0);
      let p0 = u0, p1 = u1, p2 = u2;
      let q0 = v + <usize>j * ldb;
      let q1 = q0 + ldb, q2 = q1 + ldb, q3 = q2 + ldb;
      if (kc & 4) {
        const a0 = v128.load(p0);
        const a1 = v128.load(p1);
        const a2 = v128.load(p2);
        let b = v128.load(q0);
        c00 = madd(a0, b, c00); c10 = madd(a1, b, c10); c20 = madd(a2, b, c20);
        b = v128.load(q1);
        c01 = madd(a0, b, c01); c11 = madd(a1, b, c11); c21 = madd(a2, b, c21);
        b = v128.load(q2);
        c02 = madd(a0, b, c02); c12 = madd(a1, b, c12); c22 = madd(a2, b, c22);
        b = v128.load(q3);
        c03 = madd(a0, b, c03); c13 = madd(a1, b, c13); c23 = madd(a2, b, c23);
        p0 += 16; p1 += 16; p2 += 16; q0 += 16; q1 += 16; q2 += 16; q3 += 16;
      }
      // Eight k's a step.
      while (p0 < stop) {
        let a0 = v128.load(p0);
        let a1 = v128.load(p1);
        let a2 = v128.load(p2);
        let b = v128.load(q0);
        c00 = madd(a0, b, c00); c10 = madd(a1, b, c10); c20 = madd(a2, b, c20);
        b = v128.load(q1);
        c01 = madd(a0, b, c01); c11 = madd(a1, b, c11); c21 = madd(a2, b, c21);
        b = v128.load(q2);
        c02 = madd(a0, b, c02); c12 = madd(a1, b, c12); c22 = madd(a2, b, c22);
        b = v128.load(q3);
        c03 = madd(a0, b, c03); c13 = madd(a1, b, c13); c23 = madd(a2, b, c23);
        a0 = v128.load(p0, 16);
        a1 = v128.load(p1, 16);
        a2 = v128.load(p2, 16);
        b = v128.load(q0, 16);
        c00 = madd(a0, b, c00); c10 = madd(a1, b, c10); c20 = madd(a2, b, c20);
        b = v128.load(q1, 16);
        c01 = madd(a0, b, c01); c11 = madd(a1, b, c11); c21 = madd(a2, b, c21);
        b = v128.load(q2, 16);
        c02 = madd(a0, b, c02); c12 = madd(a1, b, c12); c22 = madd(a2, b, c22);
        b = v128.load(q3, 16);
        c03 = madd(a0, b, c03); c13 = madd(a1, b, c13); c23 = madd(a2, b, c23);
        p0 += 32; p1 += 32; p2 += 32; q0 += 32; q1 += 32; q2 += 32; q3 += 32;
      }
      const dst = m + (<usize>(i * cols + j) << 2);
      let r0 = hsum4(c00, c01, c02, c03);
      let r1 = hsum4(c10, c11, c12, c13);
      let r2 = hsum4(c20, c21, c22, c23);
      if (acc) {
        r0 = f32x4.add(v128.load(dst), r0);
        r1 = f32x4.add(v128.load(dst + cb), r1);
        r2 = f32x4.add(v128.load(dst + 2 * cb), r2);
      }
      v128.store(dst, r0);
      v128.store(dst + cb, r1);
      v128.store(dst + 2 * cb, r2);
    }
  }
}

// The rows of G^T (the sign of the last column flipped, see above) applied to m0..m3:
//   m0 + (m1 + m2) / 2,  (m1 - m2) / 2,  (m1 + m2) / 2 - m3.

/** First row of G^T. */
@inline
function gt0(m0: v128, m1: v128, m2: v128): v128 {
  return f32x4.add(m0, f32x4.mul(f32x4.add(m1, m2), f32x4.splat(0.5)));
}

/** Second row of G^T. */
@inline
function gt1(m1: v128, m2: v128): v128 {
  return f32x4.mul(f32x4.sub(m1, m2), f32x4.splat(0.5));
}

/** Third row of G^T. */
@inline
function gt2(m1: v128, m2: v128, m3: v128): v128 {
  return f32x4.sub(f32x4.mul(f32x4.add(m1, m2), f32x4.splat(0.5)), m3);
}

/**
 * dw[k][c][3 x 3] = G^T M G for the o x c channel pairs of M (xi planes of `rows` rows, `cols`
 * long), four input channels a lane; `q` is 144 bytes of scratch.
 */
function filterTransform(
  mb: usize,
  rows: i32,
  cols: i32,
  dw: usize,
  o: i32,
  c: i32,
  q: usize,
): void {
  const step = <usize>(rows * cols) << 2;
  for (let k = 0; k < o; k++) {
    for (let c4 = 0; c4 < c; c4 += 4) {
      // Each row i of M (M[4 i + j]) times G along j, then G^T down the rows.
      let s = mb + (<usize>(k * cols + c4) << 2);
      let m0 = v128.load(s);
      let m1 = v128.load(s + step);
      let m2 = v128.load(s + 2 * step);
      let m3 = v128.load(s + 3 * step);
      const a00 = gt0(m0, m1, m2), a01 = gt1(m1, m2), a02 = gt2(m1, m2, m3);
      s += 4 * step;
      m0 = v128.load(s);
      m1 = v128.load(s + step);
      m2 = v128.load(s + 2 * step);
      m3 = v128.load(s + 3 * step);
      const a10 = gt0(m0, m1, m2), a11 = gt1(m1, m2), a12 = gt2(m1, m2, m3);
      s += 4 * step;
      m0 = v128.load(s);
      m1 = v128.load(s + step);
      m2 = v128.load(s + 2 * step);
      m3 = v128.load(s + 3 * step);
      const a20 = gt0(m0, m1, m2), a21 = gt1(m1, m2), a22 = gt2(m1, m2, m3);
      s += 4 * step;
      m0 = v128.load(s);
      m1 = v128.load(s + step);
      m2 = v128.load(s + 2 * step);
      m3 = v128.load(s + 3 * step);
      const a30 = gt0(m0, m1, m2), a31 = gt1(m1, m2), a32 = gt2(m1, m2, m3);
      v128.store(q, gt0(a00, a10, a20));
      v128.store(q, gt0(a01, a11, a21), 16);
      v128.store(q, gt0(a02, a12, a22), 32);
      v128.store(q, gt1(a10, a20), 48);
      v128.store(q, gt1(a11, a21), 64);
      v128.store(q, gt1(a12, a22), 80);
      v128.store(q, gt2(a10, a20, a30), 96);
      v128.store(q, gt2(a11, a21, a31), 112);
      v128.store(q, gt2(a12, a22, a32), 128);
      // Lane l of q[r] is dw[k][c4 + l][r].
      const lanes = min(4, c - c4);
      let out = dw + (<usize>((k * c + c4) * 9) << 2);
      for (let l = 0; l < lanes; l++) {
        const e = q + (<usize>l << 2);
        for (let r = 0; r < 9; r++) store<f32>(out + (<usize>r << 2), load<f32>(e + (<usize>r << 4)));
        out += 36;
      }
    }
  }
}

/**
 * The filter gradient of a 3x3 stride-1 pad-1 convolution by Winograd F(3x3, 2x2), by groups of
 * tiles: for each group g in [begin, end), partial[g] (o x c x 3 x 3) = the sum over tiles
 * t in [g gsize, min(tiles, g gsize + gsize)) (t = (n, ty, tx) over the batch, as in
 * inputTransform2) of the tile's term, x being the input (n x c x h x w) and dy the output gradient
 * (n x o x h x w). A group runs through its tiles in chunks of `chunk`, in order, on one thread,
 * so the result does not depend on how groups are split over threads. `scratch` is this thread's,
 * winogradFilterGradScratchBytes(c, o, chunk) bytes.
 */
export function winogradFilterGrad(
  x: usize,
  dy: usize,
  partial: usize,
  c: i32,
  o: i32,
  h: i32,
  w: i32,
  chunk: i32,
  tiles: i32,
  gsize: i32,
  begin: i32,
  end: i32,
  scratch: usize,
): void {
  const ld = vStride(chunk);
  const cRows = xRows(c);
  const oRows = dyRows(o);
  const vPlane = planeOf(cRows, ld);
  const uPlane = planeOf(oRows, ld);
  const v = (scratch + 63) & ~63;
  const u = v + (<usize>(16 * vPlane) << 2);
  const mb = u + (<usize>(16 * uPlane) << 2);
  const mStep = <usize>(oRows * cRows) << 2;
  const zeros = mb + 16 * mStep;
  const q = zeros + 64;
  memory.fill(zeros, 0, 64);
  // The rounding rows, which the transforms never write, are zero throughout.
  const ldb = <usize>ld << 2;
  for (let xi = 0; xi < 16; xi++) {
    const vx = v + (<usize>(xi * vPlane) << 2);
    const ux = u + (<usize>(xi * uPlane) << 2);
    if (cRows > c) memory.fill(vx + <usize>c * ldb, 0, <usize>(cRows - c) * ldb);
    if (oRows > o) memory.fill(ux + <usize>o * ldb, 0, <usize>(oRows - o) * ldb);
  }
  const dwBytes = <usize>(o * c * 9) << 2;
  for (let g = begin; g < end; g++) {
    const first = g * gsize;
    const last = min(tiles, first + gsize);
    for (let t = first; t < last; t += chunk) {
      const count = min(chunk, last - t);
      inputTransformByChannel(x, c, vPlane, h, w, t, count, v, ld, zeros);
      dyTransform(dy, o, uPlane, h, w, t, count, u, ld, zeros);
      // The kernel takes four tiles at a time: the slots past the last tile hold other tiles'
      // values (finite), zero them in U and V.
      const kc = (count + 3) & ~3;
      if (kc > count) {
        const tail = <usize>(kc - count) << 2;
        for (let xi = 0; xi < 16; xi++) {
          let p = u + (<usize>(xi * uPlane + count) << 2);
          for (let r = 0; r < oRows; r++) memory.fill(p + <usize>r * ldb, 0, tail);
          p = v + (<usize>(xi * vPlane + count) << 2);
          for (let r = 0; r < cRows; r++) memory.fill(p + <usize>r * ldb, 0, tail);
        }
      }
      for (let xi = 0; xi < 16; xi++) {
        dotGemm(
          u + (<usize>(xi * uPlane) << 2), v + (<usize>(xi * vPlane) << 2), ld, oRows, cRows, kc,
          mb + <usize>xi * mStep, t > first,
        );
      }
    }
    filterTransform(mb, oRows, cRows, partial + <usize>g * dwBytes, o, c, q);
  }
}
