// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: reductions and data movement (reduceSum, sumSquares, permute, row copies, fills,
// gathers, nearest-neighbour upsampling). Pointers are byte offsets; sizes count f32 elements.

import { hsum, hsum64 } from "./simd.ts";

/** Sum of x[0..len). */
function sumRun(x: usize, len: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    a0 = f32x4.add(a0, v128.load(x + (<usize>i << 2)));
    a1 = f32x4.add(a1, v128.load(x + (<usize>i << 2), 16));
  }
  let s = hsum(f32x4.add(a0, a1));
  for (; i < len; i++) s += load<f32>(x + (<usize>i << 2));
  return s;
}

/** o[0..len) += x[0..len). */
function addRun(o: usize, x: usize, len: i32): void {
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const off = <usize>i << 2;
    v128.store(o + off, f32x4.add(v128.load(o + off), v128.load(x + off)));
  }
  for (; i < len; i++) {
    const off = <usize>i << 2;
    store<f32>(o + off, load<f32>(o + off) + load<f32>(x + off));
  }
}

/**
 * Adds each input row r in [begin, end) (rows of the innermost axis) into the output.
 * `params` holds i32s: rank, shape[rank], outStride[rank] (0 on summed axes), axes merged by the
 * host. The output must start zeroed.
 */
export function reduceSum(x: usize, o: usize, params: usize, begin: i32, end: i32): void {
  const rank = load<i32>(params);
  const shape = params + 4;
  const so = shape + (<usize>rank << 2);
  const last = <usize>(rank - 1) << 2;
  const len = load<i32>(shape + last);
  const inner = load<i32>(so + last);
  for (let r = begin; r < end; r++) {
    let rem = r;
    let off = 0;
    for (let d = rank - 2; d >= 0; d--) {
      const dd = <usize>d << 2;
      const n = load<i32>(shape + dd);
      const q = rem / n;
      off += (rem - q * n) * load<i32>(so + dd);
      rem = q;
    }
    const src = x + (<usize>r * <usize>len << 2);
    const dst = o + (<usize>off << 2);
    if (inner == 0) store<f32>(dst, load<f32>(dst) + sumRun(src, len));
    else addRun(dst, src, len);
  }
}

/** The sum of squares of x[begin..end), accumulated in double precision. */
export function sumSquares(x: usize, begin: i32, end: i32): f64 {
  let a0 = f64x2.splat(0);
  let a1 = f64x2.splat(0);
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const sq = f32x4.mul(v, v);
    a0 = f64x2.add(a0, f64x2.promote_low_f32x4(sq));
    a1 = f64x2.add(a1, f64x2.promote_low_f32x4(v128.shuffle<f32>(sq, sq, 2, 3, 0, 1)));
  }
  let s = hsum64(f64x2.add(a0, a1));
  for (; i < end; i++) {
    const v = f64(load<f32>(x + (<usize>i << 2)));
    s += v * v;
  }
  return s;
}

/**
 * Output rows [begin, end) (of the output's innermost axis) of a permutation. `params` holds i32s:
 * rank, outShape[rank], inStride[rank] (the input's element stride along each output axis).
 */
export function permute(x: usize, o: usize, params: usize, begin: i32, end: i32): void {
  const rank = load<i32>(params);
  const shape = params + 4;
  const st = shape + (<usize>rank << 2);
  const last = <usize>(rank - 1) << 2;
  const len = load<i32>(shape + last);
  const inner = load<i32>(st + last);
  for (let r = begin; r < end; r++) {
    let rem = r;
    let off = 0;
    for (let d = rank - 2; d >= 0; d--) {
      const dd = <usize>d << 2;
      const n = load<i32>(shape + dd);
      const q = rem / n;
      off += (rem - q * n) * load<i32>(st + dd);
      rem = q;
    }
    const dst = o + (<usize>r * <usize>len << 2);
    const src = x + (<usize>off << 2);
    if (inner == 1) {
      memory.copy(dst, src, <usize>len << 2);
    } else {
      const step = <usize>inner << 2;
      let p = src;
      for (let i = 0; i < len; i++) {
        store<f32>(dst + (<usize>i << 2), load<f32>(p));
        p += step;
      }
    }
  }
}

/** Copies rows [begin, end) of `len` bytes from src (row stride srcStride bytes) to dst. */
export function copyRows(
  src: usize,
  srcStride: i32,
  dst: usize,
  dstStride: i32,
  len: i32,
  begin: i32,
  end: i32,
): void {
  for (let r = begin; r < end; r++) {
    memory.copy(
      dst + <usize>r * <usize>dstStride,
      src + <usize>r * <usize>srcStride,
      <usize>len,
    );
  }
}

/** o[i] = value for i in [begin, end). */
export function fill(o: usize, value: f32, begin: i32, end: i32): void {
  const v = f32x4.splat(value);
  let i = begin;
  for (; i + 4 <= end; i += 4) v128.store(o + (<usize>i << 2), v);
  for (; i < end; i++) store<f32>(o + (<usize>i << 2), value);
}

