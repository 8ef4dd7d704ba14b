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
    gemm(0, CKK, 0, OHW, o, w, 1, CKK, 0, di, OHW, 1, col, OHW, 0, geo, 0, 0, 0, 0, scratch);
    memory.fill(xi, 0, <usize>(C * HW) << 2);
    col2im(col, geo, xi, 0, C);
  }
}

/**
 * The filter gradient of a convolution, by groups of images: for each group g in [begin, end),
 * partial[g] (o x ckk, ckk = c kh kw) = the sum over images i in [g gsize, min(n, g gsize + gsize))
 * of dy[i] (o x oh ow) times the transposed im2col matrix of x[i], in image order. A group is
 * computed by one thread, so the result does not depend on how groups are split over threads.
 * `scratch` is this thread's: gemmWorkspaceBytes() bytes, then room for one im2col matrix
 * (none when `pointwise`: 1x1, stride 1, no padding, where the image is its own matrix, or at
 * stride 2, where the product packs x itself). At stride 2 each partial[g] is o x kk x c, its
 * columns in tap-major order (gemm_pack_strided.ts).
 */
export function convFilterGrad(
  x: usize,
  dy: usize,
  partial: usize,
  n: i32,
  gsize: i32,
  o: i32,
  pointwise: i32,
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
  // Stride 2: the product packs the image's transposed im2col view itself, columns tap-major
  // (gemm_pack_strided.ts), so partial[g] is o x (kh kw) x c; the host puts it back in order.
  const strided = pointwise == 0 && load<i32>(geo, 20) == 2;
  for (let g = begin; g < end; g++) {
    const dst = partial + (<usize>g * <usize>(o * CKK) << 2);
    const first = g * gsize;
    const last = min(n, first + gsize);
    for (let i = first; i < last; i++) {
      const xi = x + (<usize>i * <usize>(C * HW) << 2);
      const di = dy + (<usize>i * <usize>(o * OHW) << 2);
      const acc = i > first ? 1 : 0;
      if (pointwise != 0) {
        gemm(0, o, 0, CKK, OHW, di, OHW, 1, 0, xi, 1, HW, dst, CKK, acc, geo, 0, 0, 0, 0, scratch);
      } else if (strided) {
        gemm(0, o, 0, CKK, OHW, di, OHW, 1, 3, xi, 0, 0, dst, CKK, acc, geo, 0, 0, 0, 0, scratch);
      } else {
        im2col(xi, geo, col, 0, CKK);
        gemm(0, o, 0, CKK, OHW, di, OHW, 1, 0, col, 1, OHW, dst, CKK, acc, geo, 0, 0, 0, 0, scratch);
      }
    }
  }
}
