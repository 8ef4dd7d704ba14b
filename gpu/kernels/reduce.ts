/**
 * Reductions: sums over arbitrary axes (one thread or one workgroup per output element), the
 * two-pass whole-buffer reductions behind `sumSquares` and the losses, and the sum over split-K
 * partial products.
 *
 * @module
 */

import type { LossKind } from "../../src/backend.ts";
import {
  GROUP_INDEX,
  type KernelSpec,
  LINEAR_INDEX,
  LINEAR_WG,
  memo,
  ro,
  rw,
  workgroupReduce,
} from "../wgsl.ts";

/** Threads of a workgroup-per-output reduction and of the partial-sum kernels. */
export const REDUCE_WG = 256;

const REDUCE_PARAMS = [
  ["n", "u32"], // output elements
  ["count", "u32"], // reduced elements per output
  ["kr", "u32"], // kept rank (<= 4)
  ["rr", "u32"], // reduced rank (<= 4)
  ["kshape", "vec4u"],
  ["kstride", "vec4u"],
  ["rshape", "vec4u"],
  ["rstride", "vec4u"],
] as const;

/** Input offset of kept index `o` (over kshape/kstride) and of reduced index `r`. */
const REDUCE_DECLS = `
fn keptOffset(o: u32) -> u32 {
  var rem = o;
  var off = 0u;
  for (var d = p.kr; d > 0u; d = d - 1u) {
    let s = p.kshape[d - 1u];
    off = off + (rem % s) * p.kstride[d - 1u];
    rem = rem / s;
  }
  return off;
}
fn reducedOffset(r: u32) -> u32 {
  var rem = r;
  var off = 0u;
  for (var d = p.rr; d > 0u; d = d - 1u) {
    let s = p.rshape[d - 1u];
    off = off + (rem % s) * p.rstride[d - 1u];
    rem = rem / s;
  }
  return off;
}
`;

/**
 * One thread per output element. The innermost reduced axis (`rshape[rr-1]`, stride
 * `rstride[rr-1]`) is walked directly; `count` is the product of the outer reduced axes, with
 * `rr` the number of outer reduced axes.
 */
export const reduceSumThreadKernel = memo((): KernelSpec => ({
  key: "reduce_sum_thread",
  bindings: [ro("x"), rw("out")],
  params: [...REDUCE_PARAMS, ["inner", "u32"], ["innerStride", "u32"]],
  workgroup: [LINEAR_WG],
  decls: REDUCE_DECLS,
  body: LINEAR_INDEX + `
  let base = p.x_o + keptOffset(i);
  var acc = 0.0;
  for (var r = 0u; r < p.count; r = r + 1u) {
    let off = base + reducedOffset(r);
    for (var j = 0u; j < p.inner; j = j + 1u) {
      acc = acc + x[off + j * p.innerStride];
    }
  }
  out[p.out_o + i] = acc;`,
}));

/**
 * One workgroup per output element and chunk of the reduced elements (grid z = chunk, each
 * `chunk` elements long); its threads split the chunk, and chunk z writes `out[z n + o]` (with
 * one chunk, the sums themselves; with several, partials for {@link splitSumKernel}).
 */
export const reduceSumGroupKernel = memo((): KernelSpec => ({
  key: "reduce_sum_group",
  bindings: [ro("x"), rw("out")],
  params: [...REDUCE_PARAMS, ["chunk", "u32"]],
  workgroup: [REDUCE_WG],
  decls: REDUCE_DECLS + workgroupReduce(REDUCE_WG),
  body: `
  let o = ${GROUP_INDEX};
  if (o >= p.n) { return; }
  let base = p.x_o + keptOffset(o);
  let r0 = wid.z * p.chunk;
  let r1 = min(p.count, r0 + p.chunk);
  var acc = 0.0;
  for (var r = r0 + lid.x; r < r1; r = r + ${REDUCE_WG}u) {
    acc = acc + x[base + reducedOffset(r)];
  }
  let s = wgSum(acc, lid.x);
  if (lid.x == 0u) { out[p.out_o + wid.z * p.n + o] = s; }`,
}));

/** What a partial-sum kernel adds up per element. */
export type PartialTerm = "square" | LossKind;

const TERM_WGSL: Record<PartialTerm, string> = {
  square: "let v = x[p.x_o + e]; acc = acc + v * v;",
  l2: "let d = x[p.x_o + e] - y[p.y_o + e]; acc = acc + d * d;",
  l1: "acc = acc + abs(x[p.x_o + e] - y[p.y_o + e]);",
  huber: `let d = abs(x[p.x_o + e] - y[p.y_o + e]);
    acc = acc + select(p.delta * (d - 0.5 * p.delta), 0.5 * d * d, d <= p.delta);`,
};

/**
 * First pass of a whole-buffer reduction: workgroup `g` of `nwg.x` sums its grid-strided share of
 * the terms and writes one partial to `part[g]`.
 */
export const partialSumKernel = memo((term: PartialTerm): KernelSpec => ({
  key: `partial_${term}`,
  bindings: term === "square" ? [ro("x"), rw("part")] : [ro("x"), ro("y"), rw("part")],
  params: [["n", "u32"], ["delta", "f32"]],
  workgroup: [REDUCE_WG],
  decls: workgroupReduce(REDUCE_WG),
  body: `
  var acc = 0.0;
  let stride = nwg.x * ${REDUCE_WG}u;
  for (var e = wid.x * ${REDUCE_WG}u + lid.x; e < p.n; e = e + stride) {
    ${TERM_WGSL[term]}
  }
  let s = wgSum(acc, lid.x);
  if (lid.x == 0u) { part[p.part_o + wid.x] = s; }`,
}));

/** Second pass: one workgroup sums `n` partials and writes `sum * scale` to `out[0]`. */
export const finalSumKernel = memo((): KernelSpec => ({
  key: "final_sum",
  bindings: [ro("part"), rw("out")],
  params: [["n", "u32"], ["scale", "f32"]],
  workgroup: [REDUCE_WG],
  decls: workgroupReduce(REDUCE_WG),
  body: `
  var acc = 0.0;
  for (var e = lid.x; e < p.n; e = e + ${REDUCE_WG}u) {
    acc = acc + part[p.part_o + e];
  }
  let s = wgSum(acc, lid.x);
  if (lid.x == 0u) { out[p.out_o] = s * p.scale; }`,
}));

/** out[i] = sum over s < splits of part[s * n + i] (split-K partial products). */
export const splitSumKernel = memo((): KernelSpec => ({
  key: "split_sum",
  bindings: [ro("part"), rw("out")],
  params: [["n", "u32"], ["splits", "u32"]],
  workgroup: [LINEAR_WG],
  body: LINEAR_INDEX + `
  var acc = 0.0;
  for (var s = 0u; s < p.splits; s = s + 1u) {
    acc = acc + part[p.part_o + s * p.n + i];
  }
  out[p.out_o + i] = acc;`,
}));
