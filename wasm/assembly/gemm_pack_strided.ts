// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the B packer of a strided convolution's filter gradient (gemm.ts's mode 3). The
// filter gradient of an image is dy (o x oh ow) times the transposed im2col matrix of x; instead of
// writing that matrix and packing its transpose, this packer reads the image and writes the packed
// slivers, with the columns in tap-major order (tap, c), so that a sliver of eight columns is one
// tap of eight channels and each of its rows (an output pixel) is two vectors of a 4x4 transpose.
// The host puts the columns back in (c, tap) order once the products are summed (wasm/ops/conv.ts);
// each value is the same sum of the same products in the same order, so the bits do not change.

import { NR } from "./gemm_blocking";

/**
 * Packs B'(p, j) for output pixels p = oy ow + ox in [pc, pc + kc) and columns j in [jc, jc + nc),
 * j = tap c_in + c with tap = ky kw + kx: B'(p, j) = x[c, oy s - pad + ky, ox s - pad + kx] of
 * the image at x, 0 in the padding; `geo` as in gemm.ts. A sliver of one tap and eight channels
 * at stride 2 is gathered four pixels at a time; the others go value by value.
 */
export function packBIm2colT(
  x: usize,
  geo: usize,
  pc: i32,
  kc: i32,
  jc: i32,
  nc: i32,
  dst: usize,
): void {
  const C = load<i32>(geo);
  const H = load<i32>(geo, 4);
  const W = load<i32>(geo, 8);
  const KW = load<i32>(geo, 16);
  const S = load<i32>(geo, 20);
  const P = load<i32>(geo, 24);
  const OW = load<i32>(geo, 32);
  if (S == 2 && C % NR == 0) {
    // Every sliver is one tap of eight channels: the nine (kh kw) taps of eight channels one
    // after another, so that their planes stay in L1 (tap-major order would read the whole
    // image once a tap).
    const taps = load<i32>(geo, 12) * KW;
    for (let c0 = 0; c0 < C; c0 += NR) {
      const plane = x + (<usize>(c0 * H * W) << 2);
      for (let tap = 0; tap < taps; tap++) {
        const jr = tap * C + c0 - jc;
        if (jr < 0 || jr >= nc) continue;
        const ky = tap / KW;
        const kx = tap - ky * KW;
        const d = dst + (<usize>(jr * kc) << 2);
        if (KW == 3 && kx == 0 && jr + 2 * C + NR <= nc) {
          // A window row's three taps from the same reads.
          sliversStride2(plane, H, W, OW, ky - P, -P, pc, kc, d, <usize>(C * kc) << 2, 3);
          tap += 2;
        } else if (jr + NR <= nc) {
          sliversStride2(plane, H, W, OW, ky - P, kx - P, pc, kc, d, 0, 1);
        } else {
          sliverByValue(x, C, H, W, KW, S, P, OW, jc + jr, nc - jr, pc, kc, d);
        }
      }
    }
    return;
  }
  for (let jr = 0; jr < nc; jr += NR) {
    const j = jc + jr;
    const cols = min(NR, nc - jr);
    const tap = j / C;
    const c0 = j - tap * C;
    const ky = tap / KW;
    const kx = tap - ky * KW;
    const d = dst + (<usize>(jr * kc) << 2);
    if (S == 2 && cols == NR && c0 + NR <= C) {
      sliversStride2(x + (<usize>(c0 * H * W) << 2), H, W, OW, ky - P, kx - P, pc, kc, d, 0, 1);
    } else {
      sliverByValue(x, C, H, W, KW, S, P, OW, j, cols, pc, kc, d);
    }
  }
}

/** One sliver value by value: columns j .. j + cols - 1 (the rest of the eight zero). */
function sliverByValue(
  x: usize,
  C: i32,
  H: i32,
  W: i32,
  KW: i32,
  S: i32,
  P: i32,
  OW: i32,
  j: i32,
  cols: i32,
  pc: i32,
  kc: i32,
  d: usize,
): void {
  for (let p = pc; p < pc + kc; p++) {
    const oy = p / OW;
    const ox = p - oy * OW;
    for (let q = 0; q < NR; q++) {
      let v: f32 = 0;
      if (q < cols) {
        const tap = (j + q) / C;
        const c = j + q - tap * C;
        const ky = tap / KW;
        const iy = oy * S - P + ky;
        const ix = ox * S - P + tap - ky * KW;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
          v = load<f32>(x + (<usize>((c * H + iy) * W + ix) << 2));
        }
      }
      store<f32>(d + (<usize>q << 2), v);
    }
    d += NR * 4;
  }
}

