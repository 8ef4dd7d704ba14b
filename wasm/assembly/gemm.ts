// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the matrix-multiply engine. C (+)= A' B' over a block of C, BLIS-style: B' is
// packed into 8-column slivers (KC x NC panel), A' into 6-row slivers (MC x KC block), and a 6x8
// register-blocked micro-kernel (12 f32x4 accumulators; per k two v128 loads of packed B and six
// v128.load32_splat of packed A) computes each tile. Convolutions use the same engine: the B
// packer can read the im2col view of an image without materialising it (implicit GEMM), and the
// kernels at the end of this file build the explicit im2col matrix, add one back into an image
// (col2im) and flip a filter, for the strided and gradient cases.
//
// A'(i, p) = a[i * ars + p * acs]; B' depends on bmode:
//   0 dense:    B'(p, j) = b[p * brs + j * bcs]
//   2 batched im2col: p = (c, ky, kx), j = (n, oy, ox) runs over every image:
//               B'(p, j) = x[n, c, oy s - pad + ky, ox s - pad + kx] (image n at x + n * xstride),
//               and C(i, j) lives at c + n * cstride + i * ldc + oy * ow + ox,
//               so one GEMM computes a convolution of the whole batch in NCHW layout.
// and otherwise C is row-major with row stride ldc.
// `geo` points at i32s: c, h, w, kh, kw, stride, pad, oh, ow, xstride, cstride (the last two in
// elements, for mode 2 only).

import { hsum, madd } from "./simd.ts";

const MR = 6;
const NR = 8;
const KC_MAX = 384;
const MC = 96;
const NC = 512;
const PACKED_B_BYTES: usize = KC_MAX * NC * 4;
const PACKED_A_BYTES: usize = MC * KC_MAX * 4;
const TILE_BYTES: usize = MR * NR * 4;
const INFO_BYTES: usize = NR * 4 * 4;

/** Bytes of scratch one thread needs for gemm. */
export function gemmWorkspaceBytes(): i32 {
  return <i32>(PACKED_B_BYTES + PACKED_A_BYTES + TILE_BYTES + INFO_BYTES);
}

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

/** Packs rows [ic, ic + mc) x columns [pc, pc + kc) of A' into 6-row slivers at dst. */
function packA(a: usize, ars: i32, acs: i32, ic: i32, mc: i32, pc: i32, kc: i32, dst: usize): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const rows = min(MR, mc - ir);
    let d = dst + (<usize>(ir * kc) << 2);
    const i = ic + ir;
    if (rows == MR && ars == 1) {
      // Columns of A' are contiguous (A stored transposed): six floats per k.
      let src = a + (<usize>(pc * acs + i) << 2);
      const step = <usize>acs << 2;
      for (let p = 0; p < kc; p++) {
        v128.store(d, v128.load(src));
        store<u64>(d, load<u64>(src, 16), 16);
        src += step;
        d += 24;
      }
    } else if (rows == MR && acs == 1) {
      // Rows of A' are contiguous: transpose 6 x 4 blocks.
      const step = <usize>ars << 2;
      const r0 = a + (<usize>(i * ars + pc) << 2);
      const r1 = r0 + step;
      const r2 = r1 + step;
      const r3 = r2 + step;
      const r4 = r3 + step;
      const r5 = r4 + step;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const o = <usize>p << 2;
        const v0 = v128.load(r0 + o);
        const v1 = v128.load(r1 + o);
        const v2 = v128.load(r2 + o);
        const v3 = v128.load(r3 + o);
        const v4 = v128.load(r4 + o);
        const v5 = v128.load(r5 + o);
        const t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
        const t2 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7);
        const t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
        const t4 = v128.shuffle<f32>(v4, v5, 0, 4, 1, 5);
        const t5 = v128.shuffle<f32>(v4, v5, 2, 6, 3, 7);
        v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
        store<i64>(d, i64x2.extract_lane(t4, 0), 16);
        v128.store(d, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 24);
        store<i64>(d, i64x2.extract_lane(t4, 1), 40);
        v128.store(d, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 48);
        store<i64>(d, i64x2.extract_lane(t5, 0), 64);
        v128.store(d, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 72);
        store<i64>(d, i64x2.extract_lane(t5, 1), 88);
        d += 96;
      }
      for (; p < kc; p++) {
        const o = <usize>p << 2;
        store<f32>(d, load<f32>(r0 + o));
        store<f32>(d, load<f32>(r1 + o), 4);
        store<f32>(d, load<f32>(r2 + o), 8);
        store<f32>(d, load<f32>(r3 + o), 12);
        store<f32>(d, load<f32>(r4 + o), 16);
        store<f32>(d, load<f32>(r5 + o), 20);
        d += 24;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let r = 0; r < MR; r++) {
          let v: f32 = 0;
          if (r < rows) v = load<f32>(a + (<usize>((i + r) * ars + (pc + p) * acs) << 2));
          store<f32>(d + (<usize>r << 2), v);
        }
        d += 24;
      }
    }
  }
}

