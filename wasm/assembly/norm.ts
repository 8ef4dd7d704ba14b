// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: group normalisation and softmax, forward and backward. Each kernel takes the
// range [begin, end) of independent rows it computes ((batch, group) pairs, or softmax rows).

import {
  expWith, hsum, hsum64, K_EXP_HI, K_EXP_LO, K_EXP_P0, K_LN2_HI, K_LN2_LO, K_LOG2E, K_MAGIC, K_ONE, kc,
  madd, storePartial, vexp,
} from "./simd.ts";

/** silu(z) = z / (1 + e^-z) per lane (vexp clamps its input, so no lane overflows). */

@inline
function vsilu(z: v128): v128 {
  return f32x4.div(z, f32x4.add(kc(K_ONE), vexp(f32x4.neg(z))));
}

/** silu'(z) = s (1 + z (1 - s)) with s = 1 / (1 + e^-z), per lane. */

@inline
function vsiluGrad(z: v128): v128 {
  const one = kc(K_ONE);
  const s = f32x4.div(one, f32x4.add(one, vexp(f32x4.neg(z))));
  return f32x4.mul(s, f32x4.add(one, f32x4.mul(z, f32x4.sub(one, s))));
}

/** The sum of squares of the last sumAndSquares64 call (a function returns one value). */
let squares: f64 = 0;

/** Sum of x[0..len) in double precision; the sum of their squares is left in `squares`. */
function sumAndSquares64(x: usize, len: i32): f64 {
  let a0 = f64x2.splat(0);
  let a1 = f64x2.splat(0);
  let q0 = f64x2.splat(0);
  let q1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const lo = f64x2.promote_low_f32x4(v);
    const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
    a0 = f64x2.add(a0, lo);
    a1 = f64x2.add(a1, hi);
    q0 = f64x2.add(q0, f64x2.mul(lo, lo));
    q1 = f64x2.add(q1, f64x2.mul(hi, hi));
  }
  let s = hsum64(f64x2.add(a0, a1));
  let q = hsum64(f64x2.add(q0, q1));
  for (; i < len; i++) {
    const e = f64(load<f32>(x + (<usize>i << 2)));
    s += e;
    q += e * e;
  }
  squares = q;
  return s;
}

/**
 * Group norm forward for (batch, group) rows [begin, end): y = (x - mean) * rstd * gamma + beta,
 * or its SiLU when `silu` is non-zero, with the per-row mean and rstd stored. With `shift` non-zero
 * (n*c values), x + shift[ni, ch] is normalised instead: the per-channel constant enters the
 * statistics in double precision and the affine's offset, so x + shift is never stored.
 */
