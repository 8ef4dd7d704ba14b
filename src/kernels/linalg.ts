/**
 * The linear-algebra kernels: one batched matrix product with optional transposes and operands
 * shared by the whole batch, and the fully connected layer with its bias and activation fused.
 *
 * @module
 */

import type { ElementwiseOps } from "./elementwise.ts";
import type { MemoryOps, Storage } from "./memory.ts";

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

/** An activation {@link LinalgOps.linear} can fuse: "none" or "relu" (x > 0 ? x : 0). */
export type LinearActivation = "none" | "relu";

/** The shape of a fully connected layer y [m, n] = act(x [m, k] @ weight [n, k]ᵀ + bias [n]). */
export interface LinearSpec {
  /** Rows of x and y (the batch). */
  readonly m: number;
  /** Inputs: columns of x and of the weight. */
  readonly k: number;
  /** Outputs: rows of the weight, columns of y, length of the bias. */
  readonly n: number;
  /** Applied to the sum with its bias (default "none"). */
  readonly activation?: LinearActivation;
}

/** Matrix products. */
export interface LinalgOps {
  /** The batched matrix product described by `spec` (see {@link MatmulSpec}). */
  matmul(a: Storage, b: Storage, spec: MatmulSpec): Storage;
  /**
   * The fully connected layer act(x @ weightᵀ + bias) (PyTorch's layout: weight [n, k]); `bias`
   * null for none. It equals {@link linearByParts} bit for bit (the product is rounded to float32,
   * then the bias added, then the activation applied), but a fast backend fuses the three into the
   * product's store.
   */
  linear(x: Storage, weight: Storage, bias: Storage | null, spec: LinearSpec): Storage;
}

/**
 * {@link LinalgOps.linear} as three kernels: the product, the bias added (broadcast over the
 * rows), the activation; the intermediates are freed.
 */
export function linearByParts(
  be:
    & Pick<LinalgOps, "matmul">
    & Pick<ElementwiseOps, "binary" | "unary">
    & Pick<MemoryOps, "free">,
  x: Storage,
  weight: Storage,
  bias: Storage | null,
  spec: LinearSpec,
): Storage {
  const { m, k, n } = spec;
  let y = be.matmul(x, weight, { batch: 1, m, k, n, transB: true });
  if (bias) {
    const sum = be.binary("add", y, bias, { a: [m, n], b: [1, n], out: [m, n] });
    be.free(y);
    y = sum;
  }
  if ((spec.activation ?? "none") === "relu") {
    const r = be.unary("relu", y);
    be.free(y);
    y = r;
  }
  return y;
}
