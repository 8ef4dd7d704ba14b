/**
 * Element-wise kernels: fill, copy, the unary functions and their gradients, binary operations with
 * broadcasting, affine, axpy, clamp and the linear combination of a sampler's update.
 *
 * @module
 */

import type { BinaryOp, UnaryOp } from "../../src/backend.ts";
import { type KernelSpec, LINEAR_INDEX, LINEAR_WG, memo, ro, rw } from "../wgsl.ts";

/** Numerically careful scalar helpers shared by the element-wise kernels. */
export const MATH_WGSL = `
fn sigm(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn tanh_(x: f32) -> f32 {
  return tanh(clamp(x, -15.0, 15.0));
}
// x minus the nearest multiple of 2 pi, in three parts (Cody-Waite), so sin and cos see [-pi, pi].
fn red2pi(x: f32) -> f32 {
  let k = round(x * 0.15915494309189535);
  return ((x - k * 6.28125) - k * ${Math.fround(2 * Math.PI - 6.28125)}) - k * ${
  Math.fround(2 * Math.PI - 6.28125 - Math.fround(2 * Math.PI - 6.28125))
};
}
fn sin_(x: f32) -> f32 { return sin(red2pi(x)); }
fn cos_(x: f32) -> f32 { return cos(red2pi(x)); }
fn gelu_(x: f32) -> f32 {
  return 0.5 * x * (1.0 + tanh_(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
fn geluGrad(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  let th = tanh_(u);
  let du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
  return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
}
`;

const UNARY_WGSL: Record<UnaryOp, string> = {
  neg: "-v",
  exp: "exp(v)",
  log: "log(v)",
  sqrt: "sqrt(v)",
  rsqrt: "1.0 / sqrt(v)",
  square: "v * v",
  abs: "abs(v)",
  sign: "sign(v)",
  floor: "floor(v)",
  relu: "select(0.0, v, v > 0.0)",
  silu: "v * sigm(v)",
  gelu: "gelu_(v)",
  tanh: "tanh_(v)",
  sigmoid: "sigm(v)",
  sin: "sin_(v)",
  cos: "cos_(v)",
};

const UNARY_GRAD_WGSL: Partial<Record<UnaryOp, string>> = {
  neg: "-g",
  exp: "g * exp(v)",
  log: "g / v",
  sqrt: "g * (0.5 / sqrt(v))",
  rsqrt: "g * (-0.5 / (v * sqrt(v)))",
  square: "g * (2.0 * v)",
  abs: "g * sign(v)",
  relu: "g * select(0.0, 1.0, v > 0.0)",
  silu: "g * (sigm(v) * (1.0 + v * (1.0 - sigm(v))))",
  gelu: "g * geluGrad(v)",
  tanh: "g * (1.0 - tanh_(v) * tanh_(v))",
  sigmoid: "g * (sigm(v) * (1.0 - sigm(v)))",
  sin: "g * cos_(v)",
  cos: "g * (-sin_(v))",
};

/** True when the unary op has a gradient kernel. */
export function hasUnaryGrad(op: UnaryOp): boolean {
  return op in UNARY_GRAD_WGSL;
}

const BINARY_WGSL: Record<BinaryOp, string> = {
  add: "va + vb",
  sub: "va - vb",
  mul: "va * vb",
  div: "va / vb",
  max: "select(vb, va, va >= vb)",
  min: "select(vb, va, va <= vb)",
};

const WG = [LINEAR_WG] as const;

/** out = value. */
export const fillKernel = memo((): KernelSpec => ({
  key: "fill",
  bindings: [rw("out")],
  params: [["n", "u32"], ["value", "f32"]],
  workgroup: WG,
  body: LINEAR_INDEX + "  out[p.out_o + i] = p.value;",
}));

/** out = x. */
export const copyKernel = memo((): KernelSpec => ({
  key: "copy",
  bindings: [ro("x"), rw("out")],
  params: [["n", "u32"]],
  workgroup: WG,
  body: LINEAR_INDEX + "  out[p.out_o + i] = x[p.x_o + i];",
}));

/** out = op(x). */
export const unaryKernel = memo((op: UnaryOp): KernelSpec => ({
  key: `unary_${op}`,
  bindings: [ro("x"), rw("out")],
  params: [["n", "u32"]],
  workgroup: WG,
  decls: MATH_WGSL,
  body: LINEAR_INDEX + `  let v = x[p.x_o + i];\n  out[p.out_o + i] = ${UNARY_WGSL[op]};`,
}));

