// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the 3x3 stride-1 pad-1 convolution by Winograd, F(2x2, 3x3) (winograd_f2x2.ts)
// or F(4x4, 3x3) (winograd_f4x4.ts, its filter transform in winograd_f4x4_filter.ts) by the `tile`
// argument (2 or 4): the filter transform, the scratch sizes, and the driver that takes a thread's
// range of tiles through the input transform, the transformed products on the micro-kernel
// (winograd_common.ts) and the output transform, chunk by chunk. The filter gradient is in
// winograd_filter_grad.ts.

import { mRows, planeStride, tStride, transformedProducts } from "./winograd_common";
import { filter2, inputTransform2, outputTransform2 } from "./winograd_f2x2";
import { inputTransform4, outputTransform4, stagedRow } from "./winograd_f4x4";
import { filter4 } from "./winograd_f4x4_filter";

/** Positions of a transformed tile: 16 for F(2x2, 3x3), 36 for F(4x4, 3x3). */
@inline
function planes(tile: i32): i32 {
  return tile == 4 ? 36 : 16;
}

/** Bytes of the transformed filter winogradFilter writes for cout output, cin input channels. */
export function winogradFilterBytes(tile: i32, cout: i32, cin: i32): i32 {
  return (planes(tile) * mRows(cout) * cin) << 2;
}

/** Bytes of scratch one thread needs for winogradConv on w-wide images. */
export function winogradScratchBytes(tile: i32, cin: i32, cout: i32, w: i32, chunk: i32): i32 {
  const ld = tStride(chunk);
  // V and M; F(4x4): the staging rows (ten and a zero row) and the transforms' 1 KiB; F(2x2):
  // 64 zero bytes; alignment.
  const extra = tile == 4 ? (11 * stagedRow(w) << 2) + 1024 : 64;
  return <i32>(<usize>planes(tile) * (planeStride(cin, ld) + planeStride(mRows(cout), ld))) + extra + 64;
}

/**
 * The transformed filter of winogradConv from w (o x c x 3 x 3), or, when `flip`, that of its
 * input gradient (see filter2 in winograd_f2x2.ts and filter4 in winograd_f4x4.ts): the rows of
 * effective output channels [begin, end) (o, or c when flipped, in all), and the zero rows past
 * the last when end is the last.
 */
export function winogradFilter(
  tile: i32,
  w: usize,
  ut: usize,
  o: i32,
  c: i32,
  flip: i32,
  begin: i32,
  end: i32,
): void {
  if (tile == 4) filter4(w, ut, o, c, flip, begin, end);
  else filter2(w, ut, o, c, flip, begin, end);
}

/**
 * A 3x3 stride-1 pad-1 convolution of tiles [begin, end) (t = (n, ty, tx), tile x tile outputs
 * each) by Winograd F(tile x tile, 3x3): x is the input (n x cin x h x w), ut the transformed
 * filter of winogradFilter, y the output (n x cout x h x w), bias 0 or cout values. Works through
 * the range in chunks of `chunk` tiles; `scratch` is this thread's, winogradScratchBytes(tile,
 * cin, cout, w, chunk) bytes.
 */
export function winogradConv(
  x: usize,
  ut: usize,
  bias: usize,
  y: usize,
  cin: i32,
  cout: i32,
  h: i32,
  w: i32,
  tile: i32,
  chunk: i32,
  begin: i32,
  end: i32,
  scratch: usize,
): void {
  const n = planes(tile);
  const ld = tStride(chunk);
  const mp = mRows(cout);
  const v = (scratch + 63) & ~63;
  const mb = v + <usize>n * planeStride(cin, ld);
  const mPlane = planeStride(mp, ld);
  const rest = mb + <usize>n * mPlane;
  if (tile == 4) {
    // The staging rows, then the transforms' scratch.
    const stageBytes = <usize>(11 * stagedRow(w)) << 2;
    memory.fill(rest, 0, stageBytes);
    for (let t = begin; t < end; t += chunk) {
      const count = min(chunk, end - t);
      inputTransform4(x, cin, h, w, t, count, v, ld, rest, rest + stageBytes);
      transformedProducts(36, ut, v, mb, cin, mp, ld, count);
      outputTransform4(mb, ld, mPlane, bias, y, cout, h, w, t, count, rest + stageBytes);
    }
    return;
  }
  // 64 zero bytes for the rows outside the image.
  memory.fill(rest, 0, 64);
  for (let t = begin; t < end; t += chunk) {
    const count = min(chunk, end - t);
    inputTransform2(x, cin, h, w, t, count, v, ld, rest);
    transformedProducts(16, ut, v, mb, cin, mp, ld, count);
    outputTransform2(mb, ld, mPlane, bias, y, cout, h, w, t, count);
  }
}