/** Sets row r of o (rows x cols) to value[r] for r in [begin, end): a bias broadcast. */
export function fillRows(o: usize, value: usize, cols: i32, begin: i32, end: i32): void {
  for (let r = begin; r < end; r++) {
    const v = load<f32>(value + (<usize>r << 2));
    const vv = f32x4.splat(v);
    const row = o + (<usize>r * <usize>cols << 2);
    let i = 0;
    for (; i + 4 <= cols; i += 4) v128.store(row + (<usize>i << 2), vv);
    for (; i < cols; i++) store<f32>(row + (<usize>i << 2), v);
  }
}

/** o[i] = table[index[i]] for i in [begin, end); indices are integral floats. */
export function gather(table: usize, index: usize, o: usize, begin: i32, end: i32): void {
  for (let i = begin; i < end; i++) {
    const k = <i32>load<f32>(index + (<usize>i << 2));
    store<f32>(o + (<usize>i << 2), load<f32>(table + (<usize>k << 2)));
  }
}

/** Row i of o = row index[i] of src, rows of `row` elements, for i in [begin, end). */
export function gatherRows(
  src: usize,
  index: usize,
  o: usize,
  row: i32,
  begin: i32,
  end: i32,
): void {
  const bytes = <usize>row << 2;
  if (row <= 8) {
    // Short rows (a toy's points) word by word: a memory.copy call a row costs more than the row,
    // and the calls keep the rows' cache misses from overlapping.
    for (let i = begin; i < end; i++) {
      const k = <i32>load<f32>(index + (<usize>i << 2));
      const s = src + <usize>k * bytes;
      const d = o + <usize>i * bytes;
      for (let q: usize = 0; q < bytes; q += 4) store<i32>(d + q, load<i32>(s + q));
    }
    return;
  }
  for (let i = begin; i < end; i++) {
    const k = <i32>load<f32>(index + (<usize>i << 2));
    memory.copy(o + <usize>i * bytes, src + <usize>k * bytes, bytes);
  }
}

/** Nearest-neighbour upsampling of planes [begin, end) of h x w by `f`. */
export function upsampleNearest(
  x: usize,
  y: usize,
  h: i32,
  w: i32,
  f: i32,
  begin: i32,
  end: i32,
): void {
  const W = w * f;
  for (let p = begin; p < end; p++) {
    const src = x + (<usize>p * <usize>(h * w) << 2);
    let dst = y + (<usize>p * <usize>(h * f * W) << 2);
    for (let iy = 0; iy < h; iy++) {
      const row = dst;
      const s = src + (<usize>(iy * w) << 2);
      if (f == 2) {
        let ix = 0;
        for (; ix + 4 <= w; ix += 4) {
          const v = v128.load(s + (<usize>ix << 2));
          v128.store(row + (<usize>ix << 3), v128.shuffle<f32>(v, v, 0, 0, 1, 1));
          v128.store(row + (<usize>ix << 3), v128.shuffle<f32>(v, v, 2, 2, 3, 3), 16);
        }
        for (; ix < w; ix++) {
          const v = load<f32>(s + (<usize>ix << 2));
          store<f32>(row + (<usize>ix << 3), v);
          store<f32>(row + (<usize>ix << 3), v, 4);
        }
      } else {
        for (let ix = 0; ix < w; ix++) {
          const v = load<f32>(s + (<usize>ix << 2));
          const o = row + (<usize>(ix * f) << 2);
          for (let k = 0; k < f; k++) store<f32>(o + (<usize>k << 2), v);
        }
      }
      dst += <usize>W << 2;
      for (let k = 1; k < f; k++) {
        memory.copy(dst, row, <usize>W << 2);
        dst += <usize>W << 2;
      }
    }
  }
}

/** Gradient of upsampleNearest: planes [begin, end) of dx (h x w) sum their f x f blocks of dy. */
export function upsampleNearestBackward(
  dy: usize,
  dx: usize,
  h: i32,
  w: i32,
  f: i32,
  begin: i32,
  end: i32,
): void {
  const W = w * f;
  for (let p = begin; p < end; p++) {
    let src = dy + (<usize>p * <usize>(h * f * W) << 2);
    const dst = dx + (<usize>p * <usize>(h * w) << 2);
    for (let iy = 0; iy < h; iy++) {
      const o = dst + (<usize>(iy * w) << 2);
      for (let ix = 0; ix < w; ix++) store<f32>(o + (<usize>ix << 2), 0);
      for (let k = 0; k < f; k++) {
        for (let ix = 0; ix < w; ix++) {
          let s = load<f32>(o + (<usize>ix << 2));
          const q = src + (<usize>(ix * f) << 2);
          for (let j = 0; j < f; j++) s += load<f32>(q + (<usize>j << 2));
          store<f32>(o + (<usize>ix << 2), s);
        }
        src += <usize>W << 2;
      }
    }
  }
}