/** Packs B'(p, j) for p in [pc, pc + kc), j in [jc, jc + nc) of a dense B into 8-column slivers. */
function packBDense(
  b: usize,
  brs: i32,
  bcs: i32,
  pc: i32,
  kc: i32,
  jc: i32,
  nc: i32,
  dst: usize,
): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    let d = dst + (<usize>(jr * kc) << 2);
    const j = jc + jr;
    if (cols == NR && bcs == 1) {
      let src = b + (<usize>(pc * brs + j) << 2);
      const step = <usize>brs << 2;
      for (let p = 0; p < kc; p++) {
        v128.store(d, v128.load(src));
        v128.store(d, v128.load(src, 16), 16);
        src += step;
        d += 32;
      }
    } else if (cols == NR && brs == 1) {
      // B stored transposed (rows of B' are columns in memory): transpose 8 x 4 blocks.
      const step = <usize>bcs << 2;
      const r0 = b + (<usize>(j * bcs + pc) << 2);
      const r1 = r0 + step;
      const r2 = r1 + step;
      const r3 = r2 + step;
      const r4 = r3 + step;
      const r5 = r4 + step;
      const r6 = r5 + step;
      const r7 = r6 + step;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const o = <usize>p << 2;
        const v0 = v128.load(r0 + o);
        const v1 = v128.load(r1 + o);
        const v2 = v128.load(r2 + o);
        const v3 = v128.load(r3 + o);
        const v4 = v128.load(r4 + o);
        const v5 = v128.load(r5 + o);
        const v6 = v128.load(r6 + o);
        const v7 = v128.load(r7 + o);
        const t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
        const t2 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7);
        const t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
        const u0 = v128.shuffle<f32>(v4, v5, 0, 4, 1, 5);
        const u1 = v128.shuffle<f32>(v6, v7, 0, 4, 1, 5);
        const u2 = v128.shuffle<f32>(v4, v5, 2, 6, 3, 7);
        const u3 = v128.shuffle<f32>(v6, v7, 2, 6, 3, 7);
        v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
        v128.store(d, v128.shuffle<f32>(u0, u1, 0, 1, 4, 5), 16);
        v128.store(d, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 32);
        v128.store(d, v128.shuffle<f32>(u0, u1, 2, 3, 6, 7), 48);
        v128.store(d, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 64);
        v128.store(d, v128.shuffle<f32>(u2, u3, 0, 1, 4, 5), 80);
        v128.store(d, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 96);
        v128.store(d, v128.shuffle<f32>(u2, u3, 2, 3, 6, 7), 112);
        d += 128;
      }
      for (; p < kc; p++) {
        const o = <usize>p << 2;
        store<f32>(d, load<f32>(r0 + o));
        store<f32>(d, load<f32>(r1 + o), 4);
        store<f32>(d, load<f32>(r2 + o), 8);
        store<f32>(d, load<f32>(r3 + o), 12);
        store<f32>(d, load<f32>(r4 + o), 16);
        store<f32>(d, load<f32>(r5 + o), 20);
        store<f32>(d, load<f32>(r6 + o), 24);
        store<f32>(d, load<f32>(r7 + o), 28);
        d += 32;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let q = 0; q < NR; q++) {
          let v: f32 = 0;
          if (q < cols) v = load<f32>(b + (<usize>((pc + p) * brs + (j + q) * bcs) << 2));
          store<f32>(d + (<usize>q << 2), v);
        }
        d += 32;
      }
    }
  }
}

