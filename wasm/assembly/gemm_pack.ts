// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the GEMM engine's packing routines, which copy blocks of A' and B' (see gemm.ts
// for how they are addressed) into the slivers the micro-kernel reads: A' into 4-row slivers
// (packA; packAAll packs all of A' once, for threads that share it), a dense B' into 8-column
// slivers (packBDense), and the batched im2col view of a batch of images into the same slivers
// without materialising the im2col matrix (packBIm2colBatched: the implicit-GEMM convolution).

import { kcBlock, MC, MR, NR } from "./gemm_blocking";

/** Packs rows [ic, ic + mc) x columns [pc, pc + kc) of A' into 4-row slivers at dst. */
export function packA(
  a: usize,
  ars: i32,
  acs: i32,
  ic: i32,
  mc: i32,
  pc: i32,
  kc: i32,
  dst: usize,
): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const rows = min(MR, mc - ir);
    let d = dst + (<usize>(ir * kc) << 2);
    const i = ic + ir;
    if (rows == MR && ars == 1) {
      // Columns of A' are contiguous (A stored transposed): four floats per k.
      let src = a + (<usize>(pc * acs + i) << 2);
      const step = <usize>acs << 2;
      for (let p = 0; p < kc; p++) {
        v128.store(d, v128.load(src));
        src += step;
        d += 16;
      }
    } else if (rows == MR && acs == 1) {
      // Rows of A' are contiguous: transpose 4 x 4 blocks.
      const step = <usize>ars << 2;
      const r0 = a + (<usize>(i * ars + pc) << 2);
      const r1 = r0 + step;
      const r2 = r1 + step;
      const r3 = r2 + step;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const o = <usize>p << 2;
        const v0 = v128.load(r0 + o);
        const v1 = v128.load(r1 + o);
        const v2 = v128.load(r2 + o);
        const v3 = v128.load(r3 + o);
        const t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
        const t2 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7);
        const t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
        v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
        v128.store(d, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 16);
        v128.store(d, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 32);
        v128.store(d, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 48);
        d += 64;
      }
      for (; p < kc; p++) {
        const o = <usize>p << 2;
        store<f32>(d, load<f32>(r0 + o));
        store<f32>(d, load<f32>(r1 + o), 4);
        store<f32>(d, load<f32>(r2 + o), 8);
        store<f32>(d, load<f32>(r3 + o), 12);
        d += 16;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let r = 0; r < MR; r++) {
          let v: f32 = 0;
          if (r < rows) v = load<f32>(a + (<usize>((i + r) * ars + (pc + p) * acs) << 2));
          store<f32>(d + (<usize>r << 2), v);
        }
        d += MR * 4;
      }
    }
  }
}

