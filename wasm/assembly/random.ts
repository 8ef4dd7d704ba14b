// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: Philox-4x32-10 random fills, reproducing src/random.ts: element i of a fill comes
// from block counter + floor(i / 4), lane i % 4, with counter words (block low, block high, stream,
// 0) and key (seed low, seed high). Uniforms are bit-exact; normals use the same Box-Muller in
// double precision; integers use the same rounding as `uniformToInt`.

const M0: u64 = 0xd2511f53;
const M1: u64 = 0xcd9e8d57;
const W0: u32 = 0x9e3779b9;
const W1: u32 = 0xbb67ae85;
const TWO_PI: f64 = 2 * Math.PI;
const INV24: f64 = 5.9604644775390625e-8;

/** The four 32-bit outputs of one Philox-4x32-10 block, as the lanes of an i32x4. */
function philox(block: u64, stream: u32, k0: u32, k1: u32): v128 {
  let c0 = <u32>block;
  let c1 = <u32>(block >> 32);
  let c2 = stream;
  let c3: u32 = 0;
  for (let r = 0; r < 10; r++) {
    const p0 = M0 * <u64>c0;
    const p1 = M1 * <u64>c2;
    const n0 = <u32>(p1 >> 32) ^ c1 ^ k0;
    const n2 = <u32>(p0 >> 32) ^ c3 ^ k1;
    c1 = <u32>p1;
    c3 = <u32>p0;
    c0 = n0;
    c2 = n2;
    k0 += W0;
    k1 += W1;
  }
  let v = i32x4.splat(<i32>c0);
  v = i32x4.replace_lane(v, 1, <i32>c1);
  v = i32x4.replace_lane(v, 2, <i32>c2);
  v = i32x4.replace_lane(v, 3, <i32>c3);
  return v;
}

/** Uniforms in [0, 1) from the top 24 bits of each lane. */
function toUniform(bits: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.shr_u(bits, 8)), f32x4.splat(<f32>INV24));
}

/** Uniform fill of elements [begin, end) (begin a multiple of 4) of `out`. */
export function randomUniform(
  out: usize,
  n: i32,
  counter: f64,
  stream: u32,
  k0: u32,
  k1: u32,
  begin: i32,
  end: i32,
): void {
  const base = <u64>counter;
  for (let i = begin; i < end; i += 4) {
    const u = toUniform(philox(base + <u64>(i >> 2), stream, k0, k1));
    const o = out + (<usize>i << 2);
    if (i + 4 <= n) {
      v128.store(o, u);
    } else {
      store<f32>(o, f32x4.extract_lane(u, 0));
      if (i + 1 < n) store<f32>(o, f32x4.extract_lane(u, 1), 4);
      if (i + 2 < n) store<f32>(o, f32x4.extract_lane(u, 2), 8);
    }
  }
}

/** Integers lo + min(hi - lo - 1, floor(fround(u * (hi - lo)))) for elements [begin, end). */
export function randomInt(
  out: usize,
  n: i32,
  counter: f64,
  stream: u32,
  k0: u32,
  k1: u32,
  lo: f64,
  hi: f64,
  begin: i32,
  end: i32,
): void {
  const base = <u64>counter;
  const span = hi - lo;
  for (let i = begin; i < end; i += 4) {
    const u = toUniform(philox(base + <u64>(i >> 2), stream, k0, k1));
    for (let l = 0; l < 4 && i + l < n; l++) {
      let x: f32 = 0;
      if (l == 0) x = f32x4.extract_lane(u, 0);
      else if (l == 1) x = f32x4.extract_lane(u, 1);
      else if (l == 2) x = f32x4.extract_lane(u, 2);
      else x = f32x4.extract_lane(u, 3);
      const k = Math.min(span - 1, Math.floor(f64(f32(f64(x) * span))));
      store<f32>(out + (<usize>(i + l) << 2), f32(lo + k));
    }
  }
}

/** Standard normals by Box-Muller on lane pairs (0, 1) and (2, 3), for elements [begin, end). */
export function randomNormal(
  out: usize,
  n: i32,
  counter: f64,
  stream: u32,
  k0: u32,
  k1: u32,
  begin: i32,
  end: i32,
): void {
  const base = <u64>counter;
  for (let i = begin; i < end; i += 4) {
    const bits = philox(base + <u64>(i >> 2), stream, k0, k1);
    for (let p = 0; p < 4; p += 2) {
      let b0: u32 = 0;
      let b1: u32 = 0;
      if (p == 0) {
        b0 = <u32>i32x4.extract_lane(bits, 0);
        b1 = <u32>i32x4.extract_lane(bits, 1);
      } else {
        b0 = <u32>i32x4.extract_lane(bits, 2);
        b1 = <u32>i32x4.extract_lane(bits, 3);
      }
      const u1 = f64((b0 >>> 8) + 1) * INV24;
      const u2 = f64(b1 >>> 8) * INV24;
      const r = Math.sqrt(-2 * Math.log(u1));
      const o = out + (<usize>(i + p) << 2);
      if (i + p < n) store<f32>(o, f32(r * Math.cos(TWO_PI * u2)));
      if (i + p + 1 < n) store<f32>(o, f32(r * Math.sin(TWO_PI * u2)), 4);
    }
  }
}
