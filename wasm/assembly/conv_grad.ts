// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the gradients of a convolution on the GEMM engine (gemm.ts, im2col.ts), each a
// unit of work computed whole by one thread, so that the bits do not depend on the thread split.
// convDataPerImage: the input gradient of a convolution with no stride-1 shortcut (the im2col-
// shaped W^T dy of an image, added back into it by col2im), images split over threads.
// convFilterGrad: the filter gradient, dy times the transposed im2col matrix of x (packed from the
// image itself at stride 2), summed over groups of images.

import { gemm, gemmWorkspaceBytes } from "./gemm";
import { col2im, im2col } from "./im2col";

/**
 * dx[i] (c x h x w) = col2im of W^T dy[i] (the im2col-shaped gradient: ckk x oh ow, ckk = c kh kw)
 * for images [begin, end), with w (o x ckk) and dy (n x o x oh x ow); `geo` is the convolution's
 * (see gemm.ts). Each image is computed whole by one thread, so the bits do not depend on the
 * split. `scratch`: gemmWorkspaceBytes() bytes, then room for one im2col matrix.
 */
export function convDataPerImage(
  dy: usize,
  w: usize,
  dx: usize,
  o: i32,
  geo: usize,
  begin: i32,
  end: i32,
  scratch: usize,
): void {
  const C = load<i32>(geo);
  const HW = load<i32>(geo, 4) * load<i32>(geo, 8);
  const CKK = C * load<i32>(geo, 12) * load<i32>(geo, 16);
  const OHW = load<i32>(geo, 28) * load<i32>(geo, 32);
  const col = scratch + <usize>gemmWorkspaceBytes();
  for (let i = begin; i < end; i++) {
    const di = dy + (<usize>i * <usize>(o * OHW) << 2);
    const xi = dx + (<usize>i * <usize>(C * HW) << 2);
    gemm(0, CKK, 0, OHW, o, w, 1, CKK, 0, di, OHW, 1, col, OHW, 0, geo, 0, 0, 0, 0, 0, scratch);
    memory.fill(xi, 0, <usize>(C * HW) << 2);
    col2im(col, geo, xi, 0, C);
  }
}

/** convFilterGrad's `mode`: the explicit im2col matrix of each image, o x ckk. */
export const FILTER_IM2COL = 0;
/** convFilterGrad's `mode`: 1x1, stride 1, no padding (the image is its own matrix), o x c. */
export const FILTER_POINTWISE = 1;
/**
 * convFilterGrad's `mode`: stride 2, the product packing the image's transposed im2col view
 * itself (gemm_pack_strided.ts), columns tap-major: o x kk x c.
 */
export const FILTER_STRIDED = 2;

/**
 * The filter gradient of a convolution, by groups of images: for each group g in [begin, end),
 * partial[g] = the sum over images i in [g gsize, min(n, g gsize + gsize)) of dy[i] (o x oh ow)
 * times the transposed im2col matrix of x[i], in image order, laid out as `mode` says (o x ckk,
 * ckk = c kh kw, or a permutation of it: FILTER_IM2COL and the others above). A group is computed
 * by one thread, so the result does not depend on how groups are split over threads. Every mode
 * sums the same products in the same order. `scratch` is this thread's: gemmWorkspaceBytes()
 * bytes, then (FILTER_IM2COL) room for one im2col matrix.
 */
export function convFilterGrad(
  x: usize,
  dy: usize,
  partial: usize,
  n: i32,
  gsize: i32,
  o: i32,
  mode: i32,
  geo: usize,
  begin: i32,
  end: i32,
  scratch: usize,
): void {
  const C = load<i32>(geo);
  const HW = load<i32>(geo, 4) * load<i32>(geo, 8);
  const CKK = C * load<i32>(geo, 12) * load<i32>(geo, 16);
  const OHW = load<i32>(geo, 28) * load<i32>(geo, 32);
  const col = scratch + <usize>gemmWorkspaceBytes();
  for (let g = begin; g < end; g++) {
    const dst = partial + (<usize>g * <usize>(o * CKK) << 2);
    const first = g * gsize;
    const last = min(n, first + gsize);
    for (let i = first; i < last; i++) {
      const xi = x + (<usize>i * <usize>(C * HW) << 2);
      const di = dy + (<usize>i * <usize>(o * OHW) << 2);
      const acc = i > first ? 1 : 0;
      if (mode == FILTER_POINTWISE) {
        gemm(0, o, 0, CKK, OHW, di, OHW, 1, 0, xi, 1, HW, dst, CKK, acc, geo, 0, 0, 0, 0, 0,
          scratch);
      } else if (mode == FILTER_STRIDED) {
        gemm(0, o, 0, CKK, OHW, di, OHW, 1, 3, xi, 0, 0, dst, CKK, acc, geo, 0, 0, 0, 0, 0,
          scratch);
      } else {
        im2col(xi, geo, col, 0, CKK);
        gemm(0, o, 0, CKK, OHW, di, OHW, 1, 0, col, 1, OHW, dst, CKK, acc, geo, 0, 0, 0, 0, 0,
          scratch);
      }
    }
  }
}
