// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the blocking of the matrix-multiply engine (BLIS-style; see gemm.ts). C is
// computed in MR x NR tiles by the micro-kernel (gemm_microkernel.ts); B' is packed a KC x NC panel
// at a time into NR-column slivers and A' an MC x KC block at a time into MR-row slivers
// (gemm_pack.ts), KC chosen by kcBlock. The Winograd products (winograd_common.ts) pack their
// transformed filters in the same layout.

/** Rows of the micro-kernel's tile (micro4x8), and of a packed sliver of A'. */
export const MR = 4;
/** Columns of the micro-kernel's tile, and of a packed sliver of B'. */
export const NR = 8;
/** The deepest K block packed at once. */
export const KC_MAX = 384;
/** Rows of A' packed at once (an MC x KC block). */
export const MC = 96;
/** Columns of B' packed at once (a KC x NC panel). */
export const NC = 512;

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
