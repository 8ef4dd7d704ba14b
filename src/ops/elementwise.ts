/**
 * Element-wise ops with NumPy broadcasting, and their gradients.
 *
 * @module
 */

import { type BinaryOp, COMBINE_MAX_TERMS, type Storage, type UnaryOp } from "../backend.ts";
import { result, type Tensor } from "../tensor.ts";

/** The broadcast shape of two shapes (NumPy rules), or an error naming both. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length), out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1, db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`shapes [${a}] and [${b}] do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** `shape` left-padded with ones to `rank`. */
export function padRank(shape: readonly number[], rank: number): number[] {
  return [...new Array<number>(rank - shape.length).fill(1), ...shape];
}

/** Sums a gradient of `outShape` down to `shape` (the inverse of broadcasting). */
export function reduceTo(
  t: Tensor,
  g: Storage,
  outShape: readonly number[],
  shape: readonly number[],
): Storage {
  if (g.length === t.size) return g;
  return t.backend.reduceSum(g, outShape, padRank(shape, outShape.length));
}

function binaryOp(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  if (a.backend !== b.backend) throw new Error(`${op}: tensors live on different backends`);
  const be = a.backend;
  const out = broadcastShapes(a.shape, b.shape);
  const as = padRank(a.shape, out.length), bs = padRank(b.shape, out.length);
  const y = be.binary(op, a.storage, b.storage, { a: as, b: bs, out });
  return result(op, be, y, out, [a, b], (g) => {
    const mul = (x: Storage, xs: readonly number[], z: Storage, zs: readonly number[]) =>
      be.binary("mul", x, z, { a: xs, b: zs, out });
    switch (op) {
      case "add":
        return [
          a.requiresGrad ? reduceTo(a, g, out, a.shape) : null,
          b.requiresGrad ? reduceTo(b, g, out, b.shape) : null,
        ];
      case "sub":
        return [
          a.requiresGrad ? reduceTo(a, g, out, a.shape) : null,
          b.requiresGrad ? reduceTo(b, be.unary("neg", g), out, b.shape) : null,
        ];
      case "mul":
        return [
          a.requiresGrad ? reduceTo(a, mul(g, out, b.storage, bs), out, a.shape) : null,
          b.requiresGrad ? reduceTo(b, mul(g, out, a.storage, as), out, b.shape) : null,
        ];
      case "div": {
        const ga = a.requiresGrad
          ? reduceTo(a, be.binary("div", g, b.storage, { a: out, b: bs, out }), out, a.shape)
          : null;
        let gb: Storage | null = null;
        if (b.requiresGrad) {
          // d(a/b)/db = -(a/b)/b = -y/b
          const t = be.binary("div", y, b.storage, { a: out, b: bs, out });
          gb = reduceTo(b, be.unary("neg", mul(g, out, t, out)), out, b.shape);
        }
        return [ga, gb];
      }
      case "max":
      case "min": {
        // The gradient goes to the input that was chosen (a on ties).
        const pickA = be.binary("sub", y, a.storage, { a: out, b: as, out });
        const maskA = be.unary("abs", pickA);
        const ones = be.affine(be.unary("sign", maskA), -1, 1); // 1 where y == a
        const gaFull = mul(g, out, ones, out);
        const gbFull = be.binary("sub", g, gaFull, { a: out, b: out, out });
        return [
          a.requiresGrad ? reduceTo(a, gaFull, out, a.shape) : null,
          b.requiresGrad ? reduceTo(b, gbFull, out, b.shape) : null,
        ];
      }
    }
  });
}

/** a + b, broadcasting. */
export function add(a: Tensor, b: Tensor): Tensor {
  return binaryOp("add", a, b);
}
/** a - b, broadcasting. */
export function sub(a: Tensor, b: Tensor): Tensor {
  return binaryOp("sub", a, b);
}
/** a * b, broadcasting. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return binaryOp("mul", a, b);
}
/** a / b, broadcasting. */
export function div(a: Tensor, b: Tensor): Tensor {
  return binaryOp("div", a, b);
}
/** Element-wise maximum, broadcasting. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return binaryOp("max", a, b);
}
/** Element-wise minimum, broadcasting. */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return binaryOp("min", a, b);
}

