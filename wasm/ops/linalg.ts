/**
 * The wasm backend's matrix products: the packed GEMM (wasm/assembly/gemm.ts), split over threads
 * by columns or rows, and the skinny kernels for few columns or a short inner size. {@link gemm}
 * is also the helper the convolutions run their implicit GEMMs by.
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
} from "../../src/backend.ts";
import type { WasmRuntime } from "../runtime.ts";
import { elementwiseOps } from "./elementwise.ts";
import { memoryOps } from "./memory.ts";

/** Rows of the GEMM's micro-tile (MR in wasm/assembly/gemm_blocking.ts). */
const MR = 4;
/** Rows of A' and depth the GEMM packs as one block (MC and KC_MAX there). */
const MC = 96, KC_MAX = 384;
/** Columns of B' the GEMM packs as one panel (NC there). */
const NC = 512;

/**
 * What the GEMM does to a finished sum as it stores it: `mode` 0 nothing, 1 adds the floats at
 * `bias` one a row of C, 2 one a column; then `act` 1 applies ReLU.
 */
export interface GemmEpilogue {
  /** Where the bias is (a byte offset in the memory; 0 with mode 0). */
  readonly bias: number;
  /** 0 no bias, 1 one a row, 2 one a column. */
  readonly mode: 0 | 1 | 2;
  /** 0 no activation, 1 ReLU. */
  readonly act: 0 | 1;
}

const NO_EPILOGUE: GemmEpilogue = { bias: 0, mode: 0, act: 0 };

/**
 * C[m x n] (+)= A' B' (see wasm/assembly/gemm.ts for the modes), then the `epilogue`, split over
 * threads by columns (multiples of the 8-wide micro-tile) or by rows (multiples of 4), whichever
 * is larger; a square C by rows when B' is one panel (each thread then packs it alongside the
 * others, where a split by columns packs a larger A' on the calling thread first: 256x64 by 64x256
 * 0.93-0.97x the time, 256x256 by 256x256 0.96-0.99x, 128x128 by 128x128 0.91x on two threads).
 */
export function gemm(
  rt: WasmRuntime,
  m: number,
  n: number,
  k: number,
  a: number,
  ars: number,
  acs: number,
  bmode: number,
  b: number,
  brs: number,
  bcs: number,
  c: number,
  ldc: number,
  accumulate: number,
  epilogue: GemmEpilogue = NO_EPILOGUE,
): void {
  const geo = rt.geo, work = (t: number) => rt.gemmWorkspace(t);
  const min = m * n * k >= rt.minMacs ? 0 : Infinity;
  const operands = [k, a, ars, acs, bmode, b, brs, bcs, c, ldc, accumulate, geo];
  // After A' (packed, or 0): the epilogue, the product's tag, the slot of the thread's scratch.
  const tail = [epilogue.bias, epilogue.mode, epilogue.act, rt.gemmTag(), 0];
  if (n < m || (n === m && n <= NC && k <= KC_MAX)) {
    // Split by rows: each thread packs B' for its first chunk and, when B' is one panel, keeps it
    // for the rest (the tag).
    const rest = [...operands, 0, ...tail];
    rt.par("gemm", m, MR, min, (i0, i1) => [i0, i1, 0, n, ...rest], 0, work);
    return;
  }
  // Split by columns: every chunk needs all of A'. When it is one block, each thread packs it for
  // its first chunk and keeps it (the tag); a larger A' is packed once for all threads first.
  const shared = min === 0 && rt.pool?.active() && n > 8 && (m > MC || k > KC_MAX);
  const packedBytes = Math.ceil(m / MR) * MR * k * 4;
  const apacked = shared ? rt.heap.alloc(packedBytes) : 0;
  if (apacked) rt.k.packAAll(a, ars, acs, m, k, apacked);
  const rest = [...operands, apacked, ...tail];
  try {
    rt.par("gemm", n, 8, min, (j0, j1) => [0, m, j0, j1, ...rest], 2, work);
  } finally {
    if (apacked) rt.heap.free(apacked, packedBytes);
  }
}

