// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: 3x3, stride-1, pad-1 convolution by Winograd's F(4x4, 3x3) (Lavin & Gray 2015,
// interpolation points 0, 1, -1, 2, -2 and infinity): each 4x4 output tile costs 36 multiply-adds
// per (output, input) channel pair instead of 144 (F(2x2, 3x3) of winograd_f2x2.ts: 64 for the
// same 16 outputs). With g a 3x3 filter and d the tile's 6x6 input window,
//   U = G g G^T,  V = B^T d B,  Y = A^T (sum over input channels of U (.) V) A,
// where
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
// The channel sums are 36 GEMMs, M[xi] (out channels x tiles) = U[xi] (out x in) V[xi] (in x
// tiles), run by transformedProducts (winograd_common.ts) as for F(2x2, 3x3): U packed once in the
// micro-kernel's 4-row slivers, V read where the input transform wrote it. Tiles are numbered over
// the batch, t = (n, ty, tx), and a thread works through its range in chunks so that V and M stay
// in cache.
//
// The filter transform (U) is in winograd_f4x4_filter.ts.
//
// The input transform runs on four tiles of a row at once (a lane each). Each input channel's six
// window rows of a row of tiles are first copied into a zero-padded staging buffer (one column of
// padding on the left, zeros past the right edge), so the transform itself reads without masks:
// five loads of a staged row give the four tiles' six window columns after a transpose.

import { copyZeroPadded, madd, storePartial } from "./simd.ts";
import { planeStride } from "./winograd_common";

// Vector constants, loaded from memory (see simd.ts on v128.const inside loops).
const K4 = memory.data<f32>([
  4, 4, 4, 4,
  -4, -4, -4, -4,
  -5, -5, -5, -5,
  2, 2, 2, 2,
  -2, -2, -2, -2,
  8, 8, 8, 8,
]);

/** Floats of one staged row of a w-wide image: its (w + 3) / 4 tiles' windows and slack. */
@inline
export function stagedRow(w: i32): i32 {
  return 4 * ((w + 3) >> 2) + 16;
}

/**
 * B^T applied along one window row of four tiles, d0..d5 its six columns (a lane a tile): the six
 * results to q, 16 bytes apart.
 */
@inline
function rowTransform(q: usize, d0: v128, d1: v128, d2: v128, d3: v128, d4: v128, d5: v128): void {
  const c4 = v128.load(K4);
  const cm4 = v128.load(K4, 16);
  const cm5 = v128.load(K4, 32);
  const c2 = v128.load(K4, 48);
  const cm2 = v128.load(K4, 64);
  const d42 = f32x4.sub(d4, d2);
  const d31 = f32x4.sub(d3, d1);
  v128.store(q, madd(c4, d0, madd(cm5, d2, d4)));
  v128.store(q, madd(cm4, f32x4.add(d1, d2), f32x4.add(d3, d4)), 16);
  v128.store(q, madd(c4, f32x4.sub(d1, d2), f32x4.sub(d4, d3)), 32);
  v128.store(q, madd(c2, d31, d42), 48);
  v128.store(q, madd(cm2, d31, d42), 64);
  v128.store(q, madd(c4, d1, madd(cm5, d3, d5)), 80);
}

/**
 * rowTransform on the six columns gathered from three pairs of half-transposed vectors: the low
 * and high halves of (a, b), of (c, d) and of (f, g) are columns 0 to 5.
 */
@inline
function rowTransformOfHalves(q: usize, a: v128, b: v128, c: v128, d: v128, f: v128, g: v128): void {
  rowTransform(
    q,
    v128.shuffle<f32>(a, b, 0, 1, 4, 5),
    v128.shuffle<f32>(a, b, 2, 3, 6, 7),
    v128.shuffle<f32>(c, d, 0, 1, 4, 5),
    v128.shuffle<f32>(c, d, 2, 3, 6, 7),
    v128.shuffle<f32>(f, g, 0, 1, 4, 5),
    v128.shuffle<f32>(f, g, 2, 3, 6, 7),
  );
}

/**
 * B^T applied down each column k of the six row results at e (rowTransform's, 96 bytes a row):
 * result r to dst + (6 r + k) step, the 36 values of V[xi] for xi = 6 r + k.
 */