export function groupNorm(
  x: usize,
  gamma: usize,
  beta: usize,
  shift: usize,
  y: usize,
  mean: usize,
  rstd: usize,
  c: i32,
  hw: i32,
  groups: i32,
  eps: f64,
  silu: i32,
  begin: i32,
  end: i32,
): void {
  const cpg = c / groups;
  const size = cpg * hw;
  for (let row = begin; row < end; row++) {
    const ni = row / groups;
    const gi = row - ni * groups;
    const base = <usize>((ni * c + gi * cpg) * hw) << 2;
    // The shift of channel ch of this sample is load<f32>(sp + ch << 2).
    const sp = shift + (<usize>(ni * c) << 2);
    // One pass: the sum and the sum of squares in double precision, var = E[x^2] - mean^2 (f64
    // keeps the cancellation harmless for float data; a second pass cost a read of every row).
    let s: f64 = 0;
    let q: f64 = 0;
    if (shift) {
      // Per channel, x + t: sum + hw t, squares + 2 t sum + hw t^2.
      for (let cc = 0; cc < cpg; cc++) {
        const t = f64(load<f32>(sp + (<usize>(gi * cpg + cc) << 2)));
        const sc = sumAndSquares64(x + base + (<usize>(cc * hw) << 2), hw);
        s += sc + f64(hw) * t;
        q += squares + 2 * t * sc + f64(hw) * t * t;
      }
    } else {
      s = sumAndSquares64(x + base, size);
      q = squares;
    }
    const mu = s / f64(size);
    const r = 1.0 / Math.sqrt(max(q / f64(size) - mu * mu, 0) + eps);
    store<f32>(mean + (<usize>row << 2), f32(mu));
    store<f32>(rstd + (<usize>row << 2), f32(r));
    for (let cc = 0; cc < cpg; cc++) {
      const ch = gi * cpg + cc;
      const sc = f64(load<f32>(gamma + (<usize>ch << 2))) * r;
      // (x + shift - mu) * sc + beta = (x - mc) * sc + beta with mc = mu - shift: the difference
      // first, against mc split into a float and its float remainder, so that it stays exact
      // where x is close to mc (x * sc - mc * sc cancels in float; so does x - float(mc) * sc,
      // by mc's rounding, when the mean is large beside the spread).
      const mc = shift ? mu - f64(load<f32>(sp + (<usize>ch << 2))) : mu;
      const mHi = f32(mc);
      const vs = f32x4.splat(f32(sc));
      const vm = f32x4.splat(mHi);
      const vl = f32x4.splat(f32(mc - f64(mHi)));
      const vt = v128.load32_splat(beta + (<usize>ch << 2));
      const o = base + (<usize>(cc * hw) << 2);
      let i = 0;
      if (silu) {
        // Two passes over the channel's plane (in L1): the affine, then the SiLU in place, so
        // that neither loop holds more vectors than there are registers (one loop spilled).
        for (let j = 0; j + 4 <= hw; j += 4) {
          const off = o + (<usize>j << 2);
          v128.store(y + off, madd(f32x4.sub(f32x4.sub(v128.load(x + off), vm), vl), vs, vt));
        }
        const c0 = kc(K_EXP_LO), c1 = kc(K_EXP_HI), c2 = kc(K_MAGIC), c3 = kc(K_LOG2E);
        const c4 = kc(K_LN2_HI), c5 = kc(K_LN2_LO), p0 = kc(K_EXP_P0), p1 = kc(K_EXP_P0 + 16);
        const p2 = kc(K_EXP_P0 + 32), p3 = kc(K_EXP_P0 + 48), p4 = kc(K_EXP_P0 + 64);
        const p5 = kc(K_EXP_P0 + 80), one = kc(K_ONE);
        for (; i + 4 <= hw; i += 4) {
          const off = y + o + (<usize>i << 2);
          const z = v128.load(off);
          const e = expWith(f32x4.neg(z), c0, c1, c2, c3, c4, c5, p0, p1, p2, p3, p4, p5, one);
          v128.store(off, f32x4.div(z, f32x4.add(one, e)));
        }
        if (i < hw) {
          const off = o + (<usize>i << 2);
          storePartial(y + off, vsilu(madd(f32x4.sub(f32x4.sub(v128.load(x + off), vm), vl), vs, vt)), hw - i);
        }
        continue;
      }
      for (; i + 4 <= hw; i += 4) {
        const off = o + (<usize>i << 2);
        v128.store(y + off, madd(f32x4.sub(f32x4.sub(v128.load(x + off), vm), vl), vs, vt));
      }
      if (i < hw) {
        const off = o + (<usize>i << 2);
        storePartial(y + off, madd(f32x4.sub(f32x4.sub(v128.load(x + off), vm), vl), vs, vt), hw - i);
      }
    }
  }
}

/**
 * Group norm backward for (batch, group) rows [begin, end): dx, and per (batch, channel) partial
 * sums dgPart = sum dz * xhat and dbPart = sum dz (the host sums them over the batch), where dz is
 * dy, or with `silu` non-zero dy * silu'(gamma * xhat + beta). The fused pass stores dz in dx (the
 * row is still in cache when the second pass reads it back), so the SiLU is evaluated once. With
 * `shift` non-zero (the forward's, n*c values), xhat is that of x + shift, and dshift[ni, ch] gets
 * the sum of dx over the channel's plane, accumulated as dx is written (each row is one task, so
 * the sums do not depend on how rows are split between threads).
 */
