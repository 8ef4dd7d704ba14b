/**
 * The linear-algebra kernel: one batched matrix product with optional transposes and operands
 * shared by the whole batch.
 *
 * @module
 */

import type { Storage } from "./memory.ts";

/**
 * The shape of a batched matrix product C[i] = op(A[i]) @ op(B[i]) for i < batch, C[i] of m x n.
 * A[i] is m x k (k x m when transA), B[i] is k x n (n x k when transB), all row-major and
 * contiguous.
 */
export interface MatmulSpec {
  /** Number of products. */
  readonly batch: number;
  /** Rows of C. */
  readonly m: number;
  /** The inner size. */
  readonly k: number;
  /** Columns of C. */
  readonly n: number;
  /** A is stored k x m (default false). */
  readonly transA?: boolean;
  /** B is stored n x k (default false). */
  readonly transB?: boolean;
  /** A has one matrix per batch entry (default true); false: one A shared by every entry. */
  readonly batchA?: boolean;
  /** B has one matrix per batch entry (default true); false: one B shared by every entry. */
  readonly batchB?: boolean;
}

/** A {@link MatmulSpec} with its defaults filled in. */
export type FullMatmulSpec = Required<MatmulSpec>;

/** Fills in the defaults of a {@link MatmulSpec} (no transposes, every operand batched). */
export function fullMatmulSpec(s: MatmulSpec): FullMatmulSpec {
  return {
    batch: s.batch,
    m: s.m,
    k: s.k,
    n: s.n,
    transA: s.transA ?? false,
    transB: s.transB ?? false,
    batchA: s.batchA ?? true,
    batchB: s.batchB ?? true,
  };
}

/** Matrix products. */
export interface LinalgOps {
  /** The batched matrix product described by `spec` (see {@link MatmulSpec}). */
  matmul(a: Storage, b: Storage, spec: MatmulSpec): Storage;
}
