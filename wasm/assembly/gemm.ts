// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the matrix-multiply engine's driver. C (+)= A' B' over a block of C, BLIS-style
// (blocking in gemm_blocking.ts): B' is packed into 8-column slivers (KC x NC panel), A' into 6-row
// slivers (MC x KC block) (gemm_pack.ts), and the 6x8 register-blocked micro-kernel
// (gemm_microkernel.ts) computes each tile; partial tiles go through a scratch tile. Convolutions
// use the same engine: the B packer can read the im2col view of an image without materialising it
// (implicit GEMM); im2col.ts builds the explicit im2col matrix, adds one back into an image
// (col2im) and flips a filter, for the strided and gradient cases (conv_grad.ts). Products with
// few columns or a short inner size have their own kernels (gemm_skinny.ts).
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

import { kcBlock, KC_MAX, MC, MR, NC, NR } from "./gemm_blocking";
import { micro } from "./gemm_microkernel";
import { packA, packBDense, packBIm2colBatched } from "./gemm_pack";

const PACKED_B_BYTES: usize = KC_MAX * NC * 4;
const PACKED_A_BYTES: usize = MC * KC_MAX * 4;
const TILE_BYTES: usize = MR * NR * 4;
const INFO_BYTES: usize = NR * 4 * 4;

/** Bytes of scratch one thread needs for gemm. */
export function gemmWorkspaceBytes(): i32 {
  return <i32>(PACKED_B_BYTES + PACKED_A_BYTES + TILE_BYTES + INFO_BYTES);
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
