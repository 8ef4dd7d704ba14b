/**
 * The wasm backend's convolutions: each pass runs by the algorithm wasm/conv_policy.ts chooses
 * (direct, Winograd F(2x2, 3x3) or F(4x4, 3x3), Winograd F(3x3, 2x2) for the filter gradient,
 * implicit GEMMs), split over threads.
 *
 * @module
 */

import type { Conv2dGeometry, ConvOps, Storage } from "../../src/backend.ts";
import { chooseConv, type WinogradChoice } from "../conv_policy.ts";
import type { WasmRuntime, WasmStorage } from "../runtime.ts";
import { gemm } from "./linalg.ts";
import { permute } from "./layout.ts";
import { reduceSum } from "./reduction.ts";

/**
 * out[n] (+)= A' times the im2col view of image n of `x`, for the whole batch in one GEMM
 * (mode 2: columns run over (n, oy, ox)); `g` is the geometry of the convolution computed, with
 * `g.o` rows of A'.
 */
function batchedConv(
  rt: WasmRuntime,
  g: Conv2dGeometry,
  a: number,
  ars: number,
  acs: number,
  x: number,
  out: number,
  accumulate: number,
  bias = 0,
): void {
  const ohw = g.oh * g.ow;
  rt.geometry(g, g.c * g.h * g.w, g.o * ohw);
  const epilogue = { bias, mode: bias ? 1 : 0, act: 0 } as const;
  gemm(
    rt,
    g.o,
    g.n * ohw,
    g.c * g.kh * g.kw,
    a,
    ars,
    acs,
    2,
    x,
    0,
    0,
    out,
    ohw,
    accumulate,
    epilogue,
  );
}

/**
 * y (n x cout x h x w) = the 3x3 stride-1 pad-1 convolution of x (n x cin x h x w) by Winograd
 * F(2x2, 3x3) or F(4x4, 3x3) (`choice`), plus bias (0 for none). The filter w is
 * cout x cin x 3 x 3, or, with `flip`, the forward filter (cin x cout x 3 x 3) whose input
 * gradient this computes.
 */
function winogradConv(
  rt: WasmRuntime,
  choice: WinogradChoice,
  x: number,
  w: number,
  flip: boolean,
  bias: number,
  y: number,
  n: number,
  cin: number,
  cout: number,
  h: number,
  wd: number,
): void {
  const k = rt.k;
  const four = choice.tile === 4;
  const side = four ? 4 : 2;
  const { tiles, chunk } = choice;
  const utBytes = k.winogradFilterBytes(side, cout, cin);
  const scratchBytes = k.winogradScratchBytes(side, cin, cout, wd, chunk);
  const ut = rt.heap.alloc(utBytes);
  try {
    // The filter transform, split over the effective output channels (4-row slivers).
    const [o, c, f] = flip ? [cin, cout, 1] : [cout, cin, 0];
    const macs = cin * cout * (four ? 200 : 30);
    rt.par("winogradFilter", cout, 4, macs >= rt.minMacs ? 0 : Infinity, (b, e) => [
      side,
      w,
      ut,
      o,
      c,
      f,
      b,
      e,
    ]);
    rt.parScratch(
      "winogradConv",
      tiles,
      chunk,
      n * cin * cout * h * wd * 9,
      scratchBytes,
      (b, e) => [x, ut, bias, y, cin, cout, h, wd, side, chunk, b, e, 0],
      10,
    );
  } finally {
    rt.heap.free(ut, utBytes);
  }
}

/**
 * dW (o x c x 3 x 3) of a 3x3 stride-1 pad-1 convolution of x by Winograd F(3x3, 2x2), from
 * the output gradient dy: for each of the 16 positions xi of a transformed tile, the GEMM
 * M[xi] = sum over 2x2 output tiles of (A dy A^T)[xi] times (B^T d B)[xi] (o x c), then
 * dW = G^T M G. The tiles (over the whole batch) are cut into the groups of the policy's
 * choice; each group is one thread's work, and the group sums are added in order, so the bits do
 * not depend on the threads.
 */
function winogradFilterGrad(
  rt: WasmRuntime,
  x: number,
  dy: number,
  g: Conv2dGeometry,
  tiles: number,
  chunk: number,
  gsize: number,
  groups: number,
): Storage {
  const { n, c, o, h } = g, wd = g.w;
  const size = o * c * 9;
  const partial = rt.uninit(groups * size);
  const scratchBytes = rt.k.winogradFilterGradScratchBytes(c, o, chunk);
  rt.parScratch(
    "winogradFilterGrad",
    groups,
    1,
    n * o * c * 9 * h * wd,
    scratchBytes,
    (b, e) => [x, dy, partial.ptr, c, o, h, wd, chunk, tiles, gsize, b, e, 0],
    10,
  );
  if (groups === 1) return partial;
  const out = reduceSum(rt, partial, [groups, size], [1, size]);
  rt.free(partial);
  return out;
}

