/**
 * The `webgpu` backend's matrix product: batched, either operand transposed or shared across the
 * batch, on the tiled GEMM with the tile `chooseTile` picks; batches past the per-dimension grid
 * limit take several dispatches.
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
import { matmulKernel } from "../kernels/gemm.ts";
import { elementwiseOps } from "./elementwise.ts";
import { memoryOps } from "./memory.ts";
import { chooseTile, MAX_WORKGROUPS_PER_DIMENSION } from "../policy.ts";
import type { GpuRuntime } from "../runtime.ts";

/**
 * The `webgpu` backend's matrix product on `rt`, and the linear layer as its three kernels (the
 * product, the bias, the activation) recorded into the same command encoder.
 */
export function linalgOps(rt: GpuRuntime): LinalgOps {
  const parts = { ...elementwiseOps(rt), ...memoryOps(rt) };
  const ops: LinalgOps = {
    linear(x: Storage, weight: Storage, bias: Storage | null, spec: LinearSpec): Storage {
      return linearByParts({ ...parts, matmul: ops.matmul }, x, weight, bias, spec);
    },
    matmul(a: Storage, b: Storage, mm: MatmulSpec): Storage {
      const { batch, m, k, n, transA, transB, batchA, batchB } = fullMatmulSpec(mm);
      const A = rt.storage(a), B = rt.storage(b), out = rt.alloc(batch * m * n);
      if (batch * m * n === 0) return out;
      if (A.length < (batchA ? batch : 1) * m * k || B.length < (batchB ? batch : 1) * k * n) {
        throw new RangeError(
          `matmul: operands of ${A.length} and ${B.length} elements are too small for ` +
            `batch ${batch}, ${m}x${k} @ ${k}x${n}`,
        );
      }
      if (k === 0) {
        rt.fill(out, 0);
        return out;
      }
      const tile = chooseTile(m, n, batch);
      const spec = matmulKernel(tile);
      const gx = Math.ceil(n / tile.bn), gy = Math.ceil(m / tile.bm);
      const label = () =>
        `matmul ${batch}x ${m}x${k} @ ${k}x${n}${transA ? " tA" : ""}${transB ? " tB" : ""}`;
      const maxZ = MAX_WORKGROUPS_PER_DIMENSION;
      rt.labelled(label, () => {
        for (let z0 = 0; z0 < batch; z0 += maxZ) {
          const zs = Math.min(maxZ, batch - z0);
          rt.run(spec, [A, B, out], [
            m,
            n,
            k,
            k,
            z0,
            batchA ? m * k : 0,
            transA ? 1 : k,
            transA ? m : 1,
            batchB ? k * n : 0,
            transB ? 1 : n,
            transB ? k : 1,
            transA ? 0 : 1,
            transB ? 0 : 1,
          ], [gx, gy, zs]);
        }
      });
      return out;
    },
  };
  return ops;
}