/**
 * Packs the batched im2col view (mode 2): rows (c, ky, kx), columns (n, oy, ox) over the batch.
 * `info` holds, per column of the sliver, the window origin and the image's base address.
 */
function packBIm2colBatched(
  x: usize,
  geo: usize,
  pc: i32,
  kc: i32,
  jc: i32,
  nc: i32,
  dst: usize,
  info: usize,
): void {
  const H = load<i32>(geo, 4);
  const W = load<i32>(geo, 8);
  const KH = load<i32>(geo, 12);
  const KW = load<i32>(geo, 16);
  const S = load<i32>(geo, 20);
  const P = load<i32>(geo, 24);
  const OW = load<i32>(geo, 32);
  const OHW = load<i32>(geo, 28) * OW;
  const XS = <usize>load<i32>(geo, 36) << 2;
  const KK = KH * KW;
  const HW = H * W;
  const hv = i32x4.splat(H);
  const wv = i32x4.splat(W);
  const safe = i32x4.splat(<i32>x);
  // 1x1, stride 1, no padding: the view is the image itself, contiguous across rows.
  const flat = KK == 1 && S == 1 && P == 0;
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const j = jc + jr;
    if (flat) {
      // The whole slivers from here that lie in one image: copied channel row by channel row,
      // each row read in order (one stream, not one per channel).
      const n0 = j / OHW;
      const pix0 = j - n0 * OHW;
      const run = min(nc - jr, OHW - pix0) >> 3;
      if (run > 0) {
        const step = <usize>HW << 2;
        const dstep = <usize>kc << 5;
        let src = x + <usize>n0 * XS + (<usize>(pc * HW + pix0) << 2);
        let drow = dst + (<usize>(jr * kc) << 2);
        for (let p = 0; p < kc; p++) {
          let s = src;
          let d = drow;
          for (let q = 0; q < run; q++) {
            v128.store(d, v128.load(s));
            v128.store(d, v128.load(s, 16), 16);
            s += 32;
            d += dstep;
          }
          src += step;
          drow += 32;
        }
        jr += (run - 1) * NR;
        continue;
      }
    }
    // Per column of the sliver: window origin (iy, ix) and the address of x[n, 0, iy, ix].
    for (let q = 0; q < NR; q++) {
      const jj = j + q;
      const ni = jj / OHW;
      const pix = jj - ni * OHW;
      const oy = pix / OW;
      const ox = pix - oy * OW;
      // Columns past the end read as padding: an origin far outside the image.
      const iy = q < cols ? oy * S - P : -0x40000000;
      const ix = ox * S - P;
      const e = info + (<usize>q << 2);
      store<i32>(e, iy);
      store<i32>(e, ix, 32);
      store<i32>(e, <i32>(x + <usize>ni * XS) + ((iy * W + ix) << 2), 64);
    }
    const n0 = j / OHW;
    const pix0 = j - n0 * OHW;
    const same = cols == NR && pix0 + NR <= OHW;
    const ox0 = pix0 - (pix0 / OW) * OW;
    const row = same && S == 1 && ox0 + NR <= OW;
    const iy0 = load<i32>(info);
    const ix0 = load<i32>(info, 32);
    const org = <usize>load<i32>(info, 64);
    const iyA = v128.load(info);
    const iyB = v128.load(info, 16);
    const ixA = v128.load(info, 32);
    const ixB = v128.load(info, 48);
    const pA = v128.load(info, 64);
    const pB = v128.load(info, 80);
    // Stride 2: a group of four columns (lanes 0-3 or 4-7) inside one output row of one image
    // reads eight consecutive inputs and keeps the even ones, where those lie inside the image row
    // (measured at 32->32, 3x3 pad 1, 28 -> 14, batch 128, 1 thread on a loaded machine: the
    // packer's share of the forward time 40% -> 30%, the forward 17.4 -> 18.1 GFLOP/s median).
    const iyA0 = i32x4.extract_lane(iyA, 0);
    const ixA0 = i32x4.extract_lane(ixA, 0);
    const pA0 = i32x4.extract_lane(pA, 0);
    const iyB0 = i32x4.extract_lane(iyB, 0);
    const ixB0 = i32x4.extract_lane(ixB, 0);
    const pB0 = i32x4.extract_lane(pB, 0);
    const rowA = S == 2 && iyA0 == i32x4.extract_lane(iyA, 3) &&
      i32x4.extract_lane(ixA, 3) - ixA0 == 6 && i32x4.extract_lane(pA, 3) - pA0 == 24;
    const rowB = S == 2 && iyB0 == i32x4.extract_lane(iyB, 3) &&
      i32x4.extract_lane(ixB, 3) - ixB0 == 6 && i32x4.extract_lane(pB, 3) - pB0 == 24;
    // Tap by tap (ky, kx), the channels of the block in turn: the tap fixes which way each group
    // of four columns is read (and its masks), so the loop over channels only adds the channel's
    // offset (rows ci KK + t of the block, KK rows of 32 bytes apart).
    const cstep = <usize>HW << 2;
    const dstep = <usize>KK << 5;
    const first = dst + (<usize>(jr * kc) << 2);
    for (let t = 0; t < KK; t++) {
      const ci0 = pc <= t ? 0 : (pc - t + KK - 1) / KK;
      const ci1 = pc + kc > t ? (pc + kc - t + KK - 1) / KK : 0;
      if (ci0 >= ci1) continue;
      const ky = t / KW;
      const kx = t - ky * KW;
      const tap = ky * W + kx;
      let co = <usize>ci0 * cstep;
      let d = first + (<usize>(ci0 * KK + t - pc) << 5);
      const iy = iy0 + ky;
      const ix = ix0 + kx;
      if (row && <u32>iy < <u32>H && ix >= 0 && ix + NR <= W) {
        let src = org + (<usize>tap << 2) + co;
        for (let ci = ci0; ci < ci1; ci++) {
          v128.store(d, v128.load(src));
          v128.store(d, v128.load(src, 16), 16);
          src += cstep;
          d += dstep;
        }
        continue;
      }
      // Lanes outside the image read a safe address (x, moved to the channel's plane) and are
      // masked to zero; a group inside one image row reads by the stride-2 path.
      const kyv = i32x4.splat(ky);
      const kxv = i32x4.splat(kx);
      const tapv = i32x4.splat(tap << 2);
      const xa = ixA0 + kx;
      const shufA = rowA && <u32>(iyA0 + ky) < <u32>H && xa >= -1 && xa + 8 <= W;
      const xb = ixB0 + kx;
      const shufB = rowB && <u32>(iyB0 + ky) < <u32>H && xb >= -1 && xb + 8 <= W;
      const mA = v128.and(i32x4.lt_u(i32x4.add(iyA, kyv), hv), i32x4.lt_u(i32x4.add(ixA, kxv), wv));
      const mB = v128.and(i32x4.lt_u(i32x4.add(iyB, kyv), hv), i32x4.lt_u(i32x4.add(ixB, kxv), wv));
      const aA = v128.bitselect(i32x4.add(pA, tapv), safe, mA);
      const aB = v128.bitselect(i32x4.add(pB, tapv), safe, mB);
      // From one before the row (inside memory) when the first lane is left padding.
      const sA = <usize>(pA0 + (tap << 2));
      const sB = <usize>(pB0 + (tap << 2));
      for (let ci = ci0; ci < ci1; ci++) {
        if (shufA) {
          let v = v128.shuffle<f32>(v128.load(sA + co), v128.load(sA + co, 16), 0, 2, 4, 6);
          if (xa < 0) v = f32x4.replace_lane(v, 0, 0);
          v128.store(d, v);
        } else {
          const a = i32x4.add(aA, i32x4.splat(<i32>co));
          let v = f32x4.splat(load<f32>(<usize>i32x4.extract_lane(a, 0)));
          v = f32x4.replace_lane(v, 1, load<f32>(<usize>i32x4.extract_lane(a, 1)));
          v = f32x4.replace_lane(v, 2, load<f32>(<usize>i32x4.extract_lane(a, 2)));
          v = f32x4.replace_lane(v, 3, load<f32>(<usize>i32x4.extract_lane(a, 3)));
          v128.store(d, v128.and(v, mA));
        }
        if (shufB) {
          let v = v128.shuffle<f32>(v128.load(sB + co), v128.load(sB + co, 16), 0, 2, 4, 6);
          if (xb < 0) v = f32x4.replace_lane(v, 0, 0);
          v128.store(d, v, 16);
        } else {
          const a = i32x4.add(aB, i32x4.splat(<i32>co));
          let v = f32x4.splat(load<f32>(<usize>i32x4.extract_lane(a, 0)));
          v = f32x4.replace_lane(v, 1, load<f32>(<usize>i32x4.extract_lane(a, 1)));
          v = f32x4.replace_lane(v, 2, load<f32>(<usize>i32x4.extract_lane(a, 2)));
          v = f32x4.replace_lane(v, 3, load<f32>(<usize>i32x4.extract_lane(a, 3)));
          v128.store(d, v128.and(v, mB), 16);
        }
        co += cstep;
        d += dstep;
      }
    }
  }
}