export function groupNormBackward(
  dy: usize,
  x: usize,
  gamma: usize,
  beta: usize,
  shift: usize,
  mean: usize,
  rstd: usize,
  dx: usize,
  dgPart: usize,
  dbPart: usize,
  dshift: usize,
  c: i32,
  hw: i32,
  groups: i32,
  silu: i32,
  begin: i32,
  end: i32,
): void {
  // The gradient at the affine's output, as the second pass reads it.
  const dz = silu ? dx : dy;
  const cpg = c / groups;
  const size = cpg * hw;
  for (let row = begin; row < end; row++) {
    const ni = row / groups;
    const gi = row - ni * groups;
    const mu = load<f32>(mean + (<usize>row << 2));
    const r = load<f32>(rstd + (<usize>row << 2));
    const vr = f32x4.splat(r);
    const base = <usize>((ni * c + gi * cpg) * hw) << 2;
    const sp = shift + (<usize>(ni * c) << 2);
    let sd: f64 = 0;
    let sdx: f64 = 0;
    for (let cc = 0; cc < cpg; cc++) {
      const ch = gi * cpg + cc;
      const o = base + (<usize>(cc * hw) << 2);
      // xhat = (x + shift - mu) * r = (x - mc) * r.
      const mc = shift ? f32(f64(mu) - f64(load<f32>(sp + (<usize>ch << 2)))) : mu;
      const vmu = f32x4.splat(mc);
      let vdb = f32x4.splat(0);
      let vdg = f32x4.splat(0);
      let i = 0;
      if (silu) {
        const vg = f32x4.splat(load<f32>(gamma + (<usize>ch << 2)));
        const vb = f32x4.splat(load<f32>(beta + (<usize>ch << 2)));
        const c0 = kc(K_EXP_LO), c1 = kc(K_EXP_HI), c2 = kc(K_MAGIC), c3 = kc(K_LOG2E);
        const c4 = kc(K_LN2_HI), c5 = kc(K_LN2_LO), p0 = kc(K_EXP_P0), p1 = kc(K_EXP_P0 + 16);
        const p2 = kc(K_EXP_P0 + 32), p3 = kc(K_EXP_P0 + 48), p4 = kc(K_EXP_P0 + 64);
        const p5 = kc(K_EXP_P0 + 80), one = kc(K_ONE);
        for (; i + 4 <= hw; i += 4) {
          const off = o + (<usize>i << 2);
          const xh = f32x4.mul(f32x4.sub(v128.load(x + off), vmu), vr);
          // silu'(z) as vsiluGrad computes it, with the constants in locals.
          const z = f32x4.add(f32x4.mul(xh, vg), vb);
          const e = expWith(f32x4.neg(z), c0, c1, c2, c3, c4, c5, p0, p1, p2, p3, p4, p5, one);
          const sg = f32x4.div(one, f32x4.add(one, e));
          const d = f32x4.mul(v128.load(dy + off), f32x4.mul(sg, f32x4.add(one, f32x4.mul(z, f32x4.sub(one, sg)))));
          v128.store(dx + off, d);
          vdb = f32x4.add(vdb, d);
          vdg = f32x4.add(vdg, f32x4.mul(d, xh));
        }
        if (i < hw) {
          // The tail: lanes past the row hold whatever follows it; keep them out of the sums.
          const off = o + (<usize>i << 2);
          const keep = i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(hw - i));
          const xh = v128.and(f32x4.mul(f32x4.sub(v128.load(x + off), vmu), vr), keep);
          let d = f32x4.mul(v128.load(dy + off), vsiluGrad(f32x4.add(f32x4.mul(xh, vg), vb)));
          d = v128.and(d, keep);
          storePartial(dx + off, d, hw - i);
          vdb = f32x4.add(vdb, d);
          vdg = f32x4.add(vdg, f32x4.mul(d, xh));
          i = hw;
        }
      } else {
        for (; i + 4 <= hw; i += 4) {
          const off = o + (<usize>i << 2);
          const d = v128.load(dy + off);
          const xh = f32x4.mul(f32x4.sub(v128.load(x + off), vmu), vr);
          vdb = f32x4.add(vdb, d);
          vdg = f32x4.add(vdg, f32x4.mul(d, xh));
        }
      }
      let db = hsum(vdb);
      let dg = hsum(vdg);
      for (; i < hw; i++) {
        const off = o + (<usize>i << 2);
        const d = load<f32>(dy + off);
        db += d;
        dg += d * (load<f32>(x + off) - mc) * r;
      }
      const pc = <usize>(ni * c + ch) << 2;
      store<f32>(dgPart + pc, dg);
      store<f32>(dbPart + pc, db);
      const g = f64(load<f32>(gamma + (<usize>ch << 2)));
      sd += f64(db) * g;
      sdx += f64(dg) * g;
    }
    const md = f32x4.splat(f32(sd / f64(size)));
    const mdx = f32x4.splat(f32(sdx / f64(size)));
    for (let cc = 0; cc < cpg; cc++) {
      const ch = gi * cpg + cc;
      const vg = f32x4.splat(load<f32>(gamma + (<usize>ch << 2)));
      const o = base + (<usize>(cc * hw) << 2);
      const mc = shift ? f32(f64(mu) - f64(load<f32>(sp + (<usize>ch << 2)))) : mu;
      const vmu = f32x4.splat(mc);
      let i = 0;
      if (shift) {
        let acc = f32x4.splat(0);
        for (; i + 4 <= hw; i += 4) {
          const off = o + (<usize>i << 2);
          const xh = f32x4.mul(f32x4.sub(v128.load(x + off), vmu), vr);
          const dg = f32x4.sub(f32x4.mul(v128.load(dz + off), vg), md);
          const v = f32x4.mul(vr, f32x4.sub(dg, f32x4.mul(xh, mdx)));
          v128.store(dx + off, v);
          acc = f32x4.add(acc, v);
        }
        if (i < hw) {
          const off = o + (<usize>i << 2);
          const keep = i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(hw - i));
          const xh = f32x4.mul(f32x4.sub(v128.load(x + off), vmu), vr);
          const dg = f32x4.sub(f32x4.mul(v128.load(dz + off), vg), md);
          const v = f32x4.mul(vr, f32x4.sub(dg, f32x4.mul(xh, mdx)));
          storePartial(dx + off, v, hw - i);
          acc = f32x4.add(acc, v128.and(v, keep));
        }
        store<f32>(dshift + (<usize>(ni * c + ch) << 2), hsum(acc));
        continue;
      }
      for (; i + 4 <= hw; i += 4) {
        const off = o + (<usize>i << 2);
        const xh = f32x4.mul(f32x4.sub(v128.load(x + off), vmu), vr);
        const t = f32x4.sub(f32x4.sub(f32x4.mul(v128.load(dz + off), vg), md), f32x4.mul(xh, mdx));
        v128.store(dx + off, f32x4.mul(vr, t));
      }
      if (i < hw) {
        const off = o + (<usize>i << 2);
        const xh = f32x4.mul(f32x4.sub(v128.load(x + off), vmu), vr);
        const t = f32x4.sub(f32x4.sub(f32x4.mul(v128.load(dz + off), vg), md), f32x4.mul(xh, mdx));
        storePartial(dx + off, f32x4.mul(vr, t), hw - i);
      }
    }
  }
}

