// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: element-wise kernels (unary functions and their gradients, broadcast binary
// ops, affine, axpy, clamp, and the linear combination of a sampler's update). Pointers are byte offsets into the one memory; lengths count f32
// elements. Every kernel takes the element (or row) range [begin, end) it computes, so the host
// can split work across threads. Tails shorter than a vector are computed as a vector and stored
// lane by lane, so no kernel writes past the end of its output.

import {
  K_GELU_3A,
  K_GELU_A,
  K_HALF,
  K_MINUS_ONE,
  K_ONE,
  K_SQRT_2_OVER_PI,
  kc,
  madd,
  storePartial,
  vexp,
  vrelu,
  vsigmoid,
  vtanh,
} from "./simd.ts";

// Unary op codes, in the order of `UnaryOp` in src/backend.ts.
const NEG = 0;
const EXP = 1;
const LOG = 2;
const SQRT = 3;
const RSQRT = 4;
const SQUARE = 5;
const ABS = 6;
const SIGN = 7;
const FLOOR = 8;
const RELU = 9;
const SILU = 10;
const GELU = 11;
const TANH = 12;
const SIGMOID = 13;
const SIN = 14;
const COS = 15;

/** sign(x): 1, -1, or x itself (zeros and NaN), as Math.sign. */
function vsign(x: v128): v128 {
  const zero = f32x4.splat(0);
  const neg = v128.bitselect(kc(K_MINUS_ONE), x, f32x4.lt(x, zero));
  return v128.bitselect(kc(K_ONE), neg, f32x4.gt(x, zero));
}

/** The rare transcendental ops, lane by lane in double precision. */
function scalarLanes(op: i32, x: v128): v128 {
  let r = x;
  for (let l = 0; l < 4; l++) {
    let v: f64 = 0;
    if (l == 0) v = f64(f32x4.extract_lane(x, 0));
    else if (l == 1) v = f64(f32x4.extract_lane(x, 1));
    else if (l == 2) v = f64(f32x4.extract_lane(x, 2));
    else v = f64(f32x4.extract_lane(x, 3));
    let y: f64 = 0;
    if (op == LOG) y = Math.log(v);
    else if (op == SIN) y = Math.sin(v);
    else if (op == COS) y = Math.cos(v);
    else if (op == -SIN) y = -Math.sin(v);
    const f = f32(y);
    if (l == 0) r = f32x4.replace_lane(r, 0, f);
    else if (l == 1) r = f32x4.replace_lane(r, 1, f);
    else if (l == 2) r = f32x4.replace_lane(r, 2, f);
    else r = f32x4.replace_lane(r, 3, f);
  }
  return r;
}

function gelu(x: v128): v128 {
  const x3 = f32x4.mul(f32x4.mul(x, x), x);
  const u = f32x4.mul(kc(K_SQRT_2_OVER_PI), madd(x3, kc(K_GELU_A), x));
  const t = vtanh(u);
  return f32x4.mul(f32x4.mul(kc(K_HALF), x), f32x4.add(kc(K_ONE), t));
}

function geluGrad(x: v128): v128 {
  const one = kc(K_ONE);
  const half = kc(K_HALF);
  const xx = f32x4.mul(x, x);
  const u = f32x4.mul(kc(K_SQRT_2_OVER_PI), madd(f32x4.mul(xx, x), kc(K_GELU_A), x));
  const th = vtanh(u);
  const du = f32x4.mul(kc(K_SQRT_2_OVER_PI), madd(xx, kc(K_GELU_3A), one));
  const a = f32x4.mul(half, f32x4.add(one, th));
  const b = f32x4.mul(f32x4.mul(f32x4.mul(half, x), f32x4.sub(one, f32x4.mul(th, th))), du);
  return f32x4.add(a, b);
}

@inline
function unaryVec(op: i32, x: v128): v128 {
  const one = kc(K_ONE);
  switch (op) {
    case NEG:
      return f32x4.neg(x);
    case EXP:
      return vexp(x);
    case SQRT:
      return f32x4.sqrt(x);
    case RSQRT:
      return f32x4.div(one, f32x4.sqrt(x));
    case SQUARE:
      return f32x4.mul(x, x);
    case ABS:
      return f32x4.abs(x);
    case SIGN:
      return vsign(x);
    case FLOOR:
      return f32x4.floor(x);
    case RELU:
      return vrelu(x);
    case SILU:
      return f32x4.mul(x, vsigmoid(x));
    case GELU:
      return gelu(x);
    case TANH:
      return vtanh(x);
    case SIGMOID:
      return vsigmoid(x);
    default:
      return scalarLanes(op, x);
  }
}

/** The derivative op'(x) per lane (ops without one give 0; the host refuses them). */