/** out = dy * op'(x). */
export const unaryGradKernel = memo((op: UnaryOp): KernelSpec => ({
  key: `unary_grad_${op}`,
  bindings: [ro("x"), ro("dy"), rw("out")],
  params: [["n", "u32"]],
  workgroup: WG,
  decls: MATH_WGSL,
  body: LINEAR_INDEX +
    `  let v = x[p.x_o + i];\n  let g = dy[p.dy_o + i];\n  out[p.out_o + i] = ${
      UNARY_GRAD_WGSL[op]
    };`,
}));

/** out = a op b, equal lengths. */
export const binarySameKernel = memo((op: BinaryOp): KernelSpec => ({
  key: `binary_same_${op}`,
  bindings: [ro("a"), ro("b"), rw("out")],
  params: [["n", "u32"]],
  workgroup: WG,
  body: LINEAR_INDEX +
    `  let va = a[p.a_o + i];\n  let vb = b[p.b_o + i];\n  out[p.out_o + i] = ${BINARY_WGSL[op]};`,
}));

/**
 * out = a op b with broadcasting: the output index is split over `shape` (rank <= 8, row-major)
 * and each operand is read at the dot product with its strides (0 on broadcast axes).
 */
export const binaryBroadcastKernel = memo((op: BinaryOp): KernelSpec => ({
  key: `binary_bcast_${op}`,
  bindings: [ro("a"), ro("b"), rw("out")],
  params: [
    ["n", "u32"],
    ["rank", "u32"],
    ["shape", "vec4u2"],
    ["sa", "vec4u2"],
    ["sb", "vec4u2"],
  ],
  workgroup: WG,
  body: LINEAR_INDEX + `
  var rem = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = p.rank; d > 0u; d = d - 1u) {
    let s = at8(p.shape, d - 1u);
    let c = rem % s;
    rem = rem / s;
    ia = ia + c * at8(p.sa, d - 1u);
    ib = ib + c * at8(p.sb, d - 1u);
  }
  let va = a[p.a_o + ia];
  let vb = b[p.b_o + ib];
  out[p.out_o + i] = ${BINARY_WGSL[op]};`,
}));

/** out = x * scale + shift. */
export const affineKernel = memo((): KernelSpec => ({
  key: "affine",
  bindings: [ro("x"), rw("out")],
  params: [["n", "u32"], ["scale", "f32"], ["shift", "f32"]],
  workgroup: WG,
  body: LINEAR_INDEX + "  out[p.out_o + i] = x[p.x_o + i] * p.scale + p.shift;",
}));

/** y += alpha * x, in place. */
export const axpyKernel = memo((): KernelSpec => ({
  key: "axpy",
  bindings: [ro("x"), rw("y")],
  params: [["n", "u32"], ["alpha", "f32"]],
  workgroup: WG,
  body: LINEAR_INDEX + "  y[p.y_o + i] = y[p.y_o + i] + p.alpha * x[p.x_o + i];",
}));

/** out = min(max(x, lo), hi). */
export const clampKernel = memo((): KernelSpec => ({
  key: "clamp",
  bindings: [ro("x"), rw("out")],
  params: [["n", "u32"], ["lo", "f32"], ["hi", "f32"]],
  workgroup: WG,
  body: LINEAR_INDEX + `  let v = x[p.x_o + i];
  out[p.out_o + i] = select(select(v, p.hi, v > p.hi), p.lo, v < p.lo);`,
}));

/**
 * out = (s0 x0 + ... ) * scale over `terms` terms (1 to 4), the sum left to right, then with
 * `clipped` clamped to [-clip, clip] (NaN passes, as clamp's).
 */
export const combineKernel = memo((terms: number, clipped: boolean): KernelSpec => {
  const ks = Array.from({ length: terms }, (_, t) => t);
  const sum = ks.map((t) =>
    t === 0 ? `  var v = x0[p.x0_o + i] * p.s0;` : `  v = v + x${t}[p.x${t}_o + i] * p.s${t};`
  );
  const store = clipped
    ? "  out[p.out_o + i] = select(select(v, p.clip, v > p.clip), -p.clip, v < -p.clip);"
    : "  out[p.out_o + i] = v;";
  return {
    key: `combine_${terms}${clipped ? "_clip" : ""}`,
    bindings: [...ks.map((t) => ro(`x${t}`)), rw("out")],
    params: [["n", "u32"], ...ks.map((t): [string, "f32"] => [`s${t}`, "f32"]), ["scale", "f32"], [
      "clip",
      "f32",
    ]],
    workgroup: WG,
    body: LINEAR_INDEX + [...sum, "  v = v * p.scale;", store].join("\n"),
  };
});