/**
 * Writes the valid rows x cols of a tile into the batched C of mode 2 (adding when acc): column
 * jj of row i goes to c + (jj / ohw) * cs + i * ldc + jj % ohw (bytes: cs, ldc).
 */
function storeTileBatched(
  tile: usize,
  c: usize,
  ldc: usize,
  cs: usize,
  ohw: i32,
  i: i32,
  jj: i32,
  rows: i32,
  cols: i32,
  acc: bool,
): void {
  for (let q = 0; q < cols; q++) {
    const col = jj + q;
    const ni = col / ohw;
    const pix = col - ni * ohw;
    let o = c + <usize>ni * cs + <usize>i * ldc + (<usize>pix << 2);
    let t = tile + (<usize>q << 2);
    for (let r = 0; r < rows; r++) {
      let v = load<f32>(t);
      if (acc) v += load<f32>(o);
      store<f32>(o, v);
      o += ldc;
      t += NR * 4;
    }
  }
}

/** Writes the valid rows x cols of a tile into dense C (adding when acc). */
function storeTile(tile: usize, c: usize, ldc: i32, rows: i32, cols: i32, acc: bool): void {
  for (let r = 0; r < rows; r++) {
    const t = tile + (<usize>(r * NR) << 2);
    const o = c + (<usize>(r * ldc) << 2);
    for (let q = 0; q < cols; q++) {
      const off = <usize>q << 2;
      let v = load<f32>(t + off);
      if (acc) v += load<f32>(o + off);
      store<f32>(o + off, v);
    }
  }
}

