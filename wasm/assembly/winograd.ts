// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: 3x3, stride-1, pad-1 convolution by Winograd's minimal filtering F(2x2, 3x3)
// (Lavin & Gray 2015): each 2x2 output tile costs 16 multiply-adds per (output, input) channel
// pair instead of 36. With g a 3x3 filter and d a 4x4 input tile,
//   U = G g G^T,  V = B^T d B,  Y = A^T (sum over input channels of U (.) V) A,
// so the channel sums are 16 independent GEMMs, one per position xi of the 4x4 transformed tile:
//   M[xi] (tiles x out channels) = V[xi]^T (tiles x in channels) times U[xi] (in x out channels),
// computed by the GEMM engine of gemm.ts (dense mode).
//
// Tiles are numbered over the batch, t = (n, ty, tx); a thread takes a range of tiles and works
// through it in chunks of `chunk` tiles, so that its transformed inputs V and GEMM results M stay
// in cache. Input and output transforms run on four tiles at once
// (one f32x4 lane per tile); the output transform writes NCHW directly, clipping the last tile
// row and column of odd sizes, and adds the bias.
//
// The same kernels compute the input gradient of such a convolution (a 3x3 stride-1 pad-1
// convolution of dy with the filter flipped in space and transposed in channels): winogradFilter
// with `flip` builds that filter's transform.

import { storePartial } from "./simd.ts";
import { gemm, gemmWorkspaceBytes } from "./gemm";

/** Row stride (elements) of V: a chunk of tiles plus room for the last group's four lanes. */
@inline
function vStride(chunk: i32): i32 {
  return (chunk + 4 + 15) & ~15;
}

/** Row stride (elements) of M: the output channels rounded up to a vector. */
@inline
function mStride(cout: i32): i32 {
  return (cout + 3) & ~3;
}

/** Bytes of scratch one thread needs for winogradConv. */
export function winogradScratchBytes(cin: i32, cout: i32, chunk: i32): i32 {
  const v = 16 * cin * vStride(chunk);
  const m = 16 * (chunk + 4) * mStride(cout);
  return gemmWorkspaceBytes() + ((v + m) << 2) + 256 + 64 + 64;
}

/**
 * The transformed filter, ut[xi][k][m] = (G g G^T)[xi] for effective output channel m and input
 * channel k (row stride mo), with g = w[m][k] (w is o x c x 3 x 3), or, when `flip`, the filter of
 * the input gradient: output channels are the c input channels of w, input channels its o outputs,
 * g[ky][kx] = w[k][m][2 - ky][2 - kx].
 */