/** Softmax of rows [begin, end) of a rows x cols matrix. */
export function softmax(x: usize, y: usize, cols: i32, begin: i32, end: i32): void {
  // vexp's constants in locals (the same bits; vexp loads them for every vector).
  const c0 = kc(K_EXP_LO), c1 = kc(K_EXP_HI), c2 = kc(K_MAGIC), c3 = kc(K_LOG2E);
  const c4 = kc(K_LN2_HI), c5 = kc(K_LN2_LO), p0 = kc(K_EXP_P0), p1 = kc(K_EXP_P0 + 16);
  const p2 = kc(K_EXP_P0 + 32), p3 = kc(K_EXP_P0 + 48), p4 = kc(K_EXP_P0 + 64);
  const p5 = kc(K_EXP_P0 + 80), one = kc(K_ONE);
  for (let r = begin; r < end; r++) {
    const xr = x + (<usize>r * <usize>cols << 2);
    const yr = y + (<usize>r * <usize>cols << 2);
    let mx: f32 = -Infinity;
    let vm = f32x4.splat(-Infinity);
    let i = 0;
    for (; i + 4 <= cols; i += 4) vm = f32x4.max(vm, v128.load(xr + (<usize>i << 2)));
    mx = max(
      max(f32x4.extract_lane(vm, 0), f32x4.extract_lane(vm, 1)),
      max(f32x4.extract_lane(vm, 2), f32x4.extract_lane(vm, 3)),
    );
    for (; i < cols; i++) mx = max(mx, load<f32>(xr + (<usize>i << 2)));
    const vmx = f32x4.splat(mx);
    let vs = f32x4.splat(0);
    let s: f32 = 0;
    i = 0;
    for (; i + 4 <= cols; i += 4) {
      const z = f32x4.sub(v128.load(xr + (<usize>i << 2)), vmx);
      const e = expWith(z, c0, c1, c2, c3, c4, c5, p0, p1, p2, p3, p4, p5, one);
      v128.store(yr + (<usize>i << 2), e);
      vs = f32x4.add(vs, e);
    }
    if (i < cols) {
      const e = vexp(f32x4.sub(v128.load(xr + (<usize>i << 2)), vmx));
      storePartial(yr + (<usize>i << 2), e, cols - i);
      for (let l = 0; l < cols - i; l++) s += load<f32>(yr + (<usize>(i + l) << 2));
    }
    s += hsum(vs);
    const inv = f32x4.splat(1.0 / s);
    i = 0;
    for (; i + 4 <= cols; i += 4) {
      const p = yr + (<usize>i << 2);
      v128.store(p, f32x4.mul(v128.load(p), inv));
    }
    for (; i < cols; i++) {
      const p = yr + (<usize>i << 2);
      store<f32>(p, load<f32>(p) / s);
    }
  }
}

/** dx = y * (dy - sum(y * dy)) for rows [begin, end). */
export function softmaxBackward(
  y: usize,
  dy: usize,
  dx: usize,
  cols: i32,
  begin: i32,
  end: i32,
): void {
  for (let r = begin; r < end; r++) {
    const off = <usize>r * <usize>cols << 2;
    let vs = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= cols; i += 4) {
      const o = off + (<usize>i << 2);
      vs = f32x4.add(vs, f32x4.mul(v128.load(y + o), v128.load(dy + o)));
    }
    let s = hsum(vs);
    for (; i < cols; i++) {
      const o = off + (<usize>i << 2);
      s += load<f32>(y + o) * load<f32>(dy + o);
    }
    const v = f32x4.splat(s);
    i = 0;
    for (; i + 4 <= cols; i += 4) {
      const o = off + (<usize>i << 2);
      v128.store(dx + o, f32x4.mul(v128.load(y + o), f32x4.sub(v128.load(dy + o), v)));
    }
    for (; i < cols; i++) {
      const o = off + (<usize>i << 2);
      store<f32>(dx + o, load<f32>(y + o) * (load<f32>(dy + o) - s));
    }
  }
}