@inline
function columnTransform(e: usize, dst: usize, step: usize): void {
  const c4 = v128.load(K4);
  const cm4 = v128.load(K4, 16);
  const cm5 = v128.load(K4, 32);
  const c2 = v128.load(K4, 48);
  const cm2 = v128.load(K4, 64);
  let q = e;
  let o = dst;
  for (let k = 0; k < 6; k++) {
    const d0 = v128.load(q);
    const d1 = v128.load(q, 96);
    const d2 = v128.load(q, 192);
    const d3 = v128.load(q, 288);
    const d4 = v128.load(q, 384);
    const d5 = v128.load(q, 480);
    const d42 = f32x4.sub(d4, d2);
    const d31 = f32x4.sub(d3, d1);
    v128.store(o, madd(c4, d0, madd(cm5, d2, d4)));
    v128.store(o + 6 * step, madd(cm4, f32x4.add(d1, d2), f32x4.add(d3, d4)));
    v128.store(o + 12 * step, madd(c4, f32x4.sub(d1, d2), f32x4.sub(d4, d3)));
    v128.store(o + 18 * step, madd(c2, d31, d42));
    v128.store(o + 24 * step, madd(cm2, d31, d42));
    v128.store(o + 30 * step, madd(c4, d1, madd(cm5, d3, d5)));
    q += 16;
    o += step;
  }
}

/**
 * V[xi][c][t] for one input channel c and the four tiles whose staged windows start at s (six
 * staged rows `sw` bytes apart, the first at s): the 36 results go to dst, `step` bytes apart;
 * `e` is 576 bytes of scratch.
 */
@inline
function inputTile(s: usize, sw: usize, e: usize, dst: usize, step: usize): void {
  // Along each window row: the six columns of four tiles (lanes), then B^T applied along it.
  let p = s;
  let q = e;
  for (let i = 0; i < 6; i++) {
    const v0 = v128.load(p);
    const v1 = v128.load(p, 16);
    const v2 = v128.load(p, 32);
    const v3 = v128.load(p, 48);
    const v4 = v128.load(p, 64);
    const t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5);
    const t1 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
    const t2 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7);
    const t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
    const u0 = v128.shuffle<f32>(v1, v2, 0, 4, 1, 5);
    const u1 = v128.shuffle<f32>(v3, v4, 0, 4, 1, 5);
    rowTransformOfHalves(q, t0, t1, t2, t3, u0, u1);
    p += sw;
    q += 96;
  }
  // Down each column k of the row results: B^T again, result r to xi = 6 r + k.
  columnTransform(e, dst, step);
}

/**
 * inputTile for images two tiles wide (w <= 8): the four tiles of two rows of tiles, the two of
 * the upper row (lanes 0 and 1) staged from `a`, the two of the lower row (lanes 2 and 3) from
 * `b`, each six staged rows `sw` bytes apart. Every lane holds a real tile, where inputTile would
 * leave two of four empty.
 */
@inline
function inputTilePair(a: usize, b: usize, sw: usize, e: usize, dst: usize, step: usize): void {
  let p = a;
  let r = b;
  let q = e;
  for (let i = 0; i < 6; i++) {
    // Lane by lane the columns j of tiles (upper 0, upper 1, lower 0, lower 1): staged columns
    // j and 4 + j of each row.
    const a0 = v128.load(p);
    const a1 = v128.load(p, 16);
    const a2 = v128.load(p, 32);
    const b0 = v128.load(r);
    const b1 = v128.load(r, 16);
    const b2 = v128.load(r, 32);
    const la = v128.shuffle<f32>(a0, a1, 0, 4, 1, 5);
    const ha = v128.shuffle<f32>(a0, a1, 2, 6, 3, 7);
    const ka = v128.shuffle<f32>(a1, a2, 0, 4, 1, 5);
    const lb = v128.shuffle<f32>(b0, b1, 0, 4, 1, 5);
    const hb = v128.shuffle<f32>(b0, b1, 2, 6, 3, 7);
    const kb = v128.shuffle<f32>(b1, b2, 0, 4, 1, 5);
    rowTransformOfHalves(q, la, lb, ha, hb, ka, kb);
    p += sw;
    r += sw;
    q += 96;
  }
  columnTransform(e, dst, step);
}

/**
 * Whether the group of tiles from tile tx of row ty (with `left` tiles left in the range) is the
 * four tiles of two rows of tiles: in images two tiles wide, from the start of a row that has a
 * row below it, the four tiles in the range. The input and output transforms group alike by it.
 */
