// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the matrix-multiply engine's driver. C (+)= A' B' over a block of C, BLIS-style
// (blocking in gemm_blocking.ts): B' is packed into 8-column slivers (KC x NC panel), A' into 4-row
// slivers (MC x KC block) (gemm_pack.ts), and the 4x8 register-blocked micro-kernel
// (gemm_microkernel.ts) computes each tile; partial tiles go through a scratch tile. An epilogue
// (a bias per row or per column, then ReLU) runs as the last K block of a tile is stored.
// Convolutions use the same engine: the B packer can read the im2col view of an image without
// materialising it (implicit GEMM); im2col.ts builds the explicit im2col matrix, adds one back into
// an image (col2im) and flips a filter, for the strided and gradient cases (conv_grad.ts). Products with
// few columns or a short inner size have their own kernels (gemm_skinny.ts).
//
// A'(i, p) = a[i * ars + p * acs]; B' depends on bmode:
//   0 dense:    B'(p, j) = b[p * brs + j * bcs]
//   2 batched im2col: p = (c, ky, kx), j = (n, oy, ox) runs over every image:
//               B'(p, j) = x[n, c, oy s - pad + ky, ox s - pad + kx] (image n at x + n * xstride),
//               and C(i, j) lives at c + n * cstride + i * ldc + oy * ow + ox,
//               so one GEMM computes a convolution of the whole batch in NCHW layout.
//   3 transposed im2col of one image, columns tap-major (gemm_pack_strided.ts): p = (oy, ox),
//               j = (ky, kx, c): B'(p, j) = x[c, oy s - pad + ky, ox s - pad + kx] (the filter
//               gradient of a strided convolution, with its columns put back by the caller).
// and otherwise C is row-major with row stride ldc.
// `geo` (modes 2 and 3) points at i32s: c, h, w, kh, kw, stride, pad, oh, ow, xstride, cstride
// (the last two in elements, for mode 2 only).
// The epilogue: biasMode 0 none, 1 bias[i] added to row i of C, 2 bias[j] added to column j; act 0
// none, 1 ReLU (x > 0 ? x : 0). Both apply once, to the finished sum (after any accumulate).

import { kcBlock, KC_MAX, MC, MR, NC, NR } from "./gemm_blocking";
import { micro4x8 } from "./gemm_microkernel";
import { packA, packBDense, packBIm2colBatched } from "./gemm_pack";
import { packBIm2colT } from "./gemm_pack_strided";

const PACKED_B_BYTES: usize = KC_MAX * NC * 4;
const PACKED_A_BYTES: usize = MC * KC_MAX * 4;
const TILE_BYTES: usize = MR * NR * 4;
const INFO_BYTES: usize = NR * 4 * 4;
/** The tag of the product whose chunk this thread ran last, and that chunk's i0, i1, j0, j1. */
const TAG_BYTES: usize = 32;

/** Bytes of scratch one thread needs for gemm. */
export function gemmWorkspaceBytes(): i32 {
  return <i32>(PACKED_B_BYTES + PACKED_A_BYTES + TILE_BYTES + INFO_BYTES + TAG_BYTES);
}

/** Makes the scratch `work` forget the tag of the product it last packed for (see gemm). */
export function gemmForget(work: usize): void {
  store<i32>(work + PACKED_B_BYTES + PACKED_A_BYTES + TILE_BYTES + INFO_BYTES, 0);
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
  bias: usize,
  biasMode: i32,
  act: i32,
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
      v = epilogue(v, bias, biasMode, act, r, q);
      store<f32>(o, v);
      o += ldc;
      t += NR * 4;
    }
  }
}

/**
 * The epilogue of one value of a tile, row r and column q of it (bias points at the tile's first
 * row's or column's bias).
 */
@inline
export function epilogue(v: f32, bias: usize, biasMode: i32, act: i32, r: i32, q: i32): f32 {
  if (biasMode == 1) v += load<f32>(bias + (<usize>r << 2));
  else if (biasMode == 2) v += load<f32>(bias + (<usize>q << 2));
  if (act == 1) v = v > 0 ? v : 0;
  return v;
}

/** Writes the valid rows x cols of a tile into dense C (adding when acc), with the epilogue. */
function storeTile(
  tile: usize,
  c: usize,
  ldc: i32,
  rows: i32,
  cols: i32,
  acc: bool,
  bias: usize,
  biasMode: i32,
  act: i32,
): void {
  for (let r = 0; r < rows; r++) {
    const t = tile + (<usize>(r * NR) << 2);
    const o = c + (<usize>(r * ldc) << 2);
    for (let q = 0; q < cols; q++) {
      const off = <usize>q << 2;
      let v = load<f32>(t + off);
      if (acc) v += load<f32>(o + off);
      v = epilogue(v, bias, biasMode, act, r, q);
      store<f32>(o + off, v);
    }
  }
}