@inline
function gradVec(op: i32, x: v128): v128 {
  const zero = f32x4.splat(0);
  const one = kc(K_ONE);
  switch (op) {
    case NEG:
      return f32x4.splat(-1.0);
    case EXP:
      return vexp(x);
    case LOG:
      return f32x4.div(one, x);
    case SQRT:
      return f32x4.div(f32x4.splat(0.5), f32x4.sqrt(x));
    case RSQRT:
      return f32x4.div(f32x4.splat(-0.5), f32x4.mul(x, f32x4.sqrt(x)));
    case SQUARE:
      return f32x4.add(x, x);
    case ABS:
      return vsign(x);
    case RELU:
      return v128.bitselect(one, zero, f32x4.gt(x, zero));
    case SILU: {
      const s = vsigmoid(x);
      return f32x4.mul(s, madd(x, f32x4.sub(one, s), one));
    }
    case GELU:
      return geluGrad(x);
    case TANH: {
      const t = vtanh(x);
      return f32x4.sub(one, f32x4.mul(t, t));
    }
    case SIGMOID: {
      const s = vsigmoid(x);
      return f32x4.mul(s, f32x4.sub(one, s));
    }
    case SIN:
      return scalarLanes(COS, x);
    case COS:
      return scalarLanes(-SIN, x);
    default:
      return zero;
  }
}

/** y[i] = op(x[i]) over [begin, end), with `op` a constant after inlining. */

@inline
function unaryLoop(op: i32, x: usize, y: usize, begin: i32, end: i32): void {
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    v128.store(y + (<usize>i << 2), unaryVec(op, v128.load(x + (<usize>i << 2))));
  }
  if (i < end) {
    storePartial(y + (<usize>i << 2), unaryVec(op, v128.load(x + (<usize>i << 2))), end - i);
  }
}

/** y[i] = op(x[i]) for i in [begin, end). */
export function unary(op: i32, x: usize, y: usize, begin: i32, end: i32): void {
  switch (op) {
    case NEG:
      unaryLoop(NEG, x, y, begin, end);
      break;
    case EXP:
      unaryLoop(EXP, x, y, begin, end);
      break;
    case SQRT:
      unaryLoop(SQRT, x, y, begin, end);
      break;
    case RSQRT:
      unaryLoop(RSQRT, x, y, begin, end);
      break;
    case SQUARE:
      unaryLoop(SQUARE, x, y, begin, end);
      break;
    case ABS:
      unaryLoop(ABS, x, y, begin, end);
      break;
    case SIGN:
      unaryLoop(SIGN, x, y, begin, end);
      break;
    case FLOOR:
      unaryLoop(FLOOR, x, y, begin, end);
      break;
    case RELU:
      unaryLoop(RELU, x, y, begin, end);
      break;
    case SILU:
      unaryLoop(SILU, x, y, begin, end);
      break;
    case GELU:
      unaryLoop(GELU, x, y, begin, end);
      break;
    case TANH:
      unaryLoop(TANH, x, y, begin, end);
      break;
    case SIGMOID:
      unaryLoop(SIGMOID, x, y, begin, end);
      break;
    default:
      unaryLoop(op, x, y, begin, end);
  }
}

/** dx[i] = dy[i] * op'(x[i]) over [begin, end), with `op` a constant after inlining. */

@inline
function gradLoop(op: i32, x: usize, dy: usize, dx: usize, begin: i32, end: i32): void {
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, f32x4.mul(v128.load(dy + o), gradVec(op, v128.load(x + o))));
  }
  if (i < end) {
    const o = <usize>i << 2;
    storePartial(dx + o, f32x4.mul(v128.load(dy + o), gradVec(op, v128.load(x + o))), end - i);
  }
}

/** dx[i] = dy[i] * op'(x[i]) for i in [begin, end). */
export function unaryBackward(op: i32, x: usize, dy: usize, dx: usize, begin: i32, end: i32): void {
  switch (op) {
    case RELU:
      gradLoop(RELU, x, dy, dx, begin, end);
      break;
    case SILU:
      gradLoop(SILU, x, dy, dx, begin, end);
      break;
    case GELU:
      gradLoop(GELU, x, dy, dx, begin, end);
      break;
    case TANH:
      gradLoop(TANH, x, dy, dx, begin, end);
      break;
    case SIGMOID:
      gradLoop(SIGMOID, x, dy, dx, begin, end);
      break;
    default:
      gradLoop(op, x, dy, dx, begin, end);
  }
}

// Binary op codes, in the order of `BinaryOp` in src/backend.ts.
const ADD = 0;
const SUB = 1;
const MUL = 2;
const DIV = 3;
const MAX = 4;
const MIN = 5;