@inline
function pairsRows(w: i32, h: i32, tx: i32, ty: i32, left: i32): bool {
  return (w + 3) >> 2 == 2 && tx == 0 && 4 * ty + 4 < h && left >= 4;
}

/**
 * inputTransform4's work for input channel c and the tiles from t (tile tx of row ty of image ni)
 * to the end of their row of tiles or `end`, or, for images two tiles wide, the four tiles of two
 * rows from t when they are there (staged together, inputTilePair): returns the tiles done.
 */
@inline
function inputSegment(
  x: usize, cin: i32, h: i32, w: i32, c: i32, t: i32, ni: i32, ty: i32, tx: i32, end: i32,
  at: usize, xiStep: usize, stage: usize, e: usize,
): i32 {
  const tw = (w + 3) >> 2;
  const len = min(tw - tx, end - t);
  const pair = pairsRows(w, h, tx, ty, end - t);
  const sw = <usize>stagedRow(w) << 2;
  const rowBytes = <usize>w << 2;
  const plane = x + <usize>(ni * cin + c) * (<usize>(h * w) << 2);
  const iy = 4 * ty - 1;
  // Stage the window rows iy, iy + 1, ... (rows outside the image from the zero row, the
  // eleventh).
  const staged = pair ? 10 : 6;
  for (let i = 0; i < staged; i++) {
    const y = iy + i;
    const src = <u32>y < <u32>h ? plane + <usize>y * rowBytes : stage + 10 * sw + 4;
    copyZeroPadded(stage + <usize>i * sw + 4, src, w);
  }
  if (pair) {
    inputTilePair(stage, stage + 4 * sw, sw, e, at, xiStep);
    return 4;
  }
  for (let g = 0; g < len; g += 4) {
    inputTile(stage + (<usize>(4 * (tx + g)) << 2), sw, e, at + (<usize>g << 2), xiStep);
  }
  return len;
}

/**
 * V[xi][c][t - t0] = (B^T d B)[xi] for tiles t in [t0, t0 + count) and every input channel c, d
 * the tile's 6x6 input window (zero outside the image); rows of V are `ldv` long, its planes
 * planeStride(cin, ldv) bytes apart. Groups of four tiles run over a row of tiles; the lanes past
 * its end land in V slots that the next row rewrites, or in the slack at the end of V's rows;
 * images two tiles wide run two rows of tiles a group (inputTilePair). `stage` holds eleven
 * staged rows (the last all zero), `e` 576 bytes.
 *
 * Images more than two tiles wide go channel by channel, the chunk's rows of tiles in turn: the
 * 36 rows of V one channel writes then stay in L1 until they are whole (row by row, each 16-byte
 * store met a line evicted since the one before). Smaller images go row of tiles by row, every
 * channel in turn, reading each image's channels in order (channel by channel, the reads jumped
 * from image to image and cost more than the stores saved).
 */
export function inputTransform4(
  x: usize,
  cin: i32,
  h: i32,
  w: i32,
  t0: i32,
  count: i32,
  v: usize,
  ldv: i32,
  stage: usize,
  e: usize,
): void {
  const tw = (w + 3) >> 2;
  const th = (h + 3) >> 2;
  const tiles = tw * th;
  const xiStep = planeStride(cin, ldv);
  const cStep = <usize>ldv << 2;
  const end = t0 + count;
  const ni0 = t0 / tiles;
  const ty0 = (t0 - ni0 * tiles) / tw;
  const tx0 = t0 - ni0 * tiles - ty0 * tw;
  if (tw > 2) {
    for (let c = 0; c < cin; c++) {
      const row = v + <usize>c * cStep;
      let t = t0, ni = ni0, ty = ty0, tx = tx0;
      while (t < end) {
        t += inputSegment(x, cin, h, w, c, t, ni, ty, tx, end, row + (<usize>(t - t0) << 2), xiStep, stage, e);
        tx = 0;
        if (++ty == th) {
          ty = 0;
          ni++;
        }
      }
    }
    return;
  }
  let t = t0, ni = ni0, ty = ty0, tx = tx0;
  while (t < end) {
    let done = 0;
    for (let c = 0; c < cin; c++) {
      const at = v + <usize>c * cStep + (<usize>(t - t0) << 2);
      done = inputSegment(x, cin, h, w, c, t, ni, ty, tx, end, at, xiStep, stage, e);
    }
    t += done;
    // A pair took two rows of tiles.
    ty += done > tw ? 2 : 1;
    tx = 0;
    if (ty >= th) {
      ty = 0;
      ni++;
    }
  }
}