/**
 * The K block for inner size k: k split into equal blocks of at most KC_MAX (a 3x3 convolution's
 * k = 9 c then runs as one block of 288 for 32 channels, two of 288 for 64, not 256 + a thin rest
 * whose C loads and stores would cost as much as its multiply-adds).
 */
@inline
export function kcBlock(k: i32): i32 {
  const blocks = (k + KC_MAX - 1) / KC_MAX;
  return (k + blocks - 1) / blocks;
}

/**
 * Packs all of A' (rows [0, m)) once, in the layout gemm reads through `apacked`: block (pc, ic)
 * at element offset pc * mpad + ic * kc, with mpad = m rounded up to 6. Threads that split C by
 * columns then share one packed A instead of each packing it again.
 */
export function packAAll(a: usize, ars: i32, acs: i32, m: i32, k: i32, dst: usize): void {
  const mpad = (m + MR - 1) / MR * MR;
  const kb = kcBlock(k);
  for (let pc = 0; pc < k; pc += kb) {
    const kc = min(kb, k - pc);
    for (let ic = 0; ic < m; ic += MC) {
      const mc = min(MC, m - ic);
      packA(a, ars, acs, ic, mc, pc, kc, dst + (<usize>(pc * mpad + ic * kc) << 2));
    }
  }
}

