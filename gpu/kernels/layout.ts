/**
 * Data movement: permute, nearest upsampling and its gradient, concatenation (one dispatch per
 * input), slices and gathers. One output element per thread.
 *
 * @module
 */

import { type KernelSpec, LINEAR_INDEX, LINEAR_WG, memo, ro, rw } from "../wgsl.ts";

const WG = [LINEAR_WG] as const;

/** out[i] = x[sum of i's digits over `shape` times `stride`] (rank <= 8). */
export const permuteKernel = memo((): KernelSpec => ({
  key: "permute",
  bindings: [ro("x"), rw("out")],
  params: [["n", "u32"], ["rank", "u32"], ["shape", "vec4u2"], ["stride", "vec4u2"]],
  workgroup: WG,
  body: LINEAR_INDEX + `
  var rem = i;
  var src = 0u;
  for (var d = p.rank; d > 0u; d = d - 1u) {
    let s = at8(p.shape, d - 1u);
    src = src + (rem % s) * at8(p.stride, d - 1u);
    rem = rem / s;
  }
  out[p.out_o + i] = x[p.x_o + src];`,
}));

/** Nearest upsampling of planes of h x w by `factor`; one thread per output element. */
export const upsampleKernel = memo((): KernelSpec => ({
  key: "upsample",
  bindings: [ro("x"), rw("out")],
  params: [["n", "u32"], ["h", "u32"], ["w", "u32"], ["factor", "u32"]],
  workgroup: WG,
  body: LINEAR_INDEX + `
  let W = p.w * p.factor;
  let H = p.h * p.factor;
  let xx = i % W;
  let t = i / W;
  let yy = t % H;
  let plane = t / H;
  out[p.out_o + i] = x[p.x_o + (plane * p.h + yy / p.factor) * p.w + xx / p.factor];`,
}));

/** Gradient of nearest upsampling: one thread per input element sums its factor x factor block. */
export const upsampleGradKernel = memo((): KernelSpec => ({
  key: "upsample_grad",
  bindings: [ro("dy"), rw("out")],
  params: [["n", "u32"], ["h", "u32"], ["w", "u32"], ["factor", "u32"]],
  workgroup: WG,
  body: LINEAR_INDEX + `
  let xx = i % p.w;
  let t = i / p.w;
  let yy = t % p.h;
  let plane = t / p.h;
  let W = p.w * p.factor;
  let H = p.h * p.factor;
  var s = 0.0;
  for (var a = 0u; a < p.factor; a = a + 1u) {
    let row = (plane * H + yy * p.factor + a) * W + xx * p.factor;
    for (var b = 0u; b < p.factor; b = b + 1u) { s = s + dy[p.dy_o + row + b]; }
  }
  out[p.out_o + i] = s;`,
}));

/**
 * Copies a [outer, len] block (len = size * inner) into columns [start, start + len) of a
 * [outer, total] output: one concat input, or (with the roles swapped) a slice.
 */
export const blockCopyKernel = memo((): KernelSpec => ({
  key: "block_copy",
  bindings: [ro("x"), rw("out")],
  params: [
    ["n", "u32"],
    ["len", "u32"],
    ["srcStride", "u32"],
    ["srcStart", "u32"],
    ["dstStride", "u32"],
    ["dstStart", "u32"],
  ],
  workgroup: WG,
  body: LINEAR_INDEX + `
  let o = i / p.len;
  let j = i - o * p.len;
  out[p.out_o + o * p.dstStride + p.dstStart + j] = x[p.x_o + o * p.srcStride + p.srcStart + j];`,
}));

/** out[i] = table[index[i]]; indices outside the table give NaN. */
export const gatherKernel = memo((): KernelSpec => ({
  key: "gather",
  bindings: [ro("table"), ro("index"), rw("out")],
  params: [["n", "u32"], ["size", "u32"]],
  workgroup: WG,
  body: LINEAR_INDEX + `
  let f = index[p.index_o + i];
  var nanBits = 0x7fc00000u; // a variable: a browser's WGSL rejects a constant NaN
  var v = bitcast<f32>(nanBits);
  if (f >= 0.0 && f < f32(p.size)) { v = table[p.table_o + u32(f)]; }
  out[p.out_o + i] = v;`,
}));

/** out row r = src row index[r] (rows of `row` elements); rows outside the source give NaN. */
export const gatherRowsKernel = memo((): KernelSpec => ({
  key: "gather_rows",
  bindings: [ro("src"), ro("index"), rw("out")],
  params: [["n", "u32"], ["row", "u32"], ["rows", "u32"]],
  workgroup: WG,
  body: LINEAR_INDEX + `
  let r = i / p.row;
  let j = i - r * p.row;
  let f = index[p.index_o + r];
  var nanBits = 0x7fc00000u; // a variable: a browser's WGSL rejects a constant NaN
  var v = bitcast<f32>(nanBits);
  if (f >= 0.0 && f < f32(p.rows)) { v = src[p.src_o + u32(f) * p.row + j]; }
  out[p.out_o + i] = v;`,
}));