export function winogradFilter(w: usize, ut: usize, o: i32, c: i32, flip: i32): void {
  const mo = flip != 0 ? c : o;
  const ki = flip != 0 ? o : c;
  const plane = <usize>(ki * mo) << 2;
  for (let m = 0; m < mo; m++) {
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
      const dst = ut + (<usize>(k * mo + m) << 2);
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
function inputTransform(
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
    for (let g = 0; g < len; g += 4) {
      const col0 = 2 * (tx + g) - 1;
      const masked = col0 < 0 || col0 + 9 >= w;
      const base = i32x4.add(i32x4.splat(col0), lanes);
      const mA = i32x4.lt_u(base, wv);
      const mB = i32x4.lt_u(i32x4.add(base, i32x4.splat(4)), wv);
      const mA2 = i32x4.lt_u(i32x4.add(base, i32x4.splat(2)), wv);
      const mB2 = i32x4.lt_u(i32x4.add(base, i32x4.splat(6)), wv);
      // Rows iy .. iy + 3 (row iy + 1 is always inside), relative to the channel's plane.
      const p1 = img + (<usize>((iy + 1) * w + col0) << 2);
      const wb = <usize>w << 2;
      let dst = v + (<usize>(t - t0 + g) << 2);
      for (let c = 0; c < cin; c++) {
        const q1 = p1 + <usize>c * planeBytes;
        const s0 = v0 ? q1 - wb : zeros;
        const s2 = v2 ? q1 + wb : zeros;
        const s3 = v3 ? q1 + 2 * wb : zeros;
        if (masked) transformGroup(s0, q1, s2, s3, mA, mB, mA2, mB2, true, dst, xiStep);
        else transformGroup(s0, q1, s2, s3, mA, mB, mA2, mB2, false, dst, xiStep);
        dst += cStep;
      }
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

/** A^T m A for one tile's 16 values at m (xi planes `step` bytes apart), four channels a lane. */
@inline
function outTile(m: usize, step: usize, bias: v128, out: usize): void {
  const m0 = v128.load(m);
  const m1 = v128.load(m + step);
  const m2 = v128.load(m + 2 * step);
  const m3 = v128.load(m + 3 * step);
  const m4 = v128.load(m + 4 * step);
  const m5 = v128.load(m + 5 * step);
  const m6 = v128.load(m + 6 * step);
  const m7 = v128.load(m + 7 * step);
  const m8 = v128.load(m + 8 * step);
  const m9 = v128.load(m + 9 * step);
  const m10 = v128.load(m + 10 * step);
  const m11 = v128.load(m + 11 * step);
  const m12 = v128.load(m + 12 * step);
  const m13 = v128.load(m + 13 * step);
  const m14 = v128.load(m + 14 * step);
  const m15 = v128.load(m + 15 * step);
  // m A per row: s0 = m0 + m1 + m2, s1 = m1 - m2 - m3.
  const s00 = f32x4.add(f32x4.add(m0, m1), m2);
  const s01 = f32x4.sub(f32x4.sub(m1, m2), m3);
  const s10 = f32x4.add(f32x4.add(m4, m5), m6);
  const s11 = f32x4.sub(f32x4.sub(m5, m6), m7);
  const s20 = f32x4.add(f32x4.add(m8, m9), m10);
  const s21 = f32x4.sub(f32x4.sub(m9, m10), m11);
  const s30 = f32x4.add(f32x4.add(m12, m13), m14);
  const s31 = f32x4.sub(f32x4.sub(m13, m14), m15);
  // A^T down the columns, plus the bias.
  v128.store(out, f32x4.add(f32x4.add(f32x4.add(s00, s10), s20), bias));
  v128.store(out, f32x4.add(f32x4.add(f32x4.add(s01, s11), s21), bias), 16);
  v128.store(out, f32x4.add(f32x4.sub(f32x4.sub(s10, s20), s30), bias), 32);
  v128.store(out, f32x4.add(f32x4.sub(f32x4.sub(s11, s21), s31), bias), 48);
}

/**
 * Transposes in place the 4 x 4 block of lanes at offset `at` of the four 64-byte rows at q: lane
 * l of vector r becomes lane r of vector l (tiles by channels to channels by tiles).
 */
@inline
function transpose4(q: usize, at: usize): void {
  const a = v128.load(q + at);
  const b = v128.load(q + at, 64);
  const c = v128.load(q + at, 128);
  const d = v128.load(q + at, 192);
  const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(c, d, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
  const t3 = v128.shuffle<f32>(c, d, 2, 6, 3, 7);
  v128.store(q + at, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(q + at, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 64);
  v128.store(q + at, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 128);
  v128.store(q + at, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 192);
}

/**
 * y[n][o] = A^T M A + bias for tiles [t0, t0 + count): M[xi][t - t0][o] with rows ldm long and
 * xi planes `rows` rows apart; `q` is 256 bytes of scratch.
 */
function outputTransform(
  mb: usize,
  ldm: i32,
  rows: i32,
  bias: usize,
  y: usize,
  cout: i32,
  h: i32,
  w: i32,
  t0: i32,
  count: i32,
  q: usize,
): void {
  const tw = (w + 1) >> 1;
  const tiles = tw * ((h + 1) >> 1);
  const step = <usize>(rows * ldm) << 2;
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
    for (let g = 0; g < len; g += 4) {
      const txg = tx + g;
      const width = min(2 * min(4, len - g), w - 2 * txg);
      const tl = t - t0 + g;
      for (let o4 = 0; o4 < cout; o4 += 4) {
        const oc = min(4, cout - o4);
        const bv = bias != 0 ? v128.load(bias + (<usize>o4 << 2)) : f32x4.splat(0);
        // Four tiles, each giving y00, y01, y10, y11 for four channels (64 bytes a tile).
        const m = mb + (<usize>(tl * ldm + o4) << 2);
        outTile(m, step, bv, q);
        outTile(m + rowStep, step, bv, q + 64);
        outTile(m + 2 * rowStep, step, bv, q + 128);
        outTile(m + 3 * rowStep, step, bv, q + 192);
        // Now q + 64 l holds, for channel o4 + l, y00, y01, y10, y11 of the four tiles.
        transpose4(q, 0);
        transpose4(q, 16);
        transpose4(q, 32);
        transpose4(q, 48);
        let out = y + (<usize>(ni * cout + o4) * <usize>hw << 2) + (<usize>(2 * ty * w + 2 * txg) << 2);
        let e = q;
        for (let l = 0; l < oc; l++) {
          const y00 = v128.load(e);
          const y01 = v128.load(e, 16);
          store8(out, v128.shuffle<f32>(y00, y01, 0, 4, 1, 5), v128.shuffle<f32>(y00, y01, 2, 6, 3, 7), width);
          if (second) {
            const y10 = v128.load(e, 32);
            const y11 = v128.load(e, 48);
            store8(out + wBytes, v128.shuffle<f32>(y10, y11, 0, 4, 1, 5), v128.shuffle<f32>(y10, y11, 2, 6, 3, 7), width);
          }
          out += planeBytes;
          e += 64;
        }
      }
    }
    t += len;
  }
}

/**
 * A 3x3 stride-1 pad-1 convolution of tiles [begin, end) (t = (n, ty, tx), 2x2 outputs a tile) by
 * Winograd F(2x2, 3x3): x is the input (n x cin x h x w), ut the
 * transformed filter of winogradFilter (cin x cout per xi), y the output (n x cout x h x w), bias
 * 0 or cout values. Works through the range in chunks of `chunk` tiles; `scratch` is this
 * thread's, winogradScratchBytes(cin, cout, chunk) bytes.
 */
export function winogradConv(
  x: usize,
  ut: usize,
  bias: usize,
  y: usize,
  cin: i32,
  cout: i32,
  h: i32,
  w: i32,
  chunk: i32,
  begin: i32,
  end: i32,
  scratch: usize,
): void {
  const work = scratch;
  const ldv = vStride(chunk);
  const ldm = mStride(cout);
  const rows = chunk + 4;
  const v = (work + <usize>gemmWorkspaceBytes() + 63) & ~63;
  const mb = v + (<usize>(16 * cin * ldv) << 2);
  const q = mb + (<usize>(16 * rows * ldm) << 2);
  const zeros = q + 256;
  memory.fill(zeros, 0, 64);
  const utStep = <usize>(cin * cout) << 2;
  for (let t = begin; t < end; t += chunk) {
    const count = min(chunk, end - t);
    inputTransform(x, cin, h, w, t, count, v, ldv, zeros);
    for (let xi = 0; xi < 16; xi++) {
      gemm(
        0, count, 0, cout, cin,
        v + (<usize>(xi * cin * ldv) << 2), 1, ldv,
        0, ut + <usize>xi * utStep, cout, 1,
        mb + (<usize>(xi * rows * ldm) << 2), ldm,
        0, 0, 0, work,
      );
    }
    outputTransform(mb, ldm, rows, bias, y, cout, h, w, t, count, q);
  }
}