/**
 * y (n x cout x oh x ow) = the stride-1 convolution (padding `pad`) of x (n x cin x h x w) by
 * w (cout x cin x kh x kw), plus bias (0 for none), by directConv, split over images.
 */
function directConv(
  rt: WasmRuntime,
  x: number,
  w: number,
  bias: number,
  y: number,
  n: number,
  cin: number,
  cout: number,
  h: number,
  wd: number,
  kh: number,
  kw: number,
  pad: number,
): void {
  const oh = h + 2 * pad - kh + 1, ow = wd + 2 * pad - kw + 1;
  const bytes = rt.k.directConvScratchBytes(cout, h, wd, kh, kw, pad);
  rt.parScratch(
    "directConv",
    n,
    1,
    n * cin * cout * kh * kw * oh * ow,
    bytes,
    (b, e) => [x, w, bias, y, cin, cout, h, wd, kh, kw, pad, b, e, 0],
    11,
  );
}

/** convFilterGrad's modes (wasm/assembly/conv_grad.ts): dy times each image's im2col matrix. */
const FILTER_IM2COL = 0;
/** A pointwise filter gradient, o x c. */
const FILTER_POINTWISE = 1;
/** A stride-2 filter gradient packed from the image, o x kk x c. */
const FILTER_STRIDED = 2;

