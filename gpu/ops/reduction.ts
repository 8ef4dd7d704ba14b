/**
 * The `webgpu` backend's reductions: `reduceSum` over any axes (a thread per output, or for few
 * long sums a workgroup per output and chunk, see `planReduceSum`), and the two-pass whole-buffer
 * sums behind `sumSquares` and the losses.
 *
 * @module
 */

import type { ReductionOps, Storage } from "../../src/backend.ts";
import { rowMajorStrides } from "../../src/backends/strides.ts";
import { sizeOf } from "../../src/shape.ts";
import { copyKernel } from "../kernels/elementwise.ts";
import {
  finalSumKernel,
  partialSumKernel,
  type PartialTerm,
  reduceSumGroupKernel,
  reduceSumThreadKernel,
  splitSumKernel,
} from "../kernels/reduce.ts";
import { partialSumGroups, planReduceSum } from "../policy.ts";
import { type GpuRuntime, GpuStorage } from "../runtime.ts";
import { groupsGrid, linearGrid } from "../wgsl.ts";

/**
 * Records a two-pass whole-buffer reduction of `term` over each input (a list of the term's
 * operands) into `out[0]`, scaled by `scale`: partial sums per workgroup, then their sum.
 */
export function reduceAll(
  rt: GpuRuntime,
  term: PartialTerm,
  inputs: readonly (readonly GpuStorage[])[],
  out: GpuStorage,
  scale: number,
  delta = 0,
): void {
  const groups = inputs.map((xs) => partialSumGroups(xs[0].length));
  const total = groups.reduce((a, b) => a + b, 0);
  if (total === 0) {
    rt.fill(out, 0);
    return;
  }
  const part = rt.scratch(total);
  let at = 0;
  inputs.forEach((xs, i) => {
    const slot = new GpuStorage(part.allocation, at, groups[i], true);
    rt.run(partialSumKernel(term), [...xs, slot], [xs[0].length, delta], [groups[i], 1, 1]);
    at += groups[i];
  });
  rt.run(finalSumKernel(), [part, out], [total, scale], [1, 1, 1]);
}

/** The `webgpu` backend's reductions on `rt`. */
export function reductionOps(rt: GpuRuntime): ReductionOps {
  return {
    reduceSum(x: Storage, shape: readonly number[], outShape: readonly number[]): Storage {
      const X = rt.storage(x), outN = sizeOf(outShape), out = rt.alloc(outN);
      if (outN === 0) return out;
      if (sizeOf(shape) === 0) {
        rt.fill(out, 0);
        return out;
      }
      const strides = rowMajorStrides(shape);
      const dims: { s: number; st: number; red: boolean }[] = [];
      for (let d = 0; d < shape.length; d++) {
        if (shape[d] === 1) continue;
        const red = outShape[d] === 1;
        const last = dims.at(-1);
        if (last && last.red === red) {
          last.s *= shape[d];
          last.st = strides[d];
        } else dims.push({ s: shape[d], st: strides[d], red });
      }
      const kept = dims.filter((d) => !d.red), reduced = dims.filter((d) => d.red);
      if (reduced.length === 0) {
        rt.run(copyKernel(), [X, out], [outN], linearGrid(outN));
        return out;
      }
      if (kept.length > 4 || reduced.length > 4) {
        throw new RangeError(`reduceSum: [${shape}] -> [${outShape}] alternates too often`);
      }
      const count = sizeOf(reduced.map((d) => d.s));
      const pad = (a: number[]) => [...a, 0, 0, 0, 0].slice(0, 4);
      const ks = pad(kept.map((d) => d.s)), kst = pad(kept.map((d) => d.st));
      const plan = planReduceSum(outN, count);
      if (plan.kind === "group") {
        const { chunks, chunk, splits } = plan;
        const dst = chunks === 1 ? out : rt.scratch(chunks * outN);
        const [gx, gy] = groupsGrid(outN);
        rt.run(reduceSumGroupKernel(), [X, dst], [
          outN,
          count,
          kept.length,
          reduced.length,
          ks,
          kst,
          pad(reduced.map((d) => d.s)),
          pad(reduced.map((d) => d.st)),
          chunk,
        ], [gx, gy, splits]);
        if (chunks > 1) {
          rt.run(splitSumKernel(), [dst, out], [outN, splits], linearGrid(outN));
        }
      } else {
        const inner = reduced.at(-1)!, outer = reduced.slice(0, -1);
        rt.run(reduceSumThreadKernel(), [X, out], [
          outN,
          sizeOf(outer.map((d) => d.s)),
          kept.length,
          outer.length,
          ks,
          kst,
          pad(outer.map((d) => d.s)),
          pad(outer.map((d) => d.st)),
          inner.s,
          inner.st,
        ], linearGrid(outN));
      }
      return out;
    },

    sumSquares(xs: readonly Storage[]): Storage {
      const out = rt.alloc(1);
      const list = xs.map((x) => rt.storage(x)).filter((x) => x.length > 0).map((x) => [x]);
      if (list.length === 0) rt.fill(out, 0);
      else reduceAll(rt, "square", list, out, 1);
      return out;
    },
  };
}
