/**
 * The element-wise kernels: functions of one argument, of two (with NumPy broadcasting), scalar
 * affine maps, axpy, clamping and linear combinations (a sampler's update). The op names are
 * listed once here; every backend and test derives its tables from these lists.
 *
 * @module
 */

import type { Storage } from "./memory.ts";

/** Every element-wise function of one argument, in the order backends number them. */
export const UNARY_OPS = [
  "neg",
  "exp",
  "log",
  "sqrt",
  "rsqrt",
  "square",
  "abs",
  "sign",
  "floor",
  "relu",
  "silu",
  "gelu",
  "tanh",
  "sigmoid",
  "sin",
  "cos",
] as const;

/** Element-wise functions of one argument. */
export type UnaryOp = typeof UNARY_OPS[number];

/** The unary ops without a gradient (piecewise constant): `unaryBackward` refuses them. */
export const NON_DIFFERENTIABLE_UNARY_OPS: ReadonlySet<UnaryOp> = new Set(["sign", "floor"]);

/** Every element-wise function of two arguments, in the order backends number them. */
export const BINARY_OPS = ["add", "sub", "mul", "div", "max", "min"] as const;

/** Element-wise functions of two arguments, with NumPy broadcasting. */
export type BinaryOp = typeof BINARY_OPS[number];

/** The shapes of a broadcasting binary op: both operands padded to the output's rank. */
export interface BroadcastShapes {
  /** Shape of the first operand (same rank as `out`; 1 where it broadcasts). */
  readonly a: readonly number[];
  /** Shape of the second operand (same rank as `out`; 1 where it broadcasts). */
  readonly b: readonly number[];
  /** Shape of the result. */
  readonly out: readonly number[];
}

/** The most terms one {@link ElementwiseOps.combine} takes. */
export const COMBINE_MAX_TERMS = 4;

/** One term of {@link ElementwiseOps.combine}: `scale` times `x`. */
export interface CombineTerm {
  /** The values (every term's of one length). */
  readonly x: Storage;
  /** Its coefficient. */
  readonly scale: number;
}

/**
 * The common length of {@link ElementwiseOps.combine}'s terms, or a RangeError when there are
 * none, more than {@link COMBINE_MAX_TERMS}, or their lengths differ.
 */
export function combineLength(terms: readonly CombineTerm[]): number {
  if (terms.length < 1 || terms.length > COMBINE_MAX_TERMS) {
    throw new RangeError(`combine: ${terms.length} terms (1 to ${COMBINE_MAX_TERMS})`);
  }
  const n = terms[0].x.length;
  for (const t of terms) {
    if (t.x.length !== n) throw new RangeError(`combine: lengths ${n} and ${t.x.length}`);
  }
  return n;
}

/** Element-wise kernels. */
export interface ElementwiseOps {
  /** y = op(x). */
  unary(op: UnaryOp, x: Storage): Storage;
  /** dx = dy * op'(x), for differentiable ops. */
  unaryBackward(op: UnaryOp, x: Storage, dy: Storage): Storage;
  /** out = a op b with NumPy broadcasting of `shapes.a` and `shapes.b` to `shapes.out`. */
  binary(op: BinaryOp, a: Storage, b: Storage, shapes: BroadcastShapes): Storage;
  /** y = x * scale + shift, with scalar scale and shift. */
  affine(x: Storage, scale: number, shift: number): Storage;
  /** y += alpha * x, in place (equal lengths). */
  axpy(y: Storage, x: Storage, alpha: number): void;
  /** y = min(max(x, lo), hi). */
  clamp(x: Storage, lo: number, hi: number): Storage;
  /**
   * y = (s0 x0 + s1 x1 + ...) * scale, then clamped to [-clip, clip] unless `clip` is null: a
   * sampler's update in one pass over 1 to {@link COMBINE_MAX_TERMS} terms of one length, with
   * the bits of the backend's own `affine`, `add` and `clamp` one after another (each product
   * rounded as `affine(x, s, 0)` rounds it, the sum taken left to right, then the scale, then the
   * clamp).
   */
  combine(terms: readonly CombineTerm[], scale: number, clip: number | null): Storage;
}