/** The wasm backend's convolutions over runtime `rt`. */
export function convOps(rt: WasmRuntime): ConvOps {
  return {
    conv2d(x: Storage, w: Storage, bias: Storage | null, g: Conv2dGeometry): Storage {
      const xp = rt.p(x), wp = rt.p(w), bp = bias ? rt.p(bias) : 0;
      const { n, c, o, oh, ow } = g;
      const ohw = oh * ow, ckk = c * g.kh * g.kw;
      // The bias fill or the GEMM writes every output unless there is neither.
      const out = bp || ckk > 0 ? rt.uninit(n * o * ohw) : rt.zeros(n * o * ohw);
      if (out.length === 0) return out;
      const choice = chooseConv("forward", g, rt.threads, rt.conv);
      if (choice.kind === "direct") {
        directConv(rt, xp, wp, bp, out.ptr, n, c, o, g.h, g.w, g.kh, g.kw, choice.pad);
        return out;
      }
      if (choice.kind === "winograd") {
        winogradConv(rt, choice, xp, wp, false, bp, out.ptr, n, c, o, g.h, g.w);
        return out;
      }
      if (ckk === 0) {
        // No inputs: the bias alone.
        for (let ni = 0; ni < n && bp; ni++) {
          const yp = out.ptr + ni * o * ohw * 4;
          rt.par("fillRows", o, 1, rt.minElements / ohw, (b, e) => [yp, bp, ohw, b, e]);
        }
        return out;
      }
      // One implicit GEMM over the whole batch: W (o x ckk) times the im2col view of every image,
      // the bias (one a row: an output channel) added in the store.
      batchedConv(rt, g, wp, ckk, 1, xp, out.ptr, 0, bp);
      return out;
    },

    conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry): Storage {
      const dp = rt.p(dy), wp = rt.p(w);
      const { n, c, h, o, oh, ow, kh, kw } = g;
      const ohw = oh * ow, hw = h * g.w, kk = kh * kw, ckk = c * kk;
      const choice = chooseConv("data", g, rt.threads, rt.conv);
      // Every path but col2im's writes every output.
      const out: WasmStorage = choice.kind === "col2im"
        ? rt.zeros(n * c * hw)
        : rt.uninit(n * c * hw);
      if (out.length === 0) return out;
      if (o === 0 || ohw === 0) {
        rt.f32.fill(0, out.ptr >> 2, (out.ptr >> 2) + out.length);
        return out;
      }
      switch (choice.kind) {
        case "winograd":
          // dx is the forward convolution of dy with the flipped, transposed filter (see below).
          winogradConv(rt, choice, dp, wp, true, 0, out.ptr, n, o, c, h, g.w);
          return out;
        case "pointwise": {
          // dx = W^T dy, image by image, as one batched GEMM (a 1x1 im2col view is the image).
          const gd = { ...g, c: o, h: oh, w: ow, o: c, oh: h, ow: g.w };
          batchedConv(rt, gd, wp, 1, c, dp, out.ptr, 0);
          return out;
        }
        case "direct":
        case "flippedGemm": {
          // Stride 1: dx is the forward convolution of dy (padded by k - 1 - pad) with the filter
          // flipped in space and transposed in channels, one implicit GEMM over the batch.
          const wf = rt.uninit(o * ckk);
          rt.par(
            "flipFilter",
            c,
            1,
            rt.minElements / (o * kk),
            (b, e) => [wp, wf.ptr, o, c, kk, b, e],
          );
          const gd = { ...g, c: o, h: oh, w: ow, o: c, pad: kh - 1 - g.pad, oh: h, ow: g.w };
          if (choice.kind === "direct") {
            directConv(rt, dp, wf.ptr, 0, out.ptr, n, o, c, oh, ow, kh, kw, gd.pad);
          } else batchedConv(rt, gd, wf.ptr, o * kk, 1, dp, out.ptr, 0);
          rt.free(wf);
          return out;
        }
      }
      rt.geometry(g);
      // Otherwise: the im2col-shaped gradient W^T dy, added back into the image row by row.
      if (choice.kind === "perImage") {
        const bytes = rt.k.gemmWorkspaceBytes() + ckk * ohw * 4;
        const geo = rt.geo;
        rt.parScratch(
          "convDataPerImage",
          n,
          1,
          n * o * ckk * ohw,
          bytes,
          (b, e) => [dp, wp, out.ptr, o, geo, b, e, 0],
          5,
        );
        return out;
      }
      const col = rt.uninit(ckk * ohw);
      for (let ni = 0; ni < n; ni++) {
        const db = dp + ni * o * ohw * 4, xb = out.ptr + ni * c * hw * 4;
        const geo = rt.geo;
        gemm(rt, ckk, ohw, o, wp, 1, ckk, 0, db, ohw, 1, col.ptr, ohw, 0);
        rt.par(
          "col2im",
          c,
          1,
          rt.minElements / (kk * ohw),
          (b, e) => [col.ptr, geo, xb, b, e],
        );
      }
      rt.free(col);
      return out;
    },

    conv2dBackwardFilter(x: Storage, dy: Storage, g: Conv2dGeometry): Storage {
      const xp = rt.p(x), dp = rt.p(dy);
      const { n, o, oh, ow } = g;
      const ckk = g.c * g.kh * g.kw, ohw = oh * ow;
      if (o * ckk === 0 || ohw === 0 || n === 0) return rt.zeros(o * ckk);
      const choice = chooseConv("filter", g, rt.threads, rt.conv);
      if (choice.kind === "winograd") {
        const { tiles, chunk, groupSize, groups } = choice;
        return winogradFilterGrad(rt, xp, dp, g, tiles, chunk, groupSize, groups);
      }
      rt.geometry(g);
      const pointwise = g.kh === 1 && g.kw === 1 && g.stride === 1 && g.pad === 0;
      // How the kernel computes each image's product (wasm/assembly/conv_grad.ts): pointwise from
      // the image itself, at stride 2 packed from the image itself (its result o x kk x c), else
      // dy times an im2col matrix.
      const mode = pointwise ? FILTER_POINTWISE : g.stride === 2 ? FILTER_STRIDED : FILTER_IM2COL;
      // Each group's dW = sum of dy[i] times the transposed im2col of x[i] is one thread's work,
      // then the group sums are added in order.
      const { groupSize: gsize, groups } = choice;
      const partial = groups === 1 ? rt.uninit(o * ckk) : rt.uninit(groups * o * ckk);
      const scratchBytes = rt.k.gemmWorkspaceBytes() +
        (mode === FILTER_IM2COL ? ckk * ohw * 4 : 0);
      const geo = rt.geo;
      rt.parScratch(
        "convFilterGrad",
        groups,
        1,
        n * o * ckk * ohw,
        scratchBytes,
        (b, e) => [xp, dp, partial.ptr, n, gsize, o, mode, geo, b, e, 0],
        8,
      );
      const sum = groups === 1 ? partial : reduceSum(rt, partial, [groups, o * ckk], [1, o * ckk]);
      if (groups > 1) rt.free(partial);
      if (mode !== FILTER_STRIDED) return sum;
      // Into the filter's order (o x c x kk).
      const out = permute(rt, sum, [o, g.kh * g.kw, g.c], [0, 2, 1]);
      rt.free(sum);
      return out;
    },
  };
}