/** Stores the first `count` (1..16) of the sixteen values a, b, c, d at p. */
@inline
function store16(p: usize, a: v128, b: v128, c: v128, d: v128, count: i32): void {
  if (count < 4) {
    storePartial(p, a, count);
    return;
  }
  v128.store(p, a);
  if (count < 8) {
    storePartial(p + 16, b, count - 4);
    return;
  }
  v128.store(p, b, 16);
  if (count < 12) {
    storePartial(p + 32, c, count - 8);
    return;
  }
  v128.store(p, c, 32);
  if (count < 16) {
    storePartial(p + 48, d, count - 12);
    return;
  }
  v128.store(p, d, 48);
}

/**
 * A^T M A + bias for four tiles (a lane each) of one output channel, M's 36 values of each at
 * m + xi plane (xi = 6 row + column): the 4x4 results per lane at e + 384 + 16 (4 row + column),
 * row results in between at e (`e` is 640 bytes).
 */
@inline
function outputGroup(m: usize, plane: usize, bv: v128, e: usize): void {
  const c2 = v128.load(K4, 48);
  const c4 = v128.load(K4);
  const c8 = v128.load(K4, 80);
  // Along each row of the 6x6 M: A^T, four results (s0..s3) a row, into e.
  let q = e;
  for (let i = 0; i < 6; i++) {
    const m0 = v128.load(m);
    const m1 = v128.load(m + plane);
    const m2 = v128.load(m + 2 * plane);
    const m3 = v128.load(m + 3 * plane);
    const m4 = v128.load(m + 4 * plane);
    const m5 = v128.load(m + 5 * plane);
    const a = f32x4.add(m1, m2);
    const b = f32x4.sub(m1, m2);
    const c = f32x4.add(m3, m4);
    const d = f32x4.sub(m3, m4);
    v128.store(q, f32x4.add(f32x4.add(m0, a), c));
    v128.store(q, madd(c2, d, b), 16);
    v128.store(q, madd(c4, c, a), 32);
    v128.store(q, f32x4.add(madd(c8, d, b), m5), 48);
    m += 6 * plane;
    q += 64;
  }
  // Down the columns: output rows 0..3 of column j of the four tiles, plus the bias, at
  // yv + 16 (4 row + j).
  const yv = e + 384;
  for (let j = 0; j < 4; j++) {
    const q0 = e + (<usize>j << 4);
    const m0 = v128.load(q0);
    const m1 = v128.load(q0, 64);
    const m2 = v128.load(q0, 128);
    const m3 = v128.load(q0, 192);
    const m4 = v128.load(q0, 256);
    const m5 = v128.load(q0, 320);
    const a = f32x4.add(m1, m2);
    const b = f32x4.sub(m1, m2);
    const c = f32x4.add(m3, m4);
    const d = f32x4.sub(m3, m4);
    const yj = yv + (<usize>j << 4);
    v128.store(yj, f32x4.add(f32x4.add(f32x4.add(m0, a), c), bv));
    v128.store(yj, f32x4.add(madd(c2, d, b), bv), 64);
    v128.store(yj, f32x4.add(madd(c4, c, a), bv), 128);
    v128.store(yj, f32x4.add(f32x4.add(madd(c8, d, b), m5), bv), 192);
  }
}

/**
 * Output row rr of the four tiles outputGroup left at e + 384, transposed from columns to tiles:
 * the sixteen pixels, tile after tile, at p, the first `count` (1..16) of them. `lower` (0 or 1):
 * only the third and fourth tiles' eight pixels, as the first eight (the lower row of tiles of a
 * pair, inputTilePair's lanes 2 and 3).
 */
@inline
function storeRow(e: usize, rr: i32, lower: i32, p: usize, count: i32): void {
  const yr = e + 384 + (<usize>rr << 6);
  const a = v128.load(yr);
  const b = v128.load(yr, 16);
  const c = v128.load(yr, 32);
  const d = v128.load(yr, 48);
  const t0v = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
  const t1v = v128.shuffle<f32>(c, d, 0, 4, 1, 5);
  const t2v = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
  const t3v = v128.shuffle<f32>(c, d, 2, 6, 3, 7);
  const r2 = v128.shuffle<f32>(t2v, t3v, 0, 1, 4, 5);
  const r3 = v128.shuffle<f32>(t2v, t3v, 2, 3, 6, 7);
  if (lower != 0) {
    store16(p, r2, r3, r2, r3, count);
    return;
  }
  store16(p, v128.shuffle<f32>(t0v, t1v, 0, 1, 4, 5), v128.shuffle<f32>(t0v, t1v, 2, 3, 6, 7), r2, r3, count);
}