/**
 * C[i0..i1, j0..j1] (+)= A' B' with inner size k (see the top of this file for the modes).
 * `apacked` is 0, or A' rows [i0, i1) packed by packAAll; `work` is this thread's scratch of
 * gemmWorkspaceBytes() bytes.
 */
export function gemm(
  i0: i32,
  i1: i32,
  j0: i32,
  j1: i32,
  k: i32,
  a: usize,
  ars: i32,
  acs: i32,
  bmode: i32,
  b: usize,
  brs: i32,
  bcs: i32,
  c: usize,
  ldc: i32,
  accumulate: i32,
  geo: usize,
  apacked: usize,
  work: usize,
): void {
  const pb = work;
  const pa = pb + PACKED_B_BYTES;
  // Rows of A' in a pre-packed whole-matrix layout (see packAAll), rounded up to the tile.
  const mpad = (i1 - i0 + MR - 1) / MR * MR;
  const tile = pa + PACKED_A_BYTES;
  const info = tile + TILE_BYTES;
  const ldcBytes = <usize>ldc << 2;
  const batched = bmode == 2;
  const ohw = batched ? load<i32>(geo, 28) * load<i32>(geo, 32) : 1;
  const cs: usize = batched ? <usize>load<i32>(geo, 40) << 2 : 0;
  const kb = kcBlock(k);
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    for (let pc = 0; pc < k; pc += kb) {
      const kc = min(kb, k - pc);
      if (bmode == 0) packBDense(b, brs, bcs, pc, kc, jc, nc, pb);
      else packBIm2colBatched(b, geo, pc, kc, jc, nc, pb, info);
      const acc = accumulate != 0 || pc > 0;
      for (let ic = i0; ic < i1; ic += MC) {
        const mc = min(MC, i1 - ic);
        let ablock = pa;
        if (apacked != 0) ablock = apacked + (<usize>(pc * mpad + (ic - i0) * kc) << 2);
        else packA(a, ars, acs, ic, mc, pc, kc, pa);
        for (let jr = 0; jr < nc; jr += NR) {
          const cols = min(NR, nc - jr);
          const bp = pb + (<usize>(jr * kc) << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            const rows = min(MR, mc - ir);
            const ap = ablock + (<usize>(ir * kc) << 2);
            if (batched) {
              const jj = jc + jr;
              const ni = jj / ohw;
              const pix = jj - ni * ohw;
              const cp = c + <usize>ni * cs + (<usize>(ic + ir) * ldcBytes) + (<usize>pix << 2);
              if (rows == MR && cols == NR && pix + NR <= ohw) {
                micro(kc, ap, bp, cp, ldcBytes, acc);
              } else {
                micro(kc, ap, bp, tile, NR * 4, false);
                storeTileBatched(tile, c, ldcBytes, cs, ohw, ic + ir, jj, rows, cols, acc);
              }
              continue;
            }
            const cp = c + (<usize>(ic + ir) * ldcBytes) + (<usize>(jc + jr) << 2);
            if (rows == MR && cols == NR) {
              micro(kc, ap, bp, cp, ldcBytes, acc);
            } else {
              micro(kc, ap, bp, tile, NR * 4, false);
              storeTile(tile, cp, ldc, rows, cols, acc);
            }
          }
        }
      }
    }
  }
}

/**
 * The filter for the input gradient of a stride-1 convolution as a forward convolution:
 * out[c][o][kk - 1 - t] = w[o][c][t] (channels swapped, window reversed), for output channels
 * c in [begin, end).
 */
export function flipFilter(
  w: usize,
  out: usize,
  o: i32,
  c: i32,
  kk: i32,
  begin: i32,
  end: i32,
): void {
  for (let ci = begin; ci < end; ci++) {
    for (let oi = 0; oi < o; oi++) {
      const src = w + (<usize>((oi * c + ci) * kk) << 2);
      const dst = out + (<usize>((ci * o + oi) * kk) << 2);
      for (let t = 0; t < kk; t++) {
        store<f32>(dst + (<usize>(kk - 1 - t) << 2), load<f32>(src + (<usize>t << 2)));
      }
    }
  }
}

