/**
 * The reference backend's matrix product: every transpose case becomes C = A' B'^T, computed in
 * float64 in 4 x 4 blocks.
 *
 * @module
 */

import {
  fullMatmulSpec,
  type LinalgOps,
  linearByParts,
  type LinearSpec,
  type MatmulSpec,
  type Storage,
} from "../../backend.ts";
import { elementwiseOps } from "./elementwise.ts";
import { type Arr, arr, memoryOps, type ReferenceMemory } from "./memory.ts";

/** dst [cols, rows] = transpose of src [rows, cols] starting at `off`. */
function transposeInto(src: Arr, off: number, rows: number, cols: number, dst: Float64Array): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) dst[c * rows + r] = src[off + r * cols + c];
  }
}

/** C[co + i n + j] = sum_p A[i k + p] B[j k + p], in 4 x 4 blocks with scalar edges. */
function gemmNT(
  A: Float64Array,
  B: Float64Array,
  C: Arr,
  co: number,
  m: number,
  n: number,
  k: number,
) {
  const m4 = m - (m % 4), n4 = n - (n % 4);
  for (let i = 0; i < m4; i += 4) {
    const a0 = i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
    for (let j = 0; j < n4; j += 4) {
      const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let p = 0; p < k; p++) {
        const x0 = A[a0 + p], x1 = A[a1 + p], x2 = A[a2 + p], x3 = A[a3 + p];
        const y0 = B[b0 + p], y1 = B[b1 + p], y2 = B[b2 + p], y3 = B[b3 + p];
        c00 += x0 * y0, c01 += x0 * y1, c02 += x0 * y2, c03 += x0 * y3;
        c10 += x1 * y0, c11 += x1 * y1, c12 += x1 * y2, c13 += x1 * y3;
        c20 += x2 * y0, c21 += x2 * y1, c22 += x2 * y2, c23 += x2 * y3;
        c30 += x3 * y0, c31 += x3 * y1, c32 += x3 * y2, c33 += x3 * y3;
      }
      const r0 = co + i * n + j, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
      C[r0] = c00, C[r0 + 1] = c01, C[r0 + 2] = c02, C[r0 + 3] = c03;
      C[r1] = c10, C[r1 + 1] = c11, C[r1 + 2] = c12, C[r1 + 3] = c13;
      C[r2] = c20, C[r2 + 1] = c21, C[r2 + 2] = c22, C[r2 + 3] = c23;
      C[r3] = c30, C[r3 + 1] = c31, C[r3 + 2] = c32, C[r3 + 3] = c33;
    }
  }
  // Edges: rows past m4 (all columns) and columns past n4 (rows below m4).
  for (let i = 0; i < m; i++) {
    for (let j = i < m4 ? n4 : 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += A[i * k + p] * B[j * k + p];
      C[co + i * n + j] = s;
    }
  }
}

/** The reference backend's matrix product, and the linear layer as its three kernels. */
export function linalgOps(mem: ReferenceMemory): LinalgOps {
  const parts = { ...elementwiseOps(mem), ...memoryOps(mem) };
  const ops: LinalgOps = {
    linear(x: Storage, weight: Storage, bias: Storage | null, spec: LinearSpec): Storage {
      return linearByParts({ ...parts, matmul: ops.matmul }, x, weight, bias, spec);
    },
    matmul(a: Storage, b: Storage, spec: MatmulSpec): Storage {
      const { batch, m, k, n, transA, transB, batchA, batchB } = fullMatmulSpec(spec);
      const A = arr(a), B = arr(b), out = mem.alloc(batch * m * n), C = out.data;
      // Every case becomes C = A' B'^T with A' [m, k] and B' [n, k] row-major, so one blocked loop
      // (4 x 4 outputs per pass, both operands read along k) serves all four transpose cases.
      const at = new Float64Array(m * k), bt = new Float64Array(n * k);
      for (let bi = 0; bi < batch; bi++) {
        const ao = batchA ? bi * m * k : 0, bo = batchB ? bi * k * n : 0, co = bi * m * n;
        if (transA) transposeInto(A, ao, k, m, at);
        else at.set(A.subarray(ao, ao + m * k));
        if (transB) bt.set(B.subarray(bo, bo + n * k));
        else transposeInto(B, bo, k, n, bt);
        gemmNT(at, bt, C, co, m, n, k);
      }
      return out;
    },
  };
  return ops;
}