/** A skinny kernel's number (see {@link skinnyKind}), or 0 for the packed GEMM. */
export type SkinnyKind = 0 | 1 | 2 | 3 | 4;

/**
 * Which kernel runs the product C[m x n] = A' B' with inner size k (A' = A^T when `transA`, B' =
 * B^T when `transB`): 1 for gemmSkinnyN (few columns, n <= 4, rows of A' contiguous), 2 for
 * gemmSkinnyK (a short inner size, k <= 4), 3 for gemmOuterN (few columns, columns of A'
 * contiguous), 4 for gemmOuterM (few rows, m <= 4, rows of B' contiguous), 0 for the packed GEMM,
 * whose packing and 4x8 tiles waste most of their work there. Kinds 3 and 4 give the packed GEMM's
 * bits. The measurements are in docs/wasm_kernel_choice.md.
 */
export function skinnyKind(
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB = false,
): SkinnyKind {
  if (n <= 4 && !transA && k >= 4) return 1;
  if (k <= 4 && m >= 4) return 2;
  if (n <= 4 && transA) return 3;
  if (m <= 4 && !transB) return 4;
  return 0;
}

/**
 * C[m x n] = A' B' by gemmSkinnyN (kind 1), gemmSkinnyK (2) or gemmOuterN (3), split over threads
 * by rows, or by gemmOuterM (4), split by columns; gemmSkinnyK also runs the epilogue (a bias a
 * column, ReLU: kind 2 only).
 */
function matmulSkinny(
  rt: WasmRuntime,
  kind: SkinnyKind,
  m: number,
  n: number,
  k: number,
  a: number,
  ars: number,
  acs: number,
  b: number,
  brs: number,
  bcs: number,
  c: number,
  epilogue: GemmEpilogue = NO_EPILOGUE,
): void {
  if (kind !== 2 && epilogue.mode + epilogue.act > 0) {
    throw new RangeError(`skinny GEMM kernel ${kind} has no epilogue`);
  }
  const min = m * n * k >= rt.minMacs ? 0 : Infinity;
  if (kind === 3 || kind === 4) {
    // The outer-product kernels' 128-byte tile: the start of this thread's GEMM scratch.
    const work = (t: number) => rt.gemmWorkspace(t);
    // Kind 3: A'(i, p) = a[i + p acs], the rows of C over the threads; kind 4: B'(p, j) =
    // b[p brs + j], the columns of C over the threads.
    const [name, units, args] = kind === 3
      ? ["gemmOuterN", m, [a, acs, b, brs, bcs, n, k, c, n]] as const
      : ["gemmOuterM", n, [a, ars, acs, b, brs, m, k, c, n]] as const;
    rt.par(name, units, 8, min, (r0, r1) => [...args, r0, r1, 0], args.length, work);
    return;
  }
  // B' with the layout the kernel reads: rows of k (kind 1) or of n (kind 2) contiguous.
  const want = kind === 1 ? brs === 1 : bcs === 1;
  let tmp = 0;
  if (!want) {
    tmp = rt.heap.alloc(n * k * 4);
    const f = rt.f32, src = b >> 2, dst = tmp >> 2;
    for (let p = 0; p < k; p++) {
      for (let j = 0; j < n; j++) {
        const v = f[src + p * brs + j * bcs];
        f[dst + (kind === 1 ? j * k + p : p * n + j)] = v;
      }
    }
  }
  const bq = tmp || b;
  try {
    if (kind === 1) {
      const bts = tmp ? k : bcs;
      rt.par("gemmSkinnyN", m, 4, min, (i0, i1) => [a, ars, bq, bts, n, k, c, n, i0, i1]);
    } else {
      const bps = tmp ? n : brs;
      const { bias, act } = epilogue;
      rt.par(
        "gemmSkinnyK",
        m,
        4,
        min,
        (i0, i1) => [a, ars, acs, bq, bps, n, k, c, n, bias, act, i0, i1],
      );
    }
  } finally {
    if (tmp) rt.heap.free(tmp, n * k * 4);
  }
}

