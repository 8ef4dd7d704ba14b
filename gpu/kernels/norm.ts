/**
 * Group normalisation (forward, and backward in three passes) and the row softmax, with workgroup
 * reductions: one workgroup per (sample, group), per (sample, channel) or per row.
 *
 * @module
 */

import { GROUP_INDEX, type KernelSpec, memo, ro, rw, workgroupReduce } from "../wgsl.ts";
import { MATH_WGSL } from "./elementwise.ts";

/** Threads per (sample, group) workgroup. */
export const NORM_WG = 256;
/** Threads per (sample, channel) and per-row workgroup. */
export const ROW_WG = 64;

const GN_PARAMS = [
  ["c", "u32"],
  ["hw", "u32"],
  ["groups", "u32"],
  ["cpg", "u32"],
  ["count", "u32"], // workgroups with work: n * groups (or n * c)
  ["eps", "f32"],
] as const;

/** The SiLU and its derivative for the fused variants, on the element-wise kernels' logistic. */
const SILU_WGSL = MATH_WGSL + `
fn gn_silu(z: f32) -> f32 { return z * sigm(z); }
fn gn_silu_grad(z: f32) -> f32 {
  let s = sigm(z);
  return s * (1.0 + z * (1.0 - s));
}
`;

/**
 * Forward: grid of n * groups workgroups; two-pass mean and variance, then y (with `silu`,
 * y = silu(gamma * xhat + beta)). With `shift`, normalises x + shift[n, c] (one value per
 * (sample, channel) plane, bound as `shift`) without storing the sum.
 */
export const groupNormKernel = memo((
  silu: boolean = false,
  shift: boolean = false,
): KernelSpec => ({
  key: `group_norm${silu ? "_silu" : ""}${shift ? "_shift" : ""}`,
  bindings: [
    ro("x"),
    ro("gamma"),
    ro("beta"),
    ...(shift ? [ro("shift")] : []),
    rw("y"),
    rw("mean"),
    rw("rstd"),
  ],
  params: GN_PARAMS,
  workgroup: [NORM_WG],
  decls: workgroupReduce(NORM_WG) + (silu ? SILU_WGSL : ""),
  body: `
  let gi = ${GROUP_INDEX};
  if (gi >= p.count) { return; }
  let g = gi % p.groups;
  let ni = gi / p.groups;
  let size = p.cpg * p.hw;
  let base = (ni * p.c + g * p.cpg) * p.hw;
  var s = 0.0;
  for (var e = lid.x; e < size; e = e + ${NORM_WG}u) { s = s + ${gnInput(shift)}; }
  let mu = wgSum(s, lid.x) / f32(size);
  var v = 0.0;
  for (var e = lid.x; e < size; e = e + ${NORM_WG}u) {
    let d = ${gnInput(shift)} - mu;
    v = v + d * d;
  }
  let r = 1.0 / sqrt(wgSum(v, lid.x) / f32(size) + p.eps);
  if (lid.x == 0u) {
    mean[p.mean_o + gi] = mu;
    rstd[p.rstd_o + gi] = r;
  }
  for (var e = lid.x; e < size; e = e + ${NORM_WG}u) {
    let ch = g * p.cpg + e / p.hw;
    let sc = gamma[p.gamma_o + ch] * r;
    let sh = beta[p.beta_o + ch] - mu * sc;
    let xv = ${gnInput(shift)};
    y[p.y_o + base + e] = ${silu ? "gn_silu(xv * sc + sh)" : "xv * sc + sh"};
  }`,
}));

/** WGSL for element e of the (sample, group) row at `base`: x, or x + its plane's shift. */
function gnInput(shift: boolean): string {
  return shift
    ? "(x[p.x_o + base + e] + shift[p.shift_o + ni * p.c + g * p.cpg + e / p.hw])"
    : "x[p.x_o + base + e]";
}

/**
 * Backward pass 1: grid of n * c workgroups; per (sample, channel) the sums of dz and of
 * dz * xhat, written to `part[nc]` and `part[n c + nc]`, where dz is dy or, with `silu`,
 * dy * silu'(gamma * xhat + beta). With `shift`, xhat is that of x + shift[nc], and the channel's
 * centre mean - shift[nc] goes to `part[2 n c + nc]` (pass 2 reads it there instead of binding
 * mean and shift).
 */
