// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the filter gradient of a 3x3 stride-1 pad-1 convolution by Winograd F(3x3, 2x2),
// the dual of the forward's F(2x2, 3x3) (winograd_f2x2.ts, whose input transform of four tiles,
// transformWindows, it shares).
//
// The filter gradient, dW[o][c] = the sum over images and output pixels p of
// dy[o][p] x[c][p + offset], is the dual algorithm: with the output pixels in 2x2 tiles (the same
// tiles and 4x4 input windows d as the forward's, dy zero outside the image), each tile adds
//   G^T ((A dy A^T) (.) (B^T d B)) G
// to dW, with A^T, B^T and G those of F(2x2, 3x3). So for each position xi of the 4x4 transformed
// tile, M[xi] (out x in channels) = the sum over tiles of U[xi] (out channels x tiles) times
// V[xi]^T (tiles x in channels), 16 GEMMs whose inner dimension runs over the tiles, and then
// dW[o][c] = G^T M[.][o][c] G. U and V keep the tiles contiguous, as the transforms write them
// (four tiles a lane), and a dot-product kernel multiplies them as they are: no packing (the
// packed GEMM of gemm.ts, which has to transpose both of them, measured 12 to 30% slower overall).
// Their rows (channels) are rounded up to the kernel's 3 x 4 blocks, the extra rows zero. The last
// row of A, (0, -1), is taken as (0, 1) and its sign moved into the final G^T . G.

import { madd } from "./simd.ts";
import { transformWindows } from "./winograd_f2x2";

/** Row stride (elements) of V: a chunk of tiles plus room for the last group's four lanes. */
@inline
function vStride(chunk: i32): i32 {
  return (chunk + 4 + 15) & ~15;
}

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
 * V[xi][ch][t - t0] = (B^T d B)[xi] as inputTransform2 computes it, for x (n x c x h x w), but a
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
        transformWindows(s0, q1, s2, s3, col0, w, wv, lanes, dst, xiStep);
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
