// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the filter transform of Winograd's F(4x4, 3x3) (winograd_f4x4.ts has the
// matrices): U = G g G^T for every (output, input) channel pair, computed in f64 and rounded once,
// packed for the micro-kernel as winograd_common.ts lays it out, four output channels at a time
// where they share a sliver (two filters an f64 vector, the same operations, so the same bits).

import { kcBlock } from "./gemm_blocking";
import { filterAt, mRows, packedOffset, zeroPadRows } from "./winograd_common";

/** Row r of G applied to (g0, g1, g2), in f64 (multiplications by the reciprocals, no division). */
@inline
function gRow(g0: f64, g1: f64, g2: f64, r: i32): f64 {
  if (r == 0) return g0 * 0.25;
  if (r == 1) return (g0 + g1 + g2) * (-1.0 / 6.0);
  if (r == 2) return (g0 - g1 + g2) * (-1.0 / 6.0);
  if (r == 3) return g0 * (1.0 / 24.0) + g1 * (1.0 / 12.0) + g2 * (1.0 / 6.0);
  if (r == 4) return g0 * (1.0 / 24.0) - g1 * (1.0 / 12.0) + g2 * (1.0 / 6.0);
  return g2;
}

/** Tap i = 3 ky + kx of the 3x3 filter at src (tap 8 - i when `flip`), in f64. */
@inline
function tap(src: usize, i: i32, flip: i32): f64 {
  return <f64>load<f32>(src + (<usize>(flip != 0 ? 8 - i : i) << 2));
}

// G's factors in f64 pairs, for the transform of four filters at once.
const KG = memory.data<f64>([
  0.25, 0.25,
  -1.0 / 6.0, -1.0 / 6.0,
  1.0 / 24.0, 1.0 / 24.0,
  1.0 / 12.0, 1.0 / 12.0,
  1.0 / 6.0, 1.0 / 6.0,
]);

/** gRow on two filters at once (f64 lanes), the same operations in the same order. */
@inline
function gRow2(g0: v128, g1: v128, g2: v128, r: i32): v128 {
  if (r == 0) return f64x2.mul(g0, v128.load(KG));
  if (r == 1) return f64x2.mul(f64x2.add(f64x2.add(g0, g1), g2), v128.load(KG, 16));
  if (r == 2) return f64x2.mul(f64x2.add(f64x2.sub(g0, g1), g2), v128.load(KG, 16));
  const a = f64x2.mul(g0, v128.load(KG, 32));
  const b = f64x2.mul(g1, v128.load(KG, 48));
  const c = f64x2.mul(g2, v128.load(KG, 64));
  if (r == 3) return f64x2.add(f64x2.add(a, b), c);
  if (r == 4) return f64x2.add(f64x2.sub(a, b), c);
  return g2;
}

/** Tap i of filters m and m + 1 (at p and q) as the two f64 lanes. */
@inline
function tap2(p: usize, q: usize, i: i32, flip: i32): v128 {
  return f64x2.replace_lane(f64x2.splat(tap(p, i, flip)), 1, tap(q, i, flip));
}

/** filter4's work for effective output channel m and input channel k. */
@inline
function filterOne(w: usize, ut: usize, m: i32, k: i32, c: i32, flip: i32, mp: i32, ki: i32, kb: i32, plane: usize): void {
  const src = filterAt(w, m, k, c, flip);
  const dst = ut + packedOffset(m, k, mp, ki, kb);
  // g[ky][kx] as g(3 ky + kx), flipped in space when asked.
  const g0 = tap(src, 0, flip), g1 = tap(src, 1, flip), g2 = tap(src, 2, flip);
  const g3 = tap(src, 3, flip), g4 = tap(src, 4, flip), g5 = tap(src, 5, flip);
  const g6 = tap(src, 6, flip), g7 = tap(src, 7, flip), g8 = tap(src, 8, flip);
  for (let r = 0; r < 6; r++) {
    // Row r of G g: G's row r applied down each of the filter's three columns; then G along it.
    const a0 = gRow(g0, g3, g6, r);
    const a1 = gRow(g1, g4, g7, r);
    const a2 = gRow(g2, g5, g8, r);
    const row = dst + <usize>(r * 6) * plane;
    for (let j = 0; j < 6; j++) store<f32>(row + <usize>j * plane, <f32>gRow(a0, a1, a2, j));
  }
}

