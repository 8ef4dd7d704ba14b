/**
 * The `webgpu` backend's convolutions: the forward pass and both gradients as implicit GEMMs
 * (im2col computed in the kernels' loaders), each product's depth K split across workgroups when
 * its output is too small to fill the GPU (see `planSplitK`), the splits' partials then summed.
 * Convolutions are compiled generic or for their shape (`specializeShapes`).
 *
 * @module
 */

import type { Conv2dGeometry, ConvOps, Storage } from "../../src/backend.ts";
import {
  convDataKernel,
  convFilterKernel,
  convForwardKernel,
  type ConvShape,
} from "../kernels/conv.ts";
import type { GemmTile } from "../kernels/gemm.ts";
import { splitSumKernel } from "../kernels/reduce.ts";
import { planSplitK, SPLIT_FILTER, SPLIT_WHEN_FEW, type SplitRule } from "../policy.ts";
import type { GpuRuntime, GpuStorage } from "../runtime.ts";
import { type KernelSpec, linearGrid } from "../wgsl.ts";

/** A convolution's label in a profile. */
function convLabel(pass: string, g: Conv2dGeometry): string {
  return `conv ${pass} ${g.c}->${g.o} ${g.kh}x${g.kw}/${g.stride} @${g.h} n${g.n}`;
}

/** The geometry as kernel parameters. */
function convParams(g: Conv2dGeometry): number[] {
  return [g.c, g.h, g.w, g.o, g.kh, g.kw, g.oh, g.ow, g.stride, g.pad];
}

/**
 * Records one convolution product (an M x N output, depth K) on the kernel `make` builds for the
 * tile `planSplitK` picks under `split`; with K split, the splits' partials go to scratch and are
 * summed into `out` after.
 */
function convProduct(
  rt: GpuRuntime,
  label: () => string,
  make: (tile: GemmTile) => KernelSpec,
  inputs: GpuStorage[],
  out: GpuStorage,
  [M, N, K]: [number, number, number],
  params: number[],
  split: SplitRule,
): void {
  const { tile, splits, kChunk } = planSplitK(M, N, K, split);
  const dst = splits === 1 ? out : rt.scratch(splits * M * N);
  const grid: [number, number, number] = [Math.ceil(N / tile.bn), Math.ceil(M / tile.bm), splits];
  rt.labelled(
    label,
    () => rt.run(make(tile), [...inputs, dst], [M, N, K, kChunk, 0, ...params], grid),
  );
  if (splits > 1) {
    rt.run(splitSumKernel(), [dst, out], [M * N, splits], linearGrid(M * N));
  }
}

/** The `webgpu` backend's convolutions on `rt`. */
export function convOps(rt: GpuRuntime): ConvOps {
  /** The shape a convolution kernel is compiled for (null: generic). */
  const convShape = (g: Conv2dGeometry): ConvShape | null => rt.specializeShapes ? g : null;

  return {
    conv2d(x: Storage, w: Storage, bias: Storage | null, g: Conv2dGeometry): Storage {
      const X = rt.storage(x), W = rt.storage(w), Bv = bias ? rt.storage(bias) : null;
      const M = g.o, N = g.n * g.oh * g.ow, K = g.c * g.kh * g.kw;
      const out = rt.alloc(M * N);
      if (M * N === 0) return out;
      convProduct(
        rt,
        () => convLabel("fwd", g),
        (t) => convForwardKernel(t, convShape(g)),
        [X, W, Bv ?? W],
        out,
        [M, N, K],
        [...convParams(g), Bv ? 1 : 0],
        SPLIT_WHEN_FEW,
      );
      return out;
    },

    conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry): Storage {
      const D = rt.storage(dy), W = rt.storage(w);
      const M = g.c, N = g.n * g.h * g.w, K = g.o * g.kh * g.kw;
      const out = rt.alloc(M * N);
      if (M * N === 0) return out;
      convProduct(
        rt,
        () => convLabel("dX", g),
        (t) => convDataKernel(t, convShape(g)),
        [D, W],
        out,
        [M, N, K],
        convParams(g),
        SPLIT_WHEN_FEW,
      );
      return out;
    },

    conv2dBackwardFilter(x: Storage, dy: Storage, g: Conv2dGeometry): Storage {
      const X = rt.storage(x), D = rt.storage(dy);
      const M = g.o, N = g.c * g.kh * g.kw, K = g.n * g.oh * g.ow;
      const out = rt.alloc(M * N);
      if (M * N === 0) return out;
      convProduct(
        rt,
        () => convLabel("dW", g),
        (t) => convFilterKernel(t, convShape(g)),
        [D, X],
        out,
        [M, N, K],
        convParams(g),
        SPLIT_FILTER,
      );
      return out;
    },
  };
}