/**
 * C[i0..i1, j0..j1] (+)= A' B' with inner size k (see the top of this file for the modes), then
 * the epilogue (`bias` 0 or the bias of row or column 0, `biasMode`, `act`). `apacked` is 0, or A'
 * rows [i0, i1) packed by packAAll; `tag` is 0, or a number the host gives every chunk of one
 * product and no other product, so that a thread's later chunks reuse the operand its earlier one
 * packed; `work` is this thread's scratch of gemmWorkspaceBytes() bytes.
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
  bias: usize,
  biasMode: i32,
  act: i32,
  tag: i32,
  work: usize,
): void {
  const pb = work;
  const pa = pb + PACKED_B_BYTES;
  // Rows of A' in a pre-packed whole-matrix layout (see packAAll), rounded up to the tile.
  const mpad = (i1 - i0 + MR - 1) / MR * MR;
  const tile = pa + PACKED_A_BYTES;
  const info = tile + TILE_BYTES;
  const tagAt = info + INFO_BYTES;
  // A tagged product (tag != 0) reuses what this thread's previous chunk of it packed: A' when
  // that chunk had the same rows and they fit one block, or B' when it had the same columns and
  // they fit one panel (a dense B' only).
  const seen = tag != 0 && load<i32>(tagAt) == tag;
  const reuseA = seen && apacked == 0 && i1 - i0 <= MC && k <= KC_MAX &&
    load<i32>(tagAt, 4) == i0 && load<i32>(tagAt, 8) == i1;
  const reuseB = seen && bmode == 0 && j1 - j0 <= NC && k <= KC_MAX &&
    load<i32>(tagAt, 12) == j0 && load<i32>(tagAt, 16) == j1;
  store<i32>(tagAt, tag);
  store<i32>(tagAt, i0, 4);
  store<i32>(tagAt, i1, 8);
  store<i32>(tagAt, j0, 12);
  store<i32>(tagAt, j1, 16);
  const ldcBytes = <usize>ldc << 2;
  const batched = bmode == 2;
  const ohw = batched ? load<i32>(geo, 28) * load<i32>(geo, 32) : 1;
  const cs: usize = batched ? <usize>load<i32>(geo, 40) << 2 : 0;
  const kb = kcBlock(k);
  // A pointwise convolution (1x1, stride 1, no padding): B' is the images themselves, rows
  // (channels) HW floats apart, so a sliver inside one image is read where it lies (the
  // micro-kernel's B step is then a channel's stride) and only slivers across two images are
  // packed.
  const pointwise = batched && load<i32>(geo, 12) * load<i32>(geo, 16) == 1 &&
    load<i32>(geo, 20) == 1 && load<i32>(geo, 24) == 0;
  const xs: usize = batched ? <usize>load<i32>(geo, 36) << 2 : 0;
  const touch = batched && load<i32>(geo, 20) > 1;
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    // Strided views read their inputs in short runs far apart (window rows of every channel): the
    // panel's inputs are first read in address order (measured: 3x3 stride-2 forwards, batch 128,
    // 1 thread, 0.88-0.91x the time; no gain at stride 1, mixed for pointwise convolutions).
    if (touch) touchPanel(b, geo, jc, nc, info);
    for (let pc = 0; pc < k; pc += kb) {
      const kc = min(kb, k - pc);
      if (bmode == 0) {
        if (!reuseB) packBDense(b, brs, bcs, pc, kc, jc, nc, pb);
      } else if (bmode == 3) packBIm2colT(b, geo, pc, kc, jc, nc, pb);
      else if (!pointwise) packBIm2colBatched(b, geo, pc, kc, jc, nc, pb, info);
      else {
        for (let jr = 0; jr < nc; jr += NR) {
          const jj = jc + jr;
          if (jj % ohw + NR > ohw || jr + NR > nc) {
            packBIm2colBatched(b, geo, pc, kc, jj, min(NR, nc - jr), pb + (<usize>(jr * kc) << 2), info);
          }
        }
      }
      const acc = accumulate != 0 || pc > 0;
      // The epilogue runs with the last K block only.
      const last = pc + kc >= k;
      const bm = last ? biasMode : 0;
      const ac = last ? act : 0;
      for (let ic = i0; ic < i1; ic += MC) {
        const mc = min(MC, i1 - ic);
        let ablock = pa;
        if (apacked != 0) ablock = apacked + (<usize>(pc * mpad + (ic - i0) * kc) << 2);
        else if (!reuseA) packA(a, ars, acs, ic, mc, pc, kc, pa);
        for (let jr = 0; jr < nc; jr += NR) {
          const cols = min(NR, nc - jr);
          let bp = pb + (<usize>(jr * kc) << 2);
          let bstep: usize = NR * 4;
          if (pointwise) {
            const jj = jc + jr;
            const ni = jj / ohw;
            const pix = jj - ni * ohw;
            if (pix + NR <= ohw && cols == NR) {
              bp = b + <usize>ni * xs + (<usize>(pc * ohw + pix) << 2);
              bstep = <usize>ohw << 2;
            }
          }
          for (let ir = 0; ir < mc; ir += MR) {
            const rows = min(MR, mc - ir);
            const ap = ablock + (<usize>(ir * kc) << 2);
            // The tile's first row's (mode 1) or column's (mode 2) bias.
            const bt = bm == 1
              ? bias + (<usize>(ic + ir) << 2)
              : bm == 2 ? bias + (<usize>(jc + jr) << 2) : 0;
            if (batched) {
              const jj = jc + jr;
              const ni = jj / ohw;
              const pix = jj - ni * ohw;
              const cp = c + <usize>ni * cs + (<usize>(ic + ir) * ldcBytes) + (<usize>pix << 2);
              if (rows == MR && cols == NR && pix + NR <= ohw) {
                micro4x8(kc, ap, bp, cp, ldcBytes, acc, bt, bm, ac, bstep);
              } else {
                micro4x8(kc, ap, bp, tile, NR * 4, false, 0, 0, 0, bstep);
                storeTileBatched(
                  tile, c, ldcBytes, cs, ohw, ic + ir, jj, rows, cols, acc, bt, bm, ac,
                );
              }
              continue;
            }
            const cp = c + (<usize>(ic + ir) * ldcBytes) + (<usize>(jc + jr) << 2);
            if (rows == MR && cols == NR) {
              micro4x8(kc, ap, bp, cp, ldcBytes, acc, bt, bm, ac);
            } else {
              micro4x8(kc, ap, bp, tile, NR * 4, false, 0, 0, 0);
              storeTile(tile, cp, ldc, rows, cols, acc, bt, bm, ac);
            }
          }
        }
      }
    }
  }
}

/**
 * Products [begin, end) of a batch of dense products C[i] = A'[i] B'[i] (m x n, inner size k; C
 * row-major with row stride n), operand i at a + i * aStride and b + i * bStride bytes (a stride 0
 * for an operand shared by the batch), C[i] at c + i * cStride: whole products a thread, for
 * batches of products too small to split one by one.
 */