/**
 * The slivers of `taps` (1, or 3: a window row's kx = 0, 1, 2) stride-2 taps of the eight channel
 * planes from `plane` on, window offset dy0, dx0 (kx = 0's) from the output pixel's 2 oy, 2 ox,
 * `step` bytes apart from d on: four output pixels of a row at a time, each channel's values
 * gathered from one read of its row for every tap, then transposed into four rows of each sliver.
 * A group whose reads would leave the first channel's plane (the first row's left padding, the
 * last row's right end) is gathered value by value.
 */
function sliversStride2(
  plane: usize,
  H: i32,
  W: i32,
  OW: i32,
  dy0: i32,
  dx0: i32,
  pc: i32,
  kc: i32,
  d: usize,
  step: usize,
  taps: i32,
): void {
  const HW = H * W;
  const pb = <usize>HW << 2;
  const end = pc + kc;
  // The floats a group's vector reads span: two vectors a row, three for a window row.
  const span = taps == 1 ? 8 : 12;
  let oy = pc / OW;
  let ox = pc - oy * OW;
  const zero = f32x4.splat(0);
  const lanes = i32x4(0, 2, 4, 6);
  const all = i32x4.splat(-1);
  for (let p = pc; p < end; ) {
    const cnt = min(4, min(OW - ox, end - p));
    const iy = 2 * oy + dy0;
    const ix0 = 2 * ox + dx0;
    const r0 = iy * W + ix0;
    if (iy < 0 || iy >= H) {
      for (let t = 0; t < taps; t++) {
        for (let m = 0; m < cnt; m++) {
          const o = d + <usize>t * step + (<usize>m << 5);
          v128.store(o, zero);
          v128.store(o, zero, 16);
        }
      }
    } else if (r0 >= 0 && r0 + span <= HW) {
      const src = plane + (<usize>r0 << 2);
      if (ix0 < 0 || ix0 + 2 * cnt + taps - 3 >= W) {
        // Lanes whose column is in the padding are zeroed (only at the row's ends).
        const ix = i32x4.add(i32x4.splat(ix0), lanes);
        const w = i32x4.splat(W);
        const z = i32x4.splat(0);
        const m0 = v128.and(i32x4.ge_s(ix, z), i32x4.lt_s(ix, w));
        const ix1 = i32x4.add(ix, i32x4.splat(1));
        const m1 = v128.and(i32x4.ge_s(ix1, z), i32x4.lt_s(ix1, w));
        const ix2 = i32x4.add(ix, i32x4.splat(2));
        const m2 = v128.and(i32x4.ge_s(ix2, z), i32x4.lt_s(ix2, w));
        if (taps == 1) {
          gatherFour(src, pb, m0, true, d, cnt);
          gatherFour(src + 4 * pb, pb, m0, true, d + 16, cnt);
        } else {
          gatherFourRow(src, pb, m0, m1, m2, true, d, step, cnt);
          gatherFourRow(src + 4 * pb, pb, m0, m1, m2, true, d + 16, step, cnt);
        }
      } else if (taps == 1) {
        gatherFour(src, pb, all, false, d, cnt);
        gatherFour(src + 4 * pb, pb, all, false, d + 16, cnt);
      } else {
        gatherFourRow(src, pb, all, all, all, false, d, step, cnt);
        gatherFourRow(src + 4 * pb, pb, all, all, all, false, d + 16, step, cnt);
      }
    } else {
      for (let t = 0; t < taps; t++) {
        const o = d + <usize>t * step;
        for (let m = 0; m < cnt; m++) {
          const ix = ix0 + t + 2 * m;
          const inside = ix >= 0 && ix < W;
          for (let q = 0; q < NR; q++) {
            const v: f32 = inside ? load<f32>(plane + <usize>q * pb + (<usize>(iy * W + ix) << 2)) : 0;
            store<f32>(o + (<usize>((m << 3) + q) << 2), v);
          }
        }
      }
    }
    d += <usize>cnt << 5;
    p += cnt;
    ox += cnt;
    if (ox == OW) {
      ox = 0;
      oy++;
    }
  }
}

/**
 * Four channels (planes pb bytes apart from src) at four stride-2 columns, `masked` by `mask`,
 * transposed: row m of the sliver (32 bytes from d on) gets the four channels' values of pixel m,
 * for m < cnt.
 */