@inline
function binaryVec(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case ADD:
      return f32x4.add(a, b);
    case SUB:
      return f32x4.sub(a, b);
    case MUL:
      return f32x4.mul(a, b);
    case DIV:
      return f32x4.div(a, b);
    case MAX:
      return v128.bitselect(a, b, f32x4.ge(a, b));
    default:
      return v128.bitselect(a, b, f32x4.le(a, b));
  }
}

/** One contiguous run of `len` outputs; `sa`/`sb` are 1 (contiguous) or 0 (one broadcast value). */

@inline
function binaryRun(op: i32, a: usize, sa: i32, b: usize, sb: i32, o: usize, len: i32): void {
  let i = 0;
  if (sa != 0 && sb != 0) {
    for (; i + 4 <= len; i += 4) {
      const off = <usize>i << 2;
      v128.store(o + off, binaryVec(op, v128.load(a + off), v128.load(b + off)));
    }
    if (i < len) {
      const off = <usize>i << 2;
      storePartial(o + off, binaryVec(op, v128.load(a + off), v128.load(b + off)), len - i);
    }
  } else if (sa != 0) {
    const vb = v128.load32_splat(b);
    for (; i + 4 <= len; i += 4) {
      const off = <usize>i << 2;
      v128.store(o + off, binaryVec(op, v128.load(a + off), vb));
    }
    if (i < len) {
      const off = <usize>i << 2;
      storePartial(o + off, binaryVec(op, v128.load(a + off), vb), len - i);
    }
  } else {
    const va = v128.load32_splat(a);
    for (; i + 4 <= len; i += 4) {
      const off = <usize>i << 2;
      v128.store(o + off, binaryVec(op, va, v128.load(b + off)));
    }
    if (i < len) {
      const off = <usize>i << 2;
      storePartial(o + off, binaryVec(op, va, v128.load(b + off)), len - i);
    }
  }
}

/** The rows [begin, end) of a broadcast binary op, with `op` a constant after inlining. */

@inline
function binaryRows(
  op: i32,
  a: usize,
  b: usize,
  o: usize,
  params: usize,
  begin: i32,
  end: i32,
): void {
  const rank = load<i32>(params);
  const shape = params + 4;
  const sa = shape + (<usize>rank << 2);
  const sb = sa + (<usize>rank << 2);
  const last = <usize>(rank - 1) << 2;
  const len = load<i32>(shape + last);
  const ia = load<i32>(sa + last);
  const ib = load<i32>(sb + last);
  if (rank == 1) {
    // One run: begin and end count elements.
    const o0 = <usize>begin << 2;
    binaryRun(op, a + o0 * <usize>ia, ia, b + o0 * <usize>ib, ib, o + o0, end - begin);
    return;
  }
  for (let r = begin; r < end; r++) {
    let rem = r;
    let offA = 0;
    let offB = 0;
    for (let d = rank - 2; d >= 0; d--) {
      const dd = <usize>d << 2;
      const n = load<i32>(shape + dd);
      const q = rem / n;
      const idx = rem - q * n;
      rem = q;
      offA += idx * load<i32>(sa + dd);
      offB += idx * load<i32>(sb + dd);
    }
    binaryRun(
      op,
      a + (<usize>offA << 2),
      ia,
      b + (<usize>offB << 2),
      ib,
      o + (<usize>r * <usize>len << 2),
      len,
    );
  }
}

/**
 * out = a op b with broadcasting, over rows [begin, end) of the output's innermost axis (over
 * elements [begin, end) when the merged rank is 1).
 * `params` holds i32s: rank, shape[rank], strideA[rank], strideB[rank] (element strides, 0 where
 * broadcast), with axes already merged by the host; the innermost strides are 0 or 1.
 */
export function binary(
  op: i32,
  a: usize,
  b: usize,
  o: usize,
  params: usize,
  begin: i32,
  end: i32,
): void {
  switch (op) {
    case ADD:
      binaryRows(ADD, a, b, o, params, begin, end);
      break;
    case SUB:
      binaryRows(SUB, a, b, o, params, begin, end);
      break;
    case MUL:
      binaryRows(MUL, a, b, o, params, begin, end);
      break;
    case DIV:
      binaryRows(DIV, a, b, o, params, begin, end);
      break;
    case MAX:
      binaryRows(MAX, a, b, o, params, begin, end);
      break;
    default:
      binaryRows(MIN, a, b, o, params, begin, end);
  }
}
/** y[i] = x[i] * scale + shift. */
export function affine(x: usize, y: usize, scale: f32, shift: f32, begin: i32, end: i32): void {
  const vs = f32x4.splat(scale);
  const vt = f32x4.splat(shift);
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(f32x4.mul(v128.load(x + o), vs), vt));
  }
  if (i < end) {
    const o = <usize>i << 2;
    storePartial(y + o, f32x4.add(f32x4.mul(v128.load(x + o), vs), vt), end - i);
  }
}