/**
 * filter4's work for effective output channels m .. m + 3 (m a multiple of 4: their values lie
 * side by side in the packed U) and input channel k, two filters a vector in f64: the same
 * operations as filterOne's, so the same bits.
 */
@inline
function filterFour(w: usize, ut: usize, m: i32, k: i32, c: i32, flip: i32, mp: i32, ki: i32, kb: i32, plane: usize): void {
  const s0 = filterAt(w, m, k, c, flip), s1 = filterAt(w, m + 1, k, c, flip);
  const s2 = filterAt(w, m + 2, k, c, flip), s3 = filterAt(w, m + 3, k, c, flip);
  const dst = ut + packedOffset(m, k, mp, ki, kb);
  const l0 = tap2(s0, s1, 0, flip), l1 = tap2(s0, s1, 1, flip), l2 = tap2(s0, s1, 2, flip);
  const l3 = tap2(s0, s1, 3, flip), l4 = tap2(s0, s1, 4, flip), l5 = tap2(s0, s1, 5, flip);
  const l6 = tap2(s0, s1, 6, flip), l7 = tap2(s0, s1, 7, flip), l8 = tap2(s0, s1, 8, flip);
  const h0 = tap2(s2, s3, 0, flip), h1 = tap2(s2, s3, 1, flip), h2 = tap2(s2, s3, 2, flip);
  const h3 = tap2(s2, s3, 3, flip), h4 = tap2(s2, s3, 4, flip), h5 = tap2(s2, s3, 5, flip);
  const h6 = tap2(s2, s3, 6, flip), h7 = tap2(s2, s3, 7, flip), h8 = tap2(s2, s3, 8, flip);
  for (let r = 0; r < 6; r++) {
    const a0 = gRow2(l0, l3, l6, r), a1 = gRow2(l1, l4, l7, r), a2 = gRow2(l2, l5, l8, r);
    const b0 = gRow2(h0, h3, h6, r), b1 = gRow2(h1, h4, h7, r), b2 = gRow2(h2, h5, h8, r);
    const row = dst + <usize>(r * 6) * plane;
    for (let j = 0; j < 6; j++) {
      const lo = f32x4.demote_f64x2_zero(gRow2(a0, a1, a2, j));
      const hi = f32x4.demote_f64x2_zero(gRow2(b0, b1, b2, j));
      v128.store(row + <usize>j * plane, v128.shuffle<f32>(lo, hi, 0, 1, 4, 5));
    }
  }
}

/**
 * The transformed filter U[xi][m][k] = (G g G^T)[xi] (xi = 6 row + column) for effective output
 * channel m and input channel k, with g = w[m][k] (w is o x c x 3 x 3), or, when `flip`, the
 * filter of the input gradient (output channels the c inputs of w, g[ky][kx] =
 * w[k][m][2 - ky][2 - kx]); each xi's U packed as filter2 packs it (winograd_f2x2.ts), the rows of
 * effective output channels [begin, end), and the zero rows past mo when end is mo. Four output
 * channels at a time where they share a sliver of U.
 */
export function filter4(w: usize, ut: usize, o: i32, c: i32, flip: i32, begin: i32, end: i32): void {
  const mo = flip != 0 ? c : o;
  const ki = flip != 0 ? o : c;
  const mp = mRows(mo);
  const kb = kcBlock(ki);
  const plane = <usize>(mp * ki) << 2;
  if (end == mo) zeroPadRows(ut, 36, mo, ki);
  let m = begin;
  for (; m < end && (m & 3) != 0; m++) {
    for (let k = 0; k < ki; k++) filterOne(w, ut, m, k, c, flip, mp, ki, kb, plane);
  }
  for (; m + 4 <= end; m += 4) {
    for (let k = 0; k < ki; k++) filterFour(w, ut, m, k, c, flip, mp, ki, kb, plane);
  }
  for (; m < end; m++) {
    for (let k = 0; k < ki; k++) filterOne(w, ut, m, k, c, flip, mp, ki, kb, plane);
  }
}