/** Applies a one-argument function element-wise. */
export function unary(op: UnaryOp, x: Tensor): Tensor {
  const be = x.backend;
  return result(op, be, be.unary(op, x.storage), x.shape, [x], (g) => [
    be.unaryBackward(op, x.storage, g),
  ]);
}

/** max(x, 0). */
export const relu = (x: Tensor): Tensor => unary("relu", x);
/** x * sigmoid(x). */
export const silu = (x: Tensor): Tensor => unary("silu", x);
/** GELU (tanh form). */
export const gelu = (x: Tensor): Tensor => unary("gelu", x);
/** tanh(x). */
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
/** 1 / (1 + exp(-x)). */
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
/** exp(x). */
export const exp = (x: Tensor): Tensor => unary("exp", x);
/** Natural logarithm. */
export const log = (x: Tensor): Tensor => unary("log", x);
/** Square root. */
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
/** x squared. */
export const square = (x: Tensor): Tensor => unary("square", x);
/** |x|. */
export const abs = (x: Tensor): Tensor => unary("abs", x);
/** sin(x). */
export const sin = (x: Tensor): Tensor => unary("sin", x);
/** cos(x). */
export const cos = (x: Tensor): Tensor => unary("cos", x);
/** -x. */
export const neg = (x: Tensor): Tensor => unary("neg", x);

/** x * scale + shift with scalar scale and shift. */
export function affine(x: Tensor, scale: number, shift = 0): Tensor {
  const be = x.backend;
  return result("affine", be, be.affine(x.storage, scale, shift), x.shape, [x], (g) => [
    scale === 1 ? g : be.affine(g, scale, 0),
  ]);
}

/** Options of {@link combine}. */
export interface CombineOptions {
  /** A factor applied to the sum (default 1). */
  scale?: number;
  /** Clamps the result to [-clip, clip] (default null: no clamp; a clamped result has no gradient). */
  clip?: number | null;
}

/**
 * The linear combination (s0 x0 + s1 x1 + ...) * scale of one to four tensors of one shape,
 * clamped to [-clip, clip] when `clip` is set: a sampler's update in one kernel. It has the bits
 * of the chain of {@link affine} and {@link add} it replaces (each product rounded to float32, the
 * sum taken left to right, then the scale and the clamp).
 *
 * @example The DDPM posterior mean plus its noise, c1 x0 + c2 xt + sigma z
 * ```ts ignore
 * const next = combine([[x0, c1], [xt, c2], [z, sigma]]);
 * ```
 */
export function combine(
  terms: readonly (readonly [Tensor, number])[],
  options: CombineOptions = {},
): Tensor {
  const { scale = 1, clip = null } = options;
  if (terms.length < 1 || terms.length > COMBINE_MAX_TERMS) {
    throw new RangeError(`combine takes 1 to ${COMBINE_MAX_TERMS} terms, got ${terms.length}`);
  }
  const [first] = terms[0], be = first.backend;
  for (const [x] of terms) {
    if (x.backend !== be) throw new Error("combine: tensors live on different backends");
    if (x.shape.length !== first.shape.length || x.shape.some((d, i) => d !== first.shape[i])) {
      throw new RangeError(`combine: shapes [${first.shape}] and [${x.shape}] differ`);
    }
  }
  const y = be.combine(terms.map(([x, s]) => ({ x: x.storage, scale: s })), scale, clip);
  if (clip !== null) return result("combine", be, y, first.shape, [], () => []);
  return result(
    "combine",
    be,
    y,
    first.shape,
    terms.map(([x]) => x),
    (g) => terms.map(([x, s]) => x.requiresGrad ? be.affine(g, s * scale, 0) : null),
  );
}

/** Clamps to [lo, hi]; not differentiable (sampling only). */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  const be = x.backend;
  return result("clamp", be, be.clamp(x.storage, lo, hi), x.shape, [], () => []);
}