/** y[i] += alpha * x[i], in place. */
export function axpy(y: usize, x: usize, alpha: f32, begin: i32, end: i32): void {
  const va = f32x4.splat(alpha);
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(va, v128.load(x + o))));
  }
  if (i < end) {
    const o = <usize>i << 2;
    storePartial(y + o, f32x4.add(v128.load(y + o), f32x4.mul(va, v128.load(x + o))), end - i);
  }
}

/** y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i]. */
export function clamp(x: usize, y: usize, lo: f32, hi: f32, begin: i32, end: i32): void {
  const vl = f32x4.splat(lo);
  const vh = f32x4.splat(hi);
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    v128.store(y + o, v128.bitselect(vl, v128.bitselect(vh, v, f32x4.gt(v, vh)), f32x4.lt(v, vl)));
  }
  if (i < end) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const r = v128.bitselect(vl, v128.bitselect(vh, v, f32x4.gt(v, vh)), f32x4.lt(v, vl));
    storePartial(y + o, r, end - i);
  }
}

/** combine's value at byte offset o: the terms' products summed left to right, scaled, clamped. */
@inline
function combineAt(
  o: usize, terms: i32, x0: usize, x1: usize, x2: usize, x3: usize,
  s0: v128, s1: v128, s2: v128, s3: v128, vs: v128, lo: v128, hi: v128, clip: bool,
): v128 {
  let v = f32x4.mul(v128.load(x0 + o), s0);
  if (terms > 1) v = f32x4.add(v, f32x4.mul(v128.load(x1 + o), s1));
  if (terms > 2) v = f32x4.add(v, f32x4.mul(v128.load(x2 + o), s2));
  if (terms > 3) v = f32x4.add(v, f32x4.mul(v128.load(x3 + o), s3));
  v = f32x4.mul(v, vs);
  if (clip) v = v128.bitselect(lo, v128.bitselect(hi, v, f32x4.gt(v, hi)), f32x4.lt(v, lo));
  return v;
}

/** combine's loop over [begin, end) for a constant number of terms. */
@inline
function combineRange(
  terms: i32, x0: usize, s0: f32, x1: usize, s1: f32, x2: usize, s2: f32, x3: usize, s3: f32,
  y: usize, scale: f32, clip: f32, clipped: bool, begin: i32, end: i32,
): void {
  const v0 = f32x4.splat(s0);
  const v1 = f32x4.splat(s1);
  const v2 = f32x4.splat(s2);
  const v3 = f32x4.splat(s3);
  const vs = f32x4.splat(scale);
  const lo = f32x4.splat(-clip);
  const hi = f32x4.splat(clip);
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, combineAt(o, terms, x0, x1, x2, x3, v0, v1, v2, v3, vs, lo, hi, clipped));
  }
  if (i < end) {
    const o = <usize>i << 2;
    const v = combineAt(o, terms, x0, x1, x2, x3, v0, v1, v2, v3, vs, lo, hi, clipped);
    storePartial(y + o, v, end - i);
  }
}

/**
 * y[i] = (s0 x0[i] + s1 x1[i] + ...) * scale over the first `terms` (1 to 4) terms, each product
 * rounded and the sum taken left to right (as affine and binary add would), then clamped to
 * [-clip, clip] when `clipped` is not 0.
 */
export function combine(
  terms: i32, x0: usize, s0: f32, x1: usize, s1: f32, x2: usize, s2: f32, x3: usize, s3: f32,
  y: usize, scale: f32, clip: f32, clipped: i32, begin: i32, end: i32,
): void {
  if (clipped != 0) {
    if (terms == 1) combineRange(1, x0, s0, x1, s1, x2, s2, x3, s3, y, scale, clip, true, begin, end);
    else if (terms == 2) combineRange(2, x0, s0, x1, s1, x2, s2, x3, s3, y, scale, clip, true, begin, end);
    else if (terms == 3) combineRange(3, x0, s0, x1, s1, x2, s2, x3, s3, y, scale, clip, true, begin, end);
    else combineRange(4, x0, s0, x1, s1, x2, s2, x3, s3, y, scale, clip, true, begin, end);
  } else if (terms == 1) combineRange(1, x0, s0, x1, s1, x2, s2, x3, s3, y, scale, clip, false, begin, end);
  else if (terms == 2) combineRange(2, x0, s0, x1, s1, x2, s2, x3, s3, y, scale, clip, false, begin, end);
  else if (terms == 3) combineRange(3, x0, s0, x1, s1, x2, s2, x3, s3, y, scale, clip, false, begin, end);
  else combineRange(4, x0, s0, x1, s1, x2, s2, x3, s3, y, scale, clip, false, begin, end);
}