/**
 * outputTransform4's work for output channel o and the tiles from t (tile tx of row ty of image
 * ni) to the end of their row of tiles or `end`, or the four tiles of two rows as
 * inputSegment takes them: returns the tiles done. `at` is the first tile's M.
 */
@inline
function outputSegment(
  at: usize, plane: usize, bv: v128, y: usize, cout: i32, h: i32, w: i32, o: i32, t: i32,
  ni: i32, ty: i32, tx: i32, end: i32, e: usize,
): i32 {
  const tw = (w + 3) >> 2;
  const len = min(tw - tx, end - t);
  const pair = pairsRows(w, h, tx, ty, end - t);
  const wBytes = <usize>w << 2;
  const img = y + (<usize>(ni * cout + o) * <usize>(h * w) << 2) + (<usize>(4 * ty * w + 4 * tx) << 2);
  if (pair) {
    // Lanes 0 and 1: the upper row of tiles; 2 and 3: the lower one, four pixel rows down.
    outputGroup(at, plane, bv, e);
    const lowerRows = min(4, h - 4 * ty - 4);
    const lower = img + 4 * wBytes;
    for (let rr = 0; rr < 4; rr++) {
      storeRow(e, rr, 0, img + <usize>rr * wBytes, w);
      if (rr < lowerRows) storeRow(e, rr, 1, lower + <usize>rr * wBytes, w);
    }
    return 4;
  }
  const rows = min(4, h - 4 * ty);
  for (let g = 0; g < len; g += 4) {
    const width = min(4 * min(4, len - g), w - 4 * (tx + g));
    outputGroup(at + (<usize>g << 2), plane, bv, e);
    let out = img + (<usize>(4 * g) << 2);
    for (let rr = 0; rr < rows; rr++) {
      storeRow(e, rr, 0, out, width);
      out += wBytes;
    }
  }
  return len;
}

/**
 * y[n][o] = A^T M A + bias for tiles [t0, t0 + count): M[xi][o][t - t0] with rows ldm long and xi
 * planes `plane` bytes apart. Four tiles of one channel at a time (a lane each), along a row of
 * tiles, each of their four output rows written as sixteen consecutive pixels; images two tiles
 * wide four tiles of two rows of tiles at a time, as inputTransform4 groups them, and in its
 * order (channel by channel for larger images). `e` is 1 KiB.
 */
export function outputTransform4(
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
  e: usize,
): void {
  const tw = (w + 3) >> 2;
  const th = (h + 3) >> 2;
  const tiles = tw * th;
  const rowStep = <usize>ldm << 2;
  const end = t0 + count;
  const ni0 = t0 / tiles;
  const ty0 = (t0 - ni0 * tiles) / tw;
  const tx0 = t0 - ni0 * tiles - ty0 * tw;
  if (tw > 2) {
    for (let o = 0; o < cout; o++) {
      const bv = bias != 0 ? v128.load32_splat(bias + (<usize>o << 2)) : f32x4.splat(0);
      const row = mb + <usize>o * rowStep;
      let t = t0, ni = ni0, ty = ty0, tx = tx0;
      while (t < end) {
        const at = row + (<usize>(t - t0) << 2);
        t += outputSegment(at, plane, bv, y, cout, h, w, o, t, ni, ty, tx, end, e);
        tx = 0;
        if (++ty == th) {
          ty = 0;
          ni++;
        }
      }
    }
    return;
  }
  let t = t0, ni = ni0, ty = ty0, tx = tx0;
  while (t < end) {
    let done = 0;
    for (let o = 0; o < cout; o++) {
      const bv = bias != 0 ? v128.load32_splat(bias + (<usize>o << 2)) : f32x4.splat(0);
      const at = mb + <usize>o * rowStep + (<usize>(t - t0) << 2);
      done = outputSegment(at, plane, bv, y, cout, h, w, o, t, ni, ty, tx, end, e);
    }
    t += done;
    ty += done > tw ? 2 : 1;
    tx = 0;
    if (ty >= th) {
      ty = 0;
      ni++;
    }
  }
}
