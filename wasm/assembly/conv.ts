// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: direct convolution, for the shapes the GEMM engine handles badly. directConv: a
// stride-1 convolution with SIMD over four output pixels of a row, for few output channels (the
// GEMM's M = cout is then a sliver of a tile) or one input channel (K = kh kw).

import { madd } from "./simd.ts";

/** Output width rounded up to the vector width. */
@inline
function vecWidth(ow: i32): i32 {
  return (ow + 3) & ~3;
}

/** Bytes of scratch one thread needs for directConv. */
export function directConvScratchBytes(
  cout: i32,
  h: i32,
  w: i32,
  kh: i32,
  kw: i32,
  pad: i32,
): i32 {
  const oh = h + 2 * pad - kh + 1;
  const owv = vecWidth(w + 2 * pad - kw + 1);
  const wp = owv + kw - 1;
  return ((h + 2 * pad) * wp + cout * oh * owv) << 2;
}

/**
 * y[ni] (n x cout x oh x ow, oh = h + 2 pad - kh + 1) = the stride-1 convolution of x[ni]
 * (cin x h x w) with w (cout x cin x kh x kw), plus bias (0 for none), for images [begin, end).
 * Each output is bias + the sum over input channels, in order, of its window's taps in order, so
 * the bits do not depend on how images are split. `scratch`: directConvScratchBytes bytes.
 */
export function directConv(
  x: usize,
  wt: usize,
  bias: usize,
  y: usize,
  cin: i32,
  cout: i32,
  h: i32,
  w: i32,
  kh: i32,
  kw: i32,
  pad: i32,
  begin: i32,
  end: i32,
  scratch: usize,
): void {
  const oh = h + 2 * pad - kh + 1;
  const ow = w + 2 * pad - kw + 1;
  const owv = vecWidth(ow);
  const wp = owv + kw - 1;
  const hp = h + 2 * pad;
  const xp = scratch;
  const accs = xp + (<usize>(hp * wp) << 2);
  const plane = <usize>(oh * owv) << 2;
  const rowBytes = <usize>wp << 2;
  const kk = kh * kw;
  // The padding (and the columns past the image) stay zero: only the interior is rewritten.
  memory.fill(xp, 0, <usize>(hp * wp) << 2);
  for (let ni = begin; ni < end; ni++) {
    for (let o = 0; o < cout; o++) {
      const b = bias != 0 ? f32x4.splat(load<f32>(bias + (<usize>o << 2))) : f32x4.splat(0);
      const a = accs + <usize>o * plane;
      for (let i = 0; i < oh * owv; i += 4) v128.store(a + (<usize>i << 2), b);
    }
    const xi = x + (<usize>ni * <usize>(cin * h * w) << 2);
    for (let c = 0; c < cin; c++) {
      const src = xi + (<usize>(c * h * w) << 2);
      for (let r = 0; r < h; r++) {
        memory.copy(
          xp + <usize>(r + pad) * rowBytes + (<usize>pad << 2),
          src + (<usize>(r * w) << 2),
          <usize>w << 2,
        );
      }
      for (let o = 0; o < cout; o++) {
        const wo = wt + (<usize>((o * cin + c) * kk) << 2);
        let a = accs + <usize>o * plane;
        if (kh == 3 && kw == 3) {
          const w0 = v128.load32_splat(wo);
          const w1 = v128.load32_splat(wo, 4);
          const w2 = v128.load32_splat(wo, 8);
          const w3 = v128.load32_splat(wo, 12);
          const w4 = v128.load32_splat(wo, 16);
          const w5 = v128.load32_splat(wo, 20);
          const w6 = v128.load32_splat(wo, 24);
          const w7 = v128.load32_splat(wo, 28);
          const w8 = v128.load32_splat(wo, 32);
          for (let oy = 0; oy < oh; oy++) {
            const r0 = xp + <usize>oy * rowBytes;
            const r1 = r0 + rowBytes;
            const r2 = r1 + rowBytes;
            for (let ox = 0; ox < owv; ox += 4) {
              const off = <usize>ox << 2;
              let s = v128.load(a);
              s = madd(w0, v128.load(r0 + off), s);
              s = madd(w1, v128.load(r0 + off, 4), s);
              s = madd(w2, v128.load(r0 + off, 8), s);
              s = madd(w3, v128.load(r1 + off), s);
              s = madd(w4, v128.load(r1 + off, 4), s);
              s = madd(w5, v128.load(r1 + off, 8), s);
              s = madd(w6, v128.load(r2 + off), s);
              s = madd(w7, v128.load(r2 + off, 4), s);
              s = madd(w8, v128.load(r2 + off, 8), s);
              v128.store(a, s);
              a += 16;
            }
          }
        } else {
          for (let oy = 0; oy < oh; oy++) {
            for (let ox = 0; ox < owv; ox += 4) {
              let s = v128.load(a);
              for (let ky = 0; ky < kh; ky++) {
                const r = xp + <usize>(oy + ky) * rowBytes + (<usize>ox << 2);
                const wr = wo + (<usize>(ky * kw) << 2);
                for (let kx = 0; kx < kw; kx++) {
                  s = madd(
                    v128.load32_splat(wr + (<usize>kx << 2)),
                    v128.load(r + (<usize>kx << 2)),
                    s,
                  );
                }
              }
              v128.store(a, s);
              a += 16;
            }
          }
        }
      }
    }
    const yi = y + (<usize>ni * <usize>(cout * oh * ow) << 2);
    for (let o = 0; o < cout; o++) {
      const a = accs + <usize>o * plane;
      const d = yi + (<usize>(o * oh * ow) << 2);
      for (let oy = 0; oy < oh; oy++) {
        memory.copy(d + (<usize>(oy * ow) << 2), a + (<usize>(oy * owv) << 2), <usize>ow << 2);
      }
    }
  }
}
