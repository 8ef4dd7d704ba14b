// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: vector helpers shared by the kernels (f32x4 fused multiply-add, exp, tanh,
// sigmoid, partial stores). Compiled twice: with relaxed SIMD (`f32x4.relaxed_madd`) and without
// (multiply then add); `ASC_FEATURE_RELAXED_SIMD` is a compile-time constant, so each build holds
// only its own branch.

/** a * b + c, fused where relaxed SIMD is enabled. */

@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  } else {
    return f32x4.add(f32x4.mul(a, b), c);
  }
}

/** Stores the first `count` (0..3) lanes of `v` at `p`. */

@inline
export function storePartial(p: usize, v: v128, count: i32): void {
  if (count > 0) store<f32>(p, f32x4.extract_lane(v, 0));
  if (count > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (count > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/**
 * Copies `n` floats from `src` to `dst` a vector at a time, the lanes of the last vector past n
 * stored as zeros: dst needs room for n rounded up to 4 (src may be read that far: the heap keeps
 * a vector's slack at the end of the memory). For short rows, where memory.copy's call into the
 * engine costs more than the copy.
 */

@inline
export function copyZeroPadded(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
  if (i < n) v128.store(dst + (<usize>i << 2), loadPrefix(src + (<usize>i << 2), n - i));
}

/**
 * The first `count` floats at `p` (none for count <= 0, all four from 4), the other lanes 0, from
 * one whole-vector load (the heap never hands out the last 64 bytes of the memory, so a vector, or
 * two, may be read from any element).
 */

@inline
export function loadPrefix(p: usize, count: i32): v128 {
  return v128.and(v128.load(p), i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(count)));
}

/**
 * ReLU per lane: x > 0 ? x : 0 (NaN and -0 give +0, as the reference's ReLU). The pseudo-maximum
 * pmax(0, x) is by definition 0 < x ? x : 0, exactly that: one x86 maxps instead of a compare and
 * a bit select.
 */

@inline
export function vrelu(x: v128): v128 {
  return f32x4.pmax(f32x4.splat(0), x);
}

/** Sum of the four lanes. */

@inline
export function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) +
    (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** Sum of the two lanes. */

@inline
export function hsum64(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

// Vector constants are loaded from this table rather than written as `f32x4.splat(c)`: V8 builds
// every v128 constant other than all-zeros and all-ones from general registers (three or four
// instructions) at each use inside a loop, which made e^x about 2.5 times slower.
const K = memory.data<f32>([
  -87.3, -87.3, -87.3, -87.3,
  88.7, 88.7, 88.7, 88.7,
  12582912.0, 12582912.0, 12582912.0, 12582912.0,
  1.44269504088896341, 1.44269504088896341, 1.44269504088896341, 1.44269504088896341,
  0.693359375, 0.693359375, 0.693359375, 0.693359375,
  -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, -2.12194440e-4,
  1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4,
  1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3,
  8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3,
  4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2,
  1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1,
  5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1,
  1.0, 1.0, 1.0, 1.0,
  -5.70498872745e-3, -5.70498872745e-3, -5.70498872745e-3, -5.70498872745e-3,
  2.06390887954e-2, 2.06390887954e-2, 2.06390887954e-2, 2.06390887954e-2,
  -5.37397155531e-2, -5.37397155531e-2, -5.37397155531e-2, -5.37397155531e-2,
  1.33314422036e-1, 1.33314422036e-1, 1.33314422036e-1, 1.33314422036e-1,
  -3.33332819422e-1, -3.33332819422e-1, -3.33332819422e-1, -3.33332819422e-1,
  2.0, 2.0, 2.0, 2.0,
  0.625, 0.625, 0.625, 0.625,
  -0.0, -0.0, -0.0, -0.0,
  0.5, 0.5, 0.5, 0.5,
  0.7978845608028654, 0.7978845608028654, 0.7978845608028654, 0.7978845608028654,
  0.044715, 0.044715, 0.044715, 0.044715,
  0.134145, 0.134145, 0.134145, 0.134145,
  -1.0, -1.0, -1.0, -1.0,
]);

// Offsets (bytes) of the constants in K.
export const K_EXP_LO = 0;
export const K_EXP_HI = 16;
export const K_MAGIC = 32;
export const K_LOG2E = 48;
export const K_LN2_HI = 64;
export const K_LN2_LO = 80;
export const K_EXP_P0 = 96; // P0..P5 at 96, 112, ..., 176
export const K_ONE = 192;
export const K_TANH_P0 = 208; // P0..P4 at 208, ..., 272
export const K_TWO = 288;
export const K_0625 = 304;
export const K_NEG_ZERO = 320;
export const K_HALF = 336;
export const K_SQRT_2_OVER_PI = 352;
export const K_GELU_A = 368;
export const K_GELU_3A = 384;
export const K_MINUS_ONE = 400;

/** The constant at byte offset `off` of K, splatted (`off` is a compile-time constant). */

@inline
export function kc(off: i32): v128 {
  return v128.load(K + <usize>off);
}

/**
 * e^x per lane (Cephes expf: range reduction by ln 2, degree-6 polynomial; about 2 ulp). The
 * nearest integer n = round(x / ln 2) comes from adding 1.5 * 2^23, whose low mantissa bits then
 * hold n, so 2^n is that float's bits plus 127 shifted into the exponent (no rounding or
 * float-to-int conversion, which take several instructions each in V8).
 */

@inline
export function vexp(x: v128): v128 {
  return expWith(
    x, kc(K_EXP_LO), kc(K_EXP_HI), kc(K_MAGIC), kc(K_LOG2E), kc(K_LN2_HI), kc(K_LN2_LO),
    kc(K_EXP_P0), kc(K_EXP_P0 + 16), kc(K_EXP_P0 + 32), kc(K_EXP_P0 + 48), kc(K_EXP_P0 + 64),
    kc(K_EXP_P0 + 80), kc(K_ONE),
  );
}

/**
 * e^x with vexp's constants passed in (vexp is this with them loaded): a loop loads them once
 * and calls this, instead of loading thirteen constants per vector, each with Deno's bounds
 * check. c0 = K_EXP_LO, c1 = K_EXP_HI, c2 = K_MAGIC, c3 = K_LOG2E, c4 = K_LN2_HI, c5 = K_LN2_LO,
 * p0-p5 the polynomial (K_EXP_P0 on) and one = K_ONE.
 */
@inline
export function expWith(
  x: v128, c0: v128, c1: v128, c2: v128, c3: v128, c4: v128, c5: v128,
  p0: v128, p1: v128, p2: v128, p3: v128, p4: v128, p5: v128, one: v128,
): v128 {
  x = f32x4.pmin(f32x4.pmax(x, c0), c1);
  const k = f32x4.add(f32x4.mul(x, c3), c2);
  const n = f32x4.sub(k, c2);
  let r = f32x4.sub(x, f32x4.mul(n, c4));
  r = f32x4.sub(r, f32x4.mul(n, c5));
  let p = madd(p0, r, p1);
  p = madd(p, r, p2);
  p = madd(p, r, p3);
  p = madd(p, r, p4);
  p = madd(p, r, p5);
  p = f32x4.add(madd(p, f32x4.mul(r, r), r), one);
  return f32x4.mul(p, i32x4.add(i32x4.shl(k, 23), one));
}

/** The logistic function per lane, computed from e^-|x| on both sides as the reference does. */

@inline
export function vsigmoid(x: v128): v128 {
  const e = vexp(f32x4.neg(f32x4.abs(x)));
  const one = kc(K_ONE);
  const d = f32x4.add(one, e);
  return v128.bitselect(f32x4.div(one, d), f32x4.div(e, d), f32x4.ge(x, f32x4.splat(0)));
}

/** tanh per lane: a polynomial below 0.625 (Cephes tanhf), 1 - 2 / (e^2|x| + 1) above. */
export function vtanh(x: v128): v128 {
  const ax = f32x4.abs(x);
  const z = f32x4.mul(x, x);
  let p = kc(K_TANH_P0);
  p = madd(p, z, kc(K_TANH_P0 + 16));
  p = madd(p, z, kc(K_TANH_P0 + 32));
  p = madd(p, z, kc(K_TANH_P0 + 48));
  p = madd(p, z, kc(K_TANH_P0 + 64));
  const small = madd(f32x4.mul(p, z), x, x);
  const one = kc(K_ONE);
  const e = vexp(f32x4.add(ax, ax));
  const big = f32x4.sub(one, f32x4.div(kc(K_TWO), f32x4.add(e, one)));
  const signed = v128.or(big, v128.and(x, kc(K_NEG_ZERO)));
  return v128.bitselect(small, signed, f32x4.lt(ax, kc(K_0625)));
}
