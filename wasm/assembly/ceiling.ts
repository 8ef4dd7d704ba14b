// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the machine's f32x4 multiply-add ceiling, for scripts/bench.ts. Twelve
// independent accumulators (fewer leave the loop latency-bound); every operand is loaded from
// memory before the loop, since `f32x4.splat(constant)` would become a `v128.const` that V8
// rebuilds at each use.

import { madd } from "./simd.ts";

/** Runs n iterations of 12 independent f32x4 multiply-adds on operands at p (16 vectors). */
export function fmaCeiling(n: i32, p: usize): f32 {
  let a0 = v128.load(p, 32);
  let a1 = v128.load(p, 48);
  let a2 = v128.load(p, 64);
  let a3 = v128.load(p, 80);
  let a4 = v128.load(p, 96);
  let a5 = v128.load(p, 112);
  let a6 = v128.load(p, 128);
  let a7 = v128.load(p, 144);
  let a8 = v128.load(p, 160);
  let a9 = v128.load(p, 176);
  let a10 = v128.load(p, 192);
  let a11 = v128.load(p, 208);
  const b = v128.load(p, 0);
  const c = v128.load(p, 16);
  for (let i = 0; i < n; i++) {
    a0 = madd(a0, b, c);
    a1 = madd(a1, b, c);
    a2 = madd(a2, b, c);
    a3 = madd(a3, b, c);
    a4 = madd(a4, b, c);
    a5 = madd(a5, b, c);
    a6 = madd(a6, b, c);
    a7 = madd(a7, b, c);
    a8 = madd(a8, b, c);
    a9 = madd(a9, b, c);
    a10 = madd(a10, b, c);
    a11 = madd(a11, b, c);
  }
  let s = f32x4.add(a0, a1);
  s = f32x4.add(s, f32x4.add(a2, a3));
  s = f32x4.add(s, f32x4.add(a4, a5));
  s = f32x4.add(s, f32x4.add(a6, a7));
  s = f32x4.add(s, f32x4.add(a8, a9));
  s = f32x4.add(s, f32x4.add(a10, a11));
  return f32x4.extract_lane(s, 0);
}