/** Packs B'(p, j) for p in [pc, pc + kc), j in [jc, jc + nc) of a dense B into 8-column slivers. */
export function packBDense(
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
export function packBIm2colBatched(
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
  const C = load<i32>(geo);
  const whole = pc == 0 && kc == C * KK;
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
    // Per column of the sliver: window origin (iy, ix) and the address of x[n, 0, iy, ix]; the
    // first column's output position by division, the next ones' by stepping.
    let ni = j / OHW;
    let oy = (j - ni * OHW) / OW;
    let ox = j - ni * OHW - oy * OW;
    for (let q = 0; q < NR; q++) {
      // Columns past the end read as padding: an origin far outside the image.
      const iy = q < cols ? oy * S - P : -0x40000000;
      const ix = ox * S - P;
      const e = info + (<usize>q << 2);
      store<i32>(e, iy);
      store<i32>(e, ix, 32);
      store<i32>(e, <i32>(x + <usize>ni * XS) + ((iy * W + ix) << 2), 64);
      if (++ox == OW) {
        ox = 0;
        if (++oy * OW == OHW) {
          oy = 0;
          ni++;
        }
      }
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
    // Stride 2, a group running on into the next output row of its image: its lanes in the
    // first row (1 to 3), else 0.
    const splitA = S == 2 && cols == NR ? splitLanes(j, OHW, OW) : 0;
    const splitB = S == 2 && cols == NR ? splitLanes(j + 4, OHW, OW) : 0;
    const lowA = i32x4.lt_s(v128.load(LANES), i32x4.splat(splitA));
    const lowB = i32x4.lt_s(v128.load(LANES), i32x4.splat(splitB));
    // Tap by tap (ky, kx), the channels of the block in turn: the tap fixes which way each group
    // of four columns is read (and its masks), so the loop over channels only adds the channel's
    // offset (rows ci KK + t of the block, KK rows of 32 bytes apart).
    const cstep = <usize>HW << 2;
    const dstep = <usize>KK << 5;
    const first = dst + (<usize>(jr * kc) << 2);
    // Stride 2, three taps wide: the taps kx = 0, 1, 2 of window row ky read, for a group of four
    // columns inside one image row, the nine inputs from its window origin c0: kx = 0 the even
    // ones of c0 .. c0 + 7, kx = 1 the odd ones, kx = 2 the even ones from c0 + 2. Three loads a
    // group give all three rows (the tap-by-tap path loads six); a left padding column (c0 = -1,
    // read one before the row) is zeroed. Each group by itself: its window rows inside the image
    // go this way while the other group (running on into the next output row) goes tap by tap.
    const threeA = S == 2 && KW == 3 && rowA && ixA0 >= -1 && ixA0 + 9 <= W;
    const threeB = S == 2 && KW == 3 && rowB && ixB0 >= -1 && ixB0 + 9 <= W;
    // Whether the current window row's three taps of group A (B) went with its tap kx = 0.
    let doneA = false;
    let doneB = false;
    for (let t = 0; t < KK; t++) {
      const ky = t / KW;
      const kx = t - ky * KW;
      if (kx == 0) {
        doneA = false;
        doneB = false;
      }
      // The block's channels with tap t (all of them when the block is the whole K).
      const ci0 = whole || pc <= t ? 0 : (pc - t + KK - 1) / KK;
      const ci1 = whole ? C : pc + kc > t ? (pc + kc - t + KK - 1) / KK : 0;
      if (ci0 >= ci1) continue;
      const tap = ky * W + kx;
      const co = <usize>ci0 * cstep;
      let d = first + (<usize>(ci0 * KK + t - pc) << 5);
      if (kx == 0 && (threeA || threeB) && (whole || tapsSpan(pc, kc, t, KK, ci0, ci1))) {
        doneA = threeA && <u32>(iyA0 + ky) < <u32>H;
        doneB = threeB && <u32>(iyB0 + ky) < <u32>H;
        const sA = <usize>(pA0 + (tap << 2)) + co;
        const sB = <usize>(pB0 + (tap << 2)) + co;
        if (doneA) groupThreeTaps(sA, d, ixA0 < 0, ci1 - ci0, cstep, dstep);
        if (doneB) groupThreeTaps(sB, d + 16, ixB0 < 0, ci1 - ci0, cstep, dstep);
        if (doneA && doneB) {
          t += 2;
          continue;
        }
      }
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
      // Each group of four columns reads by the way its tap allows (see groupTaps): all padding,
      // one image row (stride 2), two image rows (stride 2, the group runs on into the next
      // output row), or lane by lane, where lanes outside the image read a safe address (x,
      // moved to the channel's plane) and are masked to zero.
      const kyv = i32x4.splat(ky);
      const kxv = i32x4.splat(kx);
      const tapv = i32x4.splat(tap << 2);
      const mA = v128.and(i32x4.lt_u(i32x4.add(iyA, kyv), hv), i32x4.lt_u(i32x4.add(ixA, kxv), wv));
      const mB = v128.and(i32x4.lt_u(i32x4.add(iyB, kyv), hv), i32x4.lt_u(i32x4.add(ixB, kxv), wv));
      const aA = v128.bitselect(i32x4.add(pA, tapv), safe, mA);
      const aB = v128.bitselect(i32x4.add(pB, tapv), safe, mB);
      // From one before the row (inside memory) when the first lane is left padding.
      const sA = <usize>(pA0 + (tap << 2));
      const sB = <usize>(pB0 + (tap << 2));
      const xa = ixA0 + kx;
      const xb = ixB0 + kx;
      const modeA = tapMode(rowA, splitA, mA, iyA0 + ky, xa, H, W, P, kx);
      const modeB = tapMode(rowB, splitB, mB, iyB0 + ky, xb, H, W, P, kx);
      // The two-row reads: the first row's from s1, the next row's from s2 (each the other's
      // when its row is padding).
      const nA = sA + <usize>(nextRowOffset(xa, W, P, kx, splitA) << 2);
      const nB = sB + <usize>(nextRowOffset(xb, W, P, kx, splitB) << 2);
      const inA = <u32>(iyA0 + ky) < <u32>H;
      const inB = <u32>(iyB0 + ky) < <u32>H;
      const s1A = inA ? sA : nA;
      const s2A = <u32>(iyA0 + ky + 2) < <u32>H ? nA : s1A;
      const s1B = inB ? sB : nB;
      const s2B = <u32>(iyB0 + ky + 2) < <u32>H ? nB : s1B;
      const n = ci1 - ci0;
      if (!doneA) {
        groupTaps(modeA, n, s1A + co, s2A + co, xa < 0, lowA, aA, mA, co, cstep, d, dstep);
      }
      if (!doneB) {
        groupTaps(modeB, n, s1B + co, s2B + co, xb < 0, lowB, aB, mB, co, cstep, d + 16, dstep);
      }
    }
  }
}

/** The lane numbers 0, 1, 2, 3 (compared with a split to mask a group's first lanes). */
const LANES = memory.data<i32>([0, 1, 2, 3]);

/**
 * For stride 2, a group of four real columns from column jg: the lanes that lie in its first
 * output row when the group runs on into the next row of the same image (1 to 3), else 0.
 */
@inline
function splitLanes(jg: i32, OHW: i32, OW: i32): i32 {
  const pix = jg - (jg / OHW) * OHW;
  if (pix + 4 > OHW || OW < 4) return 0;
  const s = OW - (pix - (pix / OW) * OW);
  return s < 4 ? s : 0;
}

/**
 * The offset (in floats) from a group's first input of a tap (column ix of its first lane) to
 * the input its lane `split` reads in the next output row (two input rows down, column kx - P),
 * minus 2 split, so that the even inputs from there put it in lane `split`.
 */
@inline
function nextRowOffset(ix: i32, W: i32, P: i32, kx: i32, split: i32): i32 {
  return 2 * W + kx - P - 2 * split - ix;
}

/**
 * How a group of four columns reads one tap (groupTaps' modes): 0 when every lane is padding
 * (mask m all zero); 1 when the group lies in one image row (`row`, stride 2) whose eight inputs
 * from the first lane's column ix (row iy) lie inside it; 2 when it runs on into the next output
 * row after `split` lanes and each row's eight inputs lie inside its image plane (from one before
 * it), or the row is padding; else 3.
 */
@inline
function tapMode(
  row: bool, split: i32, m: v128, iy: i32, ix: i32, H: i32, W: i32, P: i32, kx: i32,
): i32 {
  if (!v128.any_true(m)) return 0;
  if (row && <u32>iy < <u32>H && ix >= -1 && ix + 8 <= W) return 1;
  if (split == 0) return 3;
  const HW = H * W;
  const first = iy * W + ix;
  const next = first + nextRowOffset(ix, W, P, kx, split);
  const okFirst = <u32>iy >= <u32>H || (first >= -1 && first + 8 <= HW);
  const okNext = <u32>(iy + 2) >= <u32>H || (next >= -1 && next + 8 <= HW);
  return okFirst && okNext ? 2 : 3;
}

/**
 * One tap's four values of a group of four columns for `n` channels (`cstep` bytes apart in x,
 * `dstep` in the sliver, the first to d), by `mode` (tapMode's): 0 zeros; 1 the even inputs of
 * the eight at s1, lane 0 zero with `pad` (left padding); 2 the first lanes (`low`) from the even
 * inputs at s1, the others from those at s2, masked by m; 3 lane by lane from the addresses in
 * `addr` moved by co bytes, masked by m.
 */
@inline
function groupTaps(
  mode: i32, n: i32, s1: usize, s2: usize, pad: bool, low: v128, addr: v128, m: v128, co: usize,
  cstep: usize, d: usize, dstep: usize,
): void {
  if (mode == 1) {
    for (let i = 0; i < n; i++) {
      let v = v128.shuffle<f32>(v128.load(s1), v128.load(s1, 16), 0, 2, 4, 6);
      if (pad) v = f32x4.replace_lane(v, 0, 0);
      v128.store(d, v);
      s1 += cstep;
      d += dstep;
    }
  } else if (mode == 2) {
    for (let i = 0; i < n; i++) {
      const u = v128.shuffle<f32>(v128.load(s1), v128.load(s1, 16), 0, 2, 4, 6);
      const w = v128.shuffle<f32>(v128.load(s2), v128.load(s2, 16), 0, 2, 4, 6);
      v128.store(d, v128.and(v128.bitselect(u, w, low), m));
      s1 += cstep;
      s2 += cstep;
      d += dstep;
    }
  } else if (mode == 0) {
    const z = f32x4.splat(0);
    for (let i = 0; i < n; i++) {
      v128.store(d, z);
      d += dstep;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const a = i32x4.add(addr, i32x4.splat(<i32>co));
      let v = f32x4.splat(load<f32>(<usize>i32x4.extract_lane(a, 0)));
      v = f32x4.replace_lane(v, 1, load<f32>(<usize>i32x4.extract_lane(a, 1)));
      v = f32x4.replace_lane(v, 2, load<f32>(<usize>i32x4.extract_lane(a, 2)));
      v = f32x4.replace_lane(v, 3, load<f32>(<usize>i32x4.extract_lane(a, 3)));
      v128.store(d, v128.and(v, m));
      co += cstep;
      d += dstep;
    }
  }
}

/**
 * The rows of taps kx = 0, 1, 2 (at d, d + 32, d + 64) of a stride-2 group of four columns whose
 * window origin is at src: the even inputs of src[0..8), the odd ones, and the even ones of
 * src[2..10); with `pad` the first column is left padding (src[0] lies before the row) and reads 0.
 */
@inline
function threeTaps(src: usize, d: usize, pad: bool): void {
  const v0 = v128.load(src);
  const v1 = v128.load(src, 16);
  let e = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
  v128.store(d, v128.shuffle<f32>(v0, v1, 1, 3, 5, 7), 32);
  v128.store(d, v128.shuffle<f32>(e, v128.load(src, 20), 1, 2, 3, 7), 64);
  if (pad) e = f32x4.replace_lane(e, 0, 0);
  v128.store(d, e);
}

/**
 * threeTaps for one group of four columns over n channels (`cstep` bytes apart in x, `dstep` in
 * the sliver).
 */
@inline
function groupThreeTaps(src: usize, d: usize, pad: bool, n: i32, cstep: usize, dstep: usize): void {
  for (let i = 0; i < n; i++) {
    threeTaps(src, d, pad);
    src += cstep;
    d += dstep;
  }
}

/**
 * Whether the K block [pc, pc + kc) holds taps t + 1 and t + 2 of the same channels [ci0, ci1) as
 * tap t (rows ci KK + t): a block cut inside a channel's taps does not.
 */
@inline
function tapsSpan(pc: i32, kc: i32, t: i32, KK: i32, ci0: i32, ci1: i32): bool {
  for (let u = t + 1; u <= t + 2; u++) {
    const c0 = pc <= u ? 0 : (pc - u + KK - 1) / KK;
    const c1 = pc + kc > u ? (pc + kc - u + KK - 1) / KK : 0;
    if (c0 != ci0 || c1 != ci1) return false;
  }
  return true;
}

/**
 * Packs all of A' (rows [0, m)) once, in the layout gemm reads through `apacked`: block (pc, ic)
 * at element offset pc * mpad + ic * kc, with mpad = m rounded up to MR (4). Threads that split C by
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
