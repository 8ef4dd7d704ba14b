/**
 * The element-wise kernels: functions of one argument, of two (with NumPy broadcasting), scalar
 * affine maps, axpy and clamping. The op names are listed once here; every backend and test
 * derives its tables from these lists.
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
}
