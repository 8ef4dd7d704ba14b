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
import { linearKernel, matmulKernel } from "../kernels/gemm.ts";
import { elementwiseOps } from "./elementwise.ts";
import { memoryOps } from "./memory.ts";
import { chooseTile, MAX_WORKGROUPS_PER_DIMENSION } from "../policy.ts";
import type { GpuRuntime } from "../runtime.ts";

/**
 * The `webgpu` backend's matrix product on `rt`, and the linear layer: with a bias, one GEMM whose
 * store adds the bias and applies the activation; without, by parts.
 */
export function linalgOps(rt: GpuRuntime): LinalgOps {
  const parts = { ...elementwiseOps(rt), ...memoryOps(rt) };
  const ops: LinalgOps = {
    linear(x: Storage, weight: Storage, bias: Storage | null, spec: LinearSpec): Storage {
      const { m, k, n } = spec;
      if (!bias || m * n * k === 0) {
        return linearByParts({ ...parts, matmul: ops.matmul }, x, weight, bias, spec);
      }
      const X = rt.storage(x), W = rt.storage(weight), B = rt.storage(bias);
      if (X.length < m * k || W.length < n * k || B.length < n) {
        throw new RangeError(
          `linear: operands of ${X.length}, ${W.length} and ${B.length} elements are too small ` +
            `for ${m}x${k} -> ${n}`,
        );
      }
      const out = rt.alloc(m * n);
      const tile = chooseTile(m, n, 1);
      const act = (spec.activation ?? "none") === "relu" ? 1 : 0;
      rt.labelled(() => `linear ${m}x${k} -> ${n}${act ? " relu" : ""}`, () => {
        rt.run(linearKernel(tile), [X, W, B, out], [m, n, k, k, 0, act], [
          Math.ceil(n / tile.bn),
          Math.ceil(m / tile.bm),
          1,
        ]);
      });
      return out;
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
