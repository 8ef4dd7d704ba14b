/**
 * Scalar functions of the reference backend's element-wise kernels, in float64: the definitions
 * the fast backends are tested against.
 *
 * @module
 */

import type { BinaryOp, UnaryOp } from "../../backend.ts";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** The logistic function, without overflow for large |x|. */
export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** x * sigmoid(x). */
export function silu(x: number): number {
  return x * sigmoid(x);
}

/** The derivative of {@link silu}. */
export function siluGrad(x: number): number {
  const s = sigmoid(x);
  return s * (1 + x * (1 - s));
}

/** GELU, tanh form (PyTorch's `approximate="tanh"`), the same on every backend. */
export function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
}

/** The derivative of {@link gelu}. */
export function geluGrad(x: number): number {
  const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
  const th = Math.tanh(u);
  const du = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * du;
}

/** Each unary op as a scalar function. */
export const UNARY: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  square: (x) => x * x,
  abs: Math.abs,
  sign: Math.sign,
  floor: Math.floor,
  relu: (x) => (x > 0 ? x : 0),
  silu,
  gelu,
  tanh: Math.tanh,
  sigmoid,
  sin: Math.sin,
  cos: Math.cos,
};

/** The derivative of each differentiable unary op. */
export const UNARY_GRAD: Partial<Record<UnaryOp, (x: number) => number>> = {
  neg: () => -1,
  exp: Math.exp,
  log: (x) => 1 / x,
  sqrt: (x) => 0.5 / Math.sqrt(x),
  rsqrt: (x) => -0.5 / (x * Math.sqrt(x)),
  square: (x) => 2 * x,
  abs: Math.sign,
  relu: (x) => (x > 0 ? 1 : 0),
  silu: siluGrad,
  gelu: geluGrad,
  tanh: (x) => {
    const t = Math.tanh(x);
    return 1 - t * t;
  },
  sigmoid: (x) => {
    const s = sigmoid(x);
    return s * (1 - s);
  },
  sin: Math.cos,
  cos: (x) => -Math.sin(x),
};

/** Each binary op as a scalar function. */
export const BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: (a, b) => (a >= b ? a : b),
  min: (a, b) => (a <= b ? a : b),
};