export const groupNormChannelSumsKernel = memo((silu = false, shift = false): KernelSpec => ({
  key: `group_norm${silu ? "_silu" : ""}${shift ? "_shift" : ""}_bwd_sums`,
  bindings: [
    ro("dy"),
    ro("x"),
    ...(silu ? [ro("gamma"), ro("beta")] : []),
    ...(shift ? [ro("shift")] : []),
    ro("mean"),
    ro("rstd"),
    rw("part"),
  ],
  params: GN_PARAMS,
  workgroup: [ROW_WG],
  decls: workgroupReduce(ROW_WG) + (silu ? SILU_WGSL : ""),
  body: `
  let nc = ${GROUP_INDEX};
  if (nc >= p.count) { return; }
  let ch = nc % p.c;
  let ni = nc / p.c;
  let gi = ni * p.groups + ch / p.cpg;
  let mu = mean[p.mean_o + gi]${shift ? " - shift[p.shift_o + nc]" : ""};
  let r = rstd[p.rstd_o + gi];
  let base = nc * p.hw;${
    silu
      ? `
  let gm = gamma[p.gamma_o + ch];
  let bt = beta[p.beta_o + ch];`
      : ""
  }
  var db = 0.0;
  var dg = 0.0;
  for (var e = lid.x; e < p.hw; e = e + ${ROW_WG}u) {
    let xh = (x[p.x_o + base + e] - mu) * r;
    let d = ${
    silu ? "dy[p.dy_o + base + e] * gn_silu_grad(xh * gm + bt)" : "dy[p.dy_o + base + e]"
  };
    db = db + d;
    dg = dg + d * xh;
  }
  let sdb = wgSum(db, lid.x);
  let sdg = wgSum(dg, lid.x);
  if (lid.x == 0u) {
    part[p.part_o + nc] = sdb;
    part[p.part_o + p.count + nc] = sdg;${
    shift
      ? `
    part[p.part_o + 2u * p.count + nc] = mu;`
      : ""
  }
  }`,
}));

/**
 * Backward pass 2: grid of n * groups workgroups; dx from the channel sums (with `silu`, dz
 * recomputed as in pass 1: cheaper on a GPU than storing it and reading it back).
 */
export const groupNormDxKernel = memo((silu = false): KernelSpec => ({
  key: silu ? "group_norm_silu_bwd_dx" : "group_norm_bwd_dx",
  bindings: silu
    ? [
      ro("dy"),
      ro("x"),
      ro("gamma"),
      ro("beta"),
      ro("mean"),
      ro("rstd"),
      ro("part"),
      rw("dx"),
    ]
    : [ro("dy"), ro("x"), ro("gamma"), ro("mean"), ro("rstd"), ro("part"), rw("dx")],
  params: [...GN_PARAMS, ["nc", "u32"]],
  workgroup: [NORM_WG],
  decls: silu ? SILU_WGSL : undefined,
  body: `
  let gi = ${GROUP_INDEX};
  if (gi >= p.count) { return; }
  let g = gi % p.groups;
  let ni = gi / p.groups;
  let size = p.cpg * p.hw;
  let base = (ni * p.c + g * p.cpg) * p.hw;
  let mu = mean[p.mean_o + gi];
  let r = rstd[p.rstd_o + gi];
  var sd = 0.0;
  var sdx = 0.0;
  for (var cc = 0u; cc < p.cpg; cc = cc + 1u) {
    let ch = g * p.cpg + cc;
    let gm = gamma[p.gamma_o + ch];
    sd = sd + part[p.part_o + ni * p.c + ch] * gm;
    sdx = sdx + part[p.part_o + p.nc + ni * p.c + ch] * gm;
  }
  let md = sd / f32(size);
  let mdx = sdx / f32(size);
  for (var e = lid.x; e < size; e = e + ${NORM_WG}u) {
    let ch = g * p.cpg + e / p.hw;
    let xh = (x[p.x_o + base + e] - mu) * r;
    let gm = gamma[p.gamma_o + ch];
    let d = ${
    silu
      ? "dy[p.dy_o + base + e] * gn_silu_grad(xh * gm + beta[p.beta_o + ch])"
      : "dy[p.dy_o + base + e]"
  };
    dx[p.dx_o + base + e] = r * (d * gm - md - xh * mdx);
  }`,
}));

/**
 * Backward pass 2 with a shift (see {@link groupNormKernel}): grid of n * groups workgroups, one
 * channel plane at a time; dx as in {@link groupNormDxKernel}, with xhat from x and the channel's
 * centre that pass 1 left in `part[2 nc + ...]`, and dshift[n, c] = the sum of dx over the plane.
 * (Reading the centre from `part` keeps the fused SiLU variant within 8 storage bindings.)
 */