/** Writes rows [begin, end) (row = (c, ky, kx), oh*ow long) of the im2col matrix of image x. */
export function im2col(x: usize, geo: usize, col: usize, begin: i32, end: i32): void {
  const H = load<i32>(geo, 4);
  const W = load<i32>(geo, 8);
  const KH = load<i32>(geo, 12);
  const KW = load<i32>(geo, 16);
  const S = load<i32>(geo, 20);
  const P = load<i32>(geo, 24);
  const OH = load<i32>(geo, 28);
  const OW = load<i32>(geo, 32);
  const KK = KH * KW;
  for (let row = begin; row < end; row++) {
    const ci = row / KK;
    const rem = row - ci * KK;
    const ky = rem / KW;
    const kx = rem - ky * KW;
    const plane = x + (<usize>(ci * H * W) << 2);
    let d = col + (<usize>row * <usize>(OH * OW) << 2);
    // Output columns whose input column is inside the image: ox in [lo, hi).
    const lo = min(OW, max(0, (P - kx + S - 1) / S));
    const last = W - 1 + P - kx;
    const hi = last < 0 ? lo : max(lo, min(OW, last / S + 1));
    for (let oy = 0; oy < OH; oy++) {
      const iy = oy * S - P + ky;
      if (iy < 0 || iy >= H) {
        memory.fill(d, 0, <usize>OW << 2);
      } else {
        if (lo > 0) memory.fill(d, 0, <usize>lo << 2);
        const src = plane + (<usize>(iy * W) << 2);
        if (S == 1) {
          const from = src + (<usize>(lo - P + kx) << 2);
          memory.copy(d + (<usize>lo << 2), from, <usize>(hi - lo) << 2);
        } else {
          let ox = lo;
          if (S == 2) {
            // Four outputs from eight consecutive inputs (the even ones), while the eighth is
            // inside the row.
            for (; ox + 4 <= hi && 2 * ox - P + kx + 8 <= W; ox += 4) {
              const s0 = src + (<usize>(2 * ox - P + kx) << 2);
              const v = v128.shuffle<f32>(v128.load(s0), v128.load(s0, 16), 0, 2, 4, 6);
              v128.store(d + (<usize>ox << 2), v);
            }
          }
          for (; ox < hi; ox++) {
            store<f32>(d + (<usize>ox << 2), load<f32>(src + (<usize>(ox * S - P + kx) << 2)));
          }
        }
        if (hi < OW) memory.fill(d + (<usize>hi << 2), 0, <usize>(OW - hi) << 2);
      }
      d += <usize>OW << 2;
    }
  }
}

/** Adds the im2col-shaped `col` back into image dx for input channels [begin, end). */
export function col2im(col: usize, geo: usize, dx: usize, begin: i32, end: i32): void {
  const H = load<i32>(geo, 4);
  const W = load<i32>(geo, 8);
  const KH = load<i32>(geo, 12);
  const KW = load<i32>(geo, 16);
  const S = load<i32>(geo, 20);
  const P = load<i32>(geo, 24);
  const OH = load<i32>(geo, 28);
  const OW = load<i32>(geo, 32);
  for (let ci = begin; ci < end; ci++) {
    const plane = dx + (<usize>(ci * H * W) << 2);
    for (let ky = 0; ky < KH; ky++) {
      for (let kx = 0; kx < KW; kx++) {
        const row = (ci * KH + ky) * KW + kx;
        let s = col + (<usize>row * <usize>(OH * OW) << 2);
        const lo = min(OW, max(0, (P - kx + S - 1) / S));
        const last = W - 1 + P - kx;
        const hi = last < 0 ? lo : max(lo, min(OW, last / S + 1));
        for (let oy = 0; oy < OH; oy++) {
          const iy = oy * S - P + ky;
          if (iy >= 0 && iy < H) {
            const d = plane + (<usize>(iy * W) << 2);
            let ox = lo;
            if (S == 2) {
              // Four outputs into eight consecutive inputs (the even ones; the odd ones get + 0),
              // while the eighth is inside the row (measured: the stride-2 input gradient at
              // 32->32 @28, batch 128, 1 thread, 18.8 -> 20.1 GFLOP/s median; 64->64 @14 14.3 ->
              // 15.7).
              const zero = f32x4.splat(0);
              for (; ox + 4 <= hi && 2 * ox - P + kx + 8 <= W; ox += 4) {
                const o = d + (<usize>(2 * ox - P + kx) << 2);
                const v = v128.load(s + (<usize>ox << 2));
                v128.store(o, f32x4.add(v128.load(o), v128.shuffle<f32>(v, zero, 0, 4, 1, 4)));
                const w = v128.shuffle<f32>(v, zero, 2, 4, 3, 4);
                v128.store(o, f32x4.add(v128.load(o, 16), w), 16);
              }
            }
            for (; ox < hi; ox++) {
              const o = d + (<usize>(ox * S - P + kx) << 2);
              store<f32>(o, load<f32>(o) + load<f32>(s + (<usize>ox << 2)));
            }
          }
          s += <usize>OW << 2;
        }
      }
    }
  }
}

