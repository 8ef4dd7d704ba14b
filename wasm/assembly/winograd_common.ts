// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: what the Winograd convolutions F(2x2, 3x3) (winograd_f2x2.ts) and F(4x4, 3x3)
// (winograd_f4x4.ts) share. Both reduce the sum over input channels to one GEMM per position xi of
// the transformed tile, M[xi] (out channels x tiles) = U[xi] (out x in channels) V[xi] (in
// channels x tiles), computed here (transformedProducts) by the 4x8 micro-kernel of
// gemm_microkernel.ts with nothing packed per call: the filter transforms read each 3x3 filter
// where filterAt finds it and write U in the micro-kernel's 4-row slivers (mRows, packedOffset,
// zeroPadRows), and the kernel reads its 8-column slivers of V where the input transforms left
// them (rows tStride floats long). winograd_conv.ts drives the transforms and products.

import { kcBlock, MR } from "./gemm_blocking";
import { micro4x8 } from "./gemm_microkernel";

/**
 * Row stride (elements) of the forward's V and M: a chunk of tiles, room for the last group's four
 * lanes and the micro-kernel's eight columns, and an odd number of 32-byte blocks, so that the
 * rows a micro-kernel call reads do not all fall in the same few cache sets.
 */
@inline
export function tStride(chunk: i32): i32 {
  return ((chunk + 4 + 7) & ~7) | 8;
}

/**
 * Bytes between the xi planes of V or M (`rows` rows of `ld` floats): the rows rounded up to whole
 * cache lines, and an odd number of lines, so that the 16 or 36 planes a transform writes or reads
 * at once fall in as many different L1 sets (with planes a power of two apart, 64 input channels
 * put all 36 in two sets of 8 ways, and the transforms ran at a quarter of their speed).
 */
@inline
export function planeStride(rows: i32, ld: i32): usize {
  const lines = ((rows * ld) + 15) >> 4;
  return <usize>(lines | 1) << 6;
}

/** The micro-kernel's rows: the output channels rounded up to MR (4). */
@inline
export function mRows(cout: i32): i32 {
  return (cout + MR - 1) / MR * MR;
}

/**
 * The 3x3 filter of effective output channel m and input channel k in w (o x c x 3 x 3): w[m][k],
 * or, when `flip` (the input gradient's filter, whose output channels are the c inputs of w),
 * w[k][m]. The filter transforms read it there.
 */
@inline
export function filterAt(w: usize, m: i32, k: i32, c: i32, flip: i32): usize {
  return w + (<usize>((flip != 0 ? k * c + m : m * c + k) * 9) << 2);
}

/**
 * The byte offset of U(m, k) in a transformed filter plane packed as the micro-kernel reads it:
 * K blocks of kb columns (block pc at pc * mp), each mp / MR slivers of MR rows by the block's kc
 * columns, k-major (the layout of packAAll in gemm_pack.ts); ki input channels, mp rows.
 */
@inline
export function packedOffset(m: i32, k: i32, mp: i32, ki: i32, kb: i32): usize {
  const pc = k / kb * kb;
  const kc = min(kb, ki - pc);
  return <usize>(pc * mp + m / MR * MR * kc + (k - pc) * MR + m % MR) << 2;
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
  const vPlane = planeStride(cin, ld);
  const mPlane = planeStride(mp, ld);
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
        for (let ir = 0; ir < mp; ir += MR) {
          micro4x8(kc, ap, bp, cp, ldBytes, acc, 0, 0, 0, ldBytes);
          ap += <usize>(MR * kc) << 2;
          cp += MR * ldBytes;
        }
      }
    }
  }
}