export const groupNormShiftDxKernel = memo((silu = false): KernelSpec => ({
  key: silu ? "group_norm_silu_shift_bwd_dx" : "group_norm_shift_bwd_dx",
  bindings: [
    ro("dy"),
    ro("x"),
    ro("gamma"),
    ...(silu ? [ro("beta")] : []),
    ro("rstd"),
    ro("part"),
    rw("dx"),
    rw("dshift"),
  ],
  params: [...GN_PARAMS, ["nc", "u32"]],
  workgroup: [NORM_WG],
  decls: workgroupReduce(NORM_WG) + (silu ? SILU_WGSL : ""),
  body: `
  let gi = ${GROUP_INDEX};
  if (gi >= p.count) { return; }
  let g = gi % p.groups;
  let ni = gi / p.groups;
  let size = p.cpg * p.hw;
  let r = rstd[p.rstd_o + gi];
  var sd = 0.0;
  var sdx = 0.0;
  for (var cc = 0u; cc < p.cpg; cc = cc + 1u) {
    let ch = g * p.cpg + cc;
    let gm = gamma[p.gamma_o + ch];
    sd = sd + part[p.part_o + ni * p.c + ch] * gm;
    sdx = sdx + part[p.part_o + p.nc + ni * p.c + ch] * gm;
  }
  let md = sd / f32(size);
  let mdx = sdx / f32(size);
  for (var cc = 0u; cc < p.cpg; cc = cc + 1u) {
    let ch = g * p.cpg + cc;
    let plane = ni * p.c + ch;
    let base = plane * p.hw;
    let mu = part[p.part_o + 2u * p.nc + plane];
    let gm = gamma[p.gamma_o + ch];${silu ? "\n    let bt = beta[p.beta_o + ch];" : ""}
    var acc = 0.0;
    for (var e = lid.x; e < p.hw; e = e + ${NORM_WG}u) {
      let xh = (x[p.x_o + base + e] - mu) * r;
      let d = ${
    silu ? "dy[p.dy_o + base + e] * gn_silu_grad(xh * gm + bt)" : "dy[p.dy_o + base + e]"
  };
      let v = r * (d * gm - md - xh * mdx);
      dx[p.dx_o + base + e] = v;
      acc = acc + v;
    }
    let total = wgSum(acc, lid.x);
    if (lid.x == 0u) { dshift[p.dshift_o + plane] = total; }
  }`,
}));

/** Backward pass 3: one workgroup per channel; dgamma and dbeta summed over the batch. */
export const groupNormAffineGradKernel = memo((): KernelSpec => ({
  key: "group_norm_bwd_affine",
  bindings: [ro("part"), rw("dgamma"), rw("dbeta")],
  params: [["n", "u32"], ["batch", "u32"]],
  workgroup: [ROW_WG],
  decls: workgroupReduce(ROW_WG),
  body: `
  let i = ${GROUP_INDEX};
  if (i >= p.n) { return; }
  var db = 0.0;
  var dg = 0.0;
  let nc = p.batch * p.n;
  for (var b = lid.x; b < p.batch; b = b + ${ROW_WG}u) {
    db = db + part[p.part_o + b * p.n + i];
    dg = dg + part[p.part_o + nc + b * p.n + i];
  }
  let sg = wgSum(dg, lid.x);
  let sb = wgSum(db, lid.x);
  if (lid.x == 0u) {
    dgamma[p.dgamma_o + i] = sg;
    dbeta[p.dbeta_o + i] = sb;
  }`,
}));

/** Softmax over rows: one workgroup per row. */
export const softmaxKernel = memo((): KernelSpec => ({
  key: "softmax",
  bindings: [ro("x"), rw("y")],
  params: [["rows", "u32"], ["cols", "u32"]],
  workgroup: [ROW_WG],
  decls: workgroupReduce(ROW_WG),
  body: `
  let row = ${GROUP_INDEX};
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var m = -3.4028234663852886e38;
  for (var j = lid.x; j < p.cols; j = j + ${ROW_WG}u) { m = max(m, x[p.x_o + base + j]); }
  let mx = wgMax(m, lid.x);
  var s = 0.0;
  for (var j = lid.x; j < p.cols; j = j + ${ROW_WG}u) { s = s + exp(x[p.x_o + base + j] - mx); }
  let total = wgSum(s, lid.x);
  for (var j = lid.x; j < p.cols; j = j + ${ROW_WG}u) {
    y[p.y_o + base + j] = exp(x[p.x_o + base + j] - mx) / total;
  }`,
}));

/** dx = y (dy - sum(y dy)) per row: one workgroup per row. */
export const softmaxGradKernel = memo((): KernelSpec => ({
  key: "softmax_grad",
  bindings: [ro("y"), ro("dy"), rw("dx")],
  params: [["rows", "u32"], ["cols", "u32"]],
  workgroup: [ROW_WG],
  decls: workgroupReduce(ROW_WG),
  body: `
  let row = ${GROUP_INDEX};
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var s = 0.0;
  for (var j = lid.x; j < p.cols; j = j + ${ROW_WG}u) {
    s = s + y[p.y_o + base + j] * dy[p.dy_o + base + j];
  }
  let dot = wgSum(s, lid.x);
  for (var j = lid.x; j < p.cols; j = j + ${ROW_WG}u) {
    let v = y[p.y_o + base + j];
    dx[p.dx_o + base + j] = v * (dy[p.dy_o + base + j] - dot);
  }`,
}));