/**
 * The filter gradient of a convolution, by groups of images: for each group g in [begin, end),
 * partial[g] (o x ckk, ckk = c kh kw) = the sum over images i in [g gsize, min(n, g gsize + gsize))
 * of dy[i] (o x oh ow) times the transposed im2col matrix of x[i], in image order. A group is
 * computed by one thread, so the result does not depend on how groups are split over threads.
 * `scratch` is this thread's: gemmWorkspaceBytes() bytes, then room for one im2col matrix
 * (none when `pointwise`: 1x1, stride 1, no padding, where the image is its own matrix).
 */
export function convFilterGrad(
  x: usize,
  dy: usize,
  partial: usize,
  n: i32,
  gsize: i32,
  o: i32,
  pointwise: i32,
  geo: usize,
  begin: i32,
  end: i32,
  scratch: usize,
): void {
  const C = load<i32>(geo);
  const HW = load<i32>(geo, 4) * load<i32>(geo, 8);
  const CKK = C * load<i32>(geo, 12) * load<i32>(geo, 16);
  const OHW = load<i32>(geo, 28) * load<i32>(geo, 32);
  const col = scratch + <usize>gemmWorkspaceBytes();
  for (let g = begin; g < end; g++) {
    const dst = partial + (<usize>g * <usize>(o * CKK) << 2);
    const first = g * gsize;
    const last = min(n, first + gsize);
    for (let i = first; i < last; i++) {
      const xi = x + (<usize>i * <usize>(C * HW) << 2);
      const di = dy + (<usize>i * <usize>(o * OHW) << 2);
      const acc = i > first ? 1 : 0;
      if (pointwise != 0) {
        gemm(0, o, 0, CKK, OHW, di, OHW, 1, 0, xi, 1, HW, dst, CKK, acc, geo, 0, scratch);
      } else {
        im2col(xi, geo, col, 0, CKK);
        gemm(0, o, 0, CKK, OHW, di, OHW, 1, 0, col, 1, OHW, dst, CKK, acc, geo, 0, scratch);
      }
    }
  }
}

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
 * [begin, end), with B' rows contiguous (row stride bps elements). Columns by fours, the n % 4 rest
 * one by one (the same columns for every row, so the bits do not depend on the thread split).
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
      v128.store(cr + o, u);
      v128.store(cr2 + o, w);
    }
    for (; j < n; j++) {
      const o = <usize>j << 2;
      store<f32>(cr + o, skinnyKDot(e0, e1, e2, e3, b0 + o, b1 + o, b2 + o, b3 + o, k));
      store<f32>(cr2 + o, skinnyKDot(f0, f1, f2, f3, b0 + o, b1 + o, b2 + o, b3 + o, k));
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
      v128.store(cr + o, u);
    }
    for (; j < n; j++) {
      const o = <usize>j << 2;
      store<f32>(cr + o, skinnyKDot(e0, e1, e2, e3, b0 + o, b1 + o, b2 + o, b3 + o, k));
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
