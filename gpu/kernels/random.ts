/**
 * Philox-4x32-10 on the device, reproducing src/random.ts: thread j encrypts block counter + j
 * (64-bit, carried across the low word) under the key (seed low, seed high) with stream in the
 * third counter word, and writes lanes 4j .. 4j+3. Uniform and integer fills match the host
 * bit for bit; normals use the same Box–Muller within float32 rounding.
 *
 * @module
 */

import { type KernelSpec, LINEAR_INDEX, LINEAR_WG, memo, rw } from "../wgsl.ts";

const PHILOX_WGSL = `
fn mulhi(a: u32, b: u32) -> u32 {
  let aLo = a & 0xffffu;
  let aHi = a >> 16u;
  let bLo = b & 0xffffu;
  let bHi = b >> 16u;
  let lolo = aLo * bLo;
  let lohi = aLo * bHi;
  let hilo = aHi * bLo;
  let hihi = aHi * bHi;
  let cross = (lolo >> 16u) + (lohi & 0xffffu) + (hilo & 0xffffu);
  return hihi + (lohi >> 16u) + (hilo >> 16u) + (cross >> 16u);
}
fn philox(j: u32) -> vec4<u32> {
  let lo = p.clo + j;
  var c0 = lo;
  var c1 = p.chi + select(0u, 1u, lo < p.clo);
  var c2 = p.stream;
  var c3 = 0u;
  var k0 = p.k0;
  var k1 = p.k1;
  for (var r = 0u; r < 10u; r = r + 1u) {
    let hi0 = mulhi(0xd2511f53u, c0);
    let lo0 = 0xd2511f53u * c0;
    let hi1 = mulhi(0xcd9e8d57u, c2);
    let lo1 = 0xcd9e8d57u * c2;
    let n0 = hi1 ^ c1 ^ k0;
    let n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 = k0 + 0x9e3779b9u;
    k1 = k1 + 0xbb67ae85u;
  }
  return vec4<u32>(c0, c1, c2, c3);
}
fn toUniform(b: u32) -> f32 {
  return f32(b >> 8u) * 5.9604644775390625e-8;
}
// ln(u) for u in (0, 1]: an atanh series on [0.5, 1] (accurate near 1, where log's absolute error
// bound would swamp the result), the built-in below.
fn lnUnit(u: f32) -> f32 {
  if (u < 0.5) { return log(u); }
  let s = (u - 1.0) / (u + 1.0);
  let s2 = s * s;
  let q = 1.0 + s2 * (0.3333333333 + s2 * (0.2 + s2 * (0.1428571429 + s2 * (0.1111111111
    + s2 * (0.0909090909 + s2 * (0.0769230769 + s2 * 0.0666666667))))));
  return 2.0 * s * q;
}
`;

/** Values per thread: one Philox block. */
export const LANES = 4;

/** What a fill turns 32 random bits into. */
export type RandomKind = "uniform" | "normal" | "int";

const WRITE: Record<RandomKind, string> = {
  uniform: `
  for (var l = 0u; l < 4u; l = l + 1u) {
    let e = i * 4u + l;
    if (e < p.len) { out[p.out_o + e] = toUniform(bits[l]); }
  }`,
  int: `
  for (var l = 0u; l < 4u; l = l + 1u) {
    let e = i * 4u + l;
    if (e < p.len) {
      out[p.out_o + e] = p.lo + min(p.range - 1.0, floor(toUniform(bits[l]) * p.range));
    }
  }`,
  normal: `
  for (var q = 0u; q < 4u; q = q + 2u) {
    let u1 = f32((bits[q] >> 8u) + 1u) * 5.9604644775390625e-8;
    let u2 = f32(bits[q + 1u] >> 8u) * 5.9604644775390625e-8;
    let r = sqrt(-2.0 * lnUnit(u1));
    // 2 pi u2 - pi lies in [-pi, pi); cos and sin there, negated, give cos and sin of 2 pi u2.
    let th = 6.283185307179586 * (u2 - 0.5);
    let e = i * 4u + q;
    if (e < p.len) { out[p.out_o + e] = -r * cos(th); }
    if (e + 1u < p.len) { out[p.out_o + e + 1u] = -r * sin(th); }
  }`,
};

/** A fill of `len` values: one thread per Philox block, `n` = ceil(len / 4) threads. */
export const randomKernel = memo((kind: RandomKind): KernelSpec => ({
  key: `random_${kind}`,
  bindings: [rw("out")],
  params: [
    ["n", "u32"],
    ["len", "u32"],
    ["clo", "u32"],
    ["chi", "u32"],
    ["stream", "u32"],
    ["k0", "u32"],
    ["k1", "u32"],
    ["lo", "f32"],
    ["range", "f32"],
  ],
  workgroup: [LINEAR_WG],
  decls: PHILOX_WGSL,
  body: LINEAR_INDEX + `  let bits = philox(i);` + WRITE[kind],
}));