export function gemmBatch(
  m: i32,
  n: i32,
  k: i32,
  a: usize,
  ars: i32,
  acs: i32,
  aStride: usize,
  b: usize,
  brs: i32,
  bcs: i32,
  bStride: usize,
  c: usize,
  cStride: usize,
  begin: i32,
  end: i32,
  work: usize,
): void {
  for (let i = begin; i < end; i++) {
    const o = <usize>i;
    gemm(0, m, 0, n, k, a + o * aStride, ars, acs, 0, b + o * bStride, brs, bcs, c + o * cStride, n,
      0, 0, 0, 0, 0, 0, 0, work);
  }
}

/**
 * Reads one float of every cache line of the inputs that columns [jc, jc + nc) of a batched
 * im2col view read (each image's channel rows from the first window's top to the last's bottom),
 * in address order, so that they come into cache by the hardware's sequential prefetch rather than
 * one miss at a time under the packer or the micro-kernel; the sum goes to `sink`.
 */
function touchPanel(x: usize, geo: usize, jc: i32, nc: i32, sink: usize): void {
  const C = load<i32>(geo);
  const H = load<i32>(geo, 4);
  const W = load<i32>(geo, 8);
  const KH = load<i32>(geo, 12);
  const S = load<i32>(geo, 20);
  const P = load<i32>(geo, 24);
  const OW = load<i32>(geo, 32);
  const OHW = load<i32>(geo, 28) * OW;
  const XS = <usize>load<i32>(geo, 36) << 2;
  const plane = <usize>(H * W) << 2;
  let acc: f32 = 0;
  let j = jc;
  const end = jc + nc;
  while (j < end) {
    const ni = j / OHW;
    const p0 = j - ni * OHW;
    const p1 = min(OHW, p0 + end - j);
    const iy0 = max(0, (p0 / OW) * S - P);
    const iy1 = min(H, ((p1 - 1) / OW) * S - P + KH);
    if (iy1 > iy0) {
      let row = x + <usize>ni * XS + (<usize>(iy0 * W) << 2);
      const len = <usize>((iy1 - iy0) * W) << 2;
      for (let c = 0; c < C; c++) {
        for (let o: usize = 0; o < len; o += 64) acc += load<f32>(row + o);
        row += plane;
      }
    }
    j += p1 - p0;
  }
  store<f32>(sink, acc);
}