/**
 * The wasm backend's matrix products over runtime `rt`, and the linear layer: on the packed GEMM
 * with the bias and the activation in the store of each tile; the skinny shapes by parts.
 */
export function linalgOps(rt: WasmRuntime): LinalgOps {
  const parts = { ...elementwiseOps(rt), ...memoryOps(rt) };
  const ops: LinalgOps = {
    linear(x: Storage, weight: Storage, bias: Storage | null, spec: LinearSpec): Storage {
      const { m, k, n } = spec;
      const act = (spec.activation ?? "none") === "relu" ? 1 : 0;
      // B' = W^T: its rows are not contiguous.
      const skinny = rt.skinnyGemm ? skinnyKind(m, n, k, false, true) : 0;
      if (k === 0 || m === 0 || n === 0 || skinny === 1) {
        return linearByParts({ ...parts, matmul: ops.matmul }, x, weight, bias, spec);
      }
      const xp = rt.p(x), wp = rt.p(weight), bp = bias ? rt.p(bias) : 0;
      const out = rt.uninit(m * n);
      const epilogue = { bias: bp, mode: bias ? 2 : 0, act } as const;
      if (skinny === 2) matmulSkinny(rt, 2, m, n, k, xp, k, 1, wp, 1, k, out.ptr, epilogue);
      else gemm(rt, m, n, k, xp, k, 1, 0, wp, 1, k, out.ptr, n, 0, epilogue);
      return out;
    },
    matmul(a: Storage, b: Storage, spec: MatmulSpec): Storage {
      const { batch, m, k, n, transA, transB, batchA, batchB } = fullMatmulSpec(spec);
      const ap = rt.p(a), bp = rt.p(b);
      // The GEMM writes every output unless k = 0, when the product is zeros.
      const out = k === 0 ? rt.zeros(batch * m * n) : rt.uninit(batch * m * n);
      if (m === 0 || n === 0 || k === 0) return out;
      const ars = transA ? 1 : k, acs = transA ? m : 1;
      const brs = transB ? 1 : n, bcs = transB ? k : 1;
      const skinny = rt.skinnyGemm ? skinnyKind(m, n, k, transA, transB) : 0;
      if (!skinny && batch > 1 && m * n * k < rt.minMacs) {
        // Many small products (attention's, a head and an image each): whole products a thread.
        const work = (t: number) => rt.gemmWorkspace(t);
        const min = batch * m * n * k >= rt.minMacs ? 0 : Infinity;
        const aStride = batchA ? m * k * 4 : 0, bStride = batchB ? k * n * 4 : 0;
        const args = [m, n, k, ap, ars, acs, aStride, bp, brs, bcs, bStride, out.ptr, m * n * 4];
        rt.par("gemmBatch", batch, 1, min, (b0, e0) => [...args, b0, e0, 0], args.length, work);
        return out;
      }
      for (let bi = 0; bi < batch; bi++) {
        if (skinny) {
          const bb = bp + (batchB ? bi * k * n * 4 : 0);
          matmulSkinny(
            rt,
            skinny,
            m,
            n,
            k,
            ap + (batchA ? bi * m * k * 4 : 0),
            ars,
            acs,
            bb,
            brs,
            bcs,
            out.ptr + bi * m * n * 4,
          );
          continue;
        }
        gemm(
          rt,
          m,
          n,
          k,
          ap + (batchA ? bi * m * k * 4 : 0),
          ars,
          acs,
          0,
          bp + (batchB ? bi * k * n * 4 : 0),
          brs,
          bcs,
          out.ptr + bi * m * n * 4,
          n,
          0,
        );
      }
      return out;
    },
  };
  return ops;
}