@inline
function gatherFour(src: usize, pb: usize, mask: v128, masked: bool, d: usize, cnt: i32): void {
  let v0 = v128.shuffle<f32>(v128.load(src), v128.load(src, 16), 0, 2, 4, 6);
  let v1 = v128.shuffle<f32>(v128.load(src + pb), v128.load(src + pb, 16), 0, 2, 4, 6);
  let v2 = v128.shuffle<f32>(v128.load(src + 2 * pb), v128.load(src + 2 * pb, 16), 0, 2, 4, 6);
  let v3 = v128.shuffle<f32>(v128.load(src + 3 * pb), v128.load(src + 3 * pb, 16), 0, 2, 4, 6);
  if (masked) {
    v0 = v128.and(v0, mask);
    v1 = v128.and(v1, mask);
    v2 = v128.and(v2, mask);
    v3 = v128.and(v3, mask);
  }
  transposeStore(v0, v1, v2, v3, d, cnt);
}

/** Four channels' vectors over four pixels, transposed: pixel m's four at d + 32 m, m < cnt. */
@inline
function transposeStore(v0: v128, v1: v128, v2: v128, v3: v128, d: usize, cnt: i32): void {
  const t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7);
  const t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
  v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  if (cnt > 1) v128.store(d, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 32);
  if (cnt > 2) v128.store(d, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 64);
  if (cnt > 3) v128.store(d, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 96);
}

/**
 * gatherFour for a window row's three taps: four channels (planes pb bytes apart from src), each
 * read once for the three taps, each tap's four rows of the sliver at d + kx step.
 */
@inline
function gatherFourRow(
  src: usize,
  pb: usize,
  m0: v128,
  m1: v128,
  m2: v128,
  masked: bool,
  d: usize,
  step: usize,
  cnt: i32,
): void {
  const a0 = v128.load(src), b0 = v128.load(src, 16), c0 = v128.load(src, 32);
  const a1 = v128.load(src + pb), b1 = v128.load(src + pb, 16), c1 = v128.load(src + pb, 32);
  const a2 = v128.load(src + 2 * pb), b2 = v128.load(src + 2 * pb, 16), c2 = v128.load(src + 2 * pb, 32);
  const a3 = v128.load(src + 3 * pb), b3 = v128.load(src + 3 * pb, 16), c3 = v128.load(src + 3 * pb, 32);
  // kx = 2: the odd lanes' neighbours, a lane on (b's lanes 0, 2 and c's lane 0 after a's 2).
  let e0 = v128.shuffle<f32>(v128.shuffle<f32>(a0, b0, 2, 4, 6, 7), c0, 0, 1, 2, 4);
  let e1 = v128.shuffle<f32>(v128.shuffle<f32>(a1, b1, 2, 4, 6, 7), c1, 0, 1, 2, 4);
  let e2 = v128.shuffle<f32>(v128.shuffle<f32>(a2, b2, 2, 4, 6, 7), c2, 0, 1, 2, 4);
  let e3 = v128.shuffle<f32>(v128.shuffle<f32>(a3, b3, 2, 4, 6, 7), c3, 0, 1, 2, 4);
  let o0 = v128.shuffle<f32>(a0, b0, 1, 3, 5, 7);
  let o1 = v128.shuffle<f32>(a1, b1, 1, 3, 5, 7);
  let o2 = v128.shuffle<f32>(a2, b2, 1, 3, 5, 7);
  let o3 = v128.shuffle<f32>(a3, b3, 1, 3, 5, 7);
  let z0 = v128.shuffle<f32>(a0, b0, 0, 2, 4, 6);
  let z1 = v128.shuffle<f32>(a1, b1, 0, 2, 4, 6);
  let z2 = v128.shuffle<f32>(a2, b2, 0, 2, 4, 6);
  let z3 = v128.shuffle<f32>(a3, b3, 0, 2, 4, 6);
  if (masked) {
    z0 = v128.and(z0, m0); z1 = v128.and(z1, m0); z2 = v128.and(z2, m0); z3 = v128.and(z3, m0);
    o0 = v128.and(o0, m1); o1 = v128.and(o1, m1); o2 = v128.and(o2, m1); o3 = v128.and(o3, m1);
    e0 = v128.and(e0, m2); e1 = v128.and(e1, m2); e2 = v128.and(e2, m2); e3 = v128.and(e3, m2);
  }
  transposeStore(z0, z1, z2, z3, d, cnt);
  transposeStore(o0, o1, o2, o3, d + step, cnt);
  transposeStore(e0, e1, e2, e3, d + 2 * step, cnt);
}
