// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the explicit lowering of convolutions to the GEMM engine, for the cases the
// implicit-GEMM packer (packBIm2colBatched in gemm_pack.ts) does not cover: im2col writes an
// image's im2col matrix (rows (c, ky, kx), columns (oy, ox)), col2im adds such a matrix back into
// an image (the input gradient), and flipFilter turns a filter into that of a stride-1
// convolution's input gradient. `geo` is the convolution's geometry, as described in gemm.ts.

/**
 * The filter for the input gradient of a stride-1 convolution as a forward convolution:
 * out[c][o][kk - 1 - t] = w[o][c][t] (channels swapped, window reversed), for output channels
 * c in [begin, end).
 */
export function flipFilter(
  w: usize,
  out: usize,
  o: i32,
  c: i32,
  kk: i32,
  begin: i32,
  end: i32,
): void {
  for (let ci = begin; ci < end; ci++) {
    for (let oi = 0; oi < o; oi++) {
      const src = w + (<usize>((oi * c + ci) * kk) << 2);
      const dst = out + (<usize>((ci * o + oi) * kk) << 2);
      for (let t = 0; t < kk; t++) {
        store<f32>(dst + (<usize>(kk - 1 - t) << 2), load<f32>(src + (<usize>t << 2)));
      }
    }
  }
}

/** Writes rows [begin, end) (row = (c, ky, kx), oh*ow long) of the im2col matrix of image x. */
export function im2col(x: usize, geo: usize, col: usize, begin: i32, end: i32): void {
  const H = load<i32>(geo, 4);
  const W = load<i32>(geo, 8);
  const KH = load<i32>(geo, 12);
  const KW = load<i32>(geo, 16);
  const S = load<i32>(geo, 20);
  const P = load<i32>(geo, 24);
  const OH = load<i32>(geo, 28);
  const OW = load<i32>(geo, 32);
  const KK = KH * KW;
  for (let row = begin; row < end; row++) {
    const ci = row / KK;
    const rem = row - ci * KK;
    const ky = rem / KW;
    const kx = rem - ky * KW;
    const plane = x + (<usize>(ci * H * W) << 2);
    let d = col + (<usize>row * <usize>(OH * OW) << 2);
    // Output columns whose input column is inside the image: ox in [lo, hi).
    const lo = min(OW, max(0, (P - kx + S - 1) / S));
    const last = W - 1 + P - kx;
    const hi = last < 0 ? lo : max(lo, min(OW, last / S + 1));
    for (let oy = 0; oy < OH; oy++) {
      const iy = oy * S - P + ky;
      if (iy < 0 || iy >= H) {
        memory.fill(d, 0, <usize>OW << 2);
      } else {
        if (lo > 0) memory.fill(d, 0, <usize>lo << 2);
        const src = plane + (<usize>(iy * W) << 2);
        if (S == 1) {
          const from = src + (<usize>(lo - P + kx) << 2);
          memory.copy(d + (<usize>lo << 2), from, <usize>(hi - lo) << 2);
        } else {
          let ox = lo;
          if (S == 2) {
            // Four outputs from eight consecutive inputs (the even ones), while the eighth is
            // inside the row.
            for (; ox + 4 <= hi && 2 * ox - P + kx + 8 <= W; ox += 4) {
              const s0 = src + (<usize>(2 * ox - P + kx) << 2);
              const v = v128.shuffle<f32>(v128.load(s0), v128.load(s0, 16), 0, 2, 4, 6);
              v128.store(d + (<usize>ox << 2), v);
            }
          }
          for (; ox < hi; ox++) {
            store<f32>(d + (<usize>ox << 2), load<f32>(src + (<usize>(ox * S - P + kx) << 2)));
          }
        }
        if (hi < OW) memory.fill(d + (<usize>hi << 2), 0, <usize>(OW - hi) << 2);
      }
      d += <usize>OW << 2;
    }
  }
}

/** Adds the im2col-shaped `col` back into image dx for input channels [begin, end). */
export function col2im(col: usize, geo: usize, dx: usize, begin: i32, end: i32): void {
  const H = load<i32>(geo, 4);
  const W = load<i32>(geo, 8);
  const KH = load<i32>(geo, 12);
  const KW = load<i32>(geo, 16);
  const S = load<i32>(geo, 20);
  const P = load<i32>(geo, 24);
  const OH = load<i32>(geo, 28);
  const OW = load<i32>(geo, 32);
  for (let ci = begin; ci < end; ci++) {
    const plane = dx + (<usize>(ci * H * W) << 2);
    for (let ky = 0; ky < KH; ky++) {
      for (let kx = 0; kx < KW; kx++) {
        const row = (ci * KH + ky) * KW + kx;
        let s = col + (<usize>row * <usize>(OH * OW) << 2);
        const lo = min(OW, max(0, (P - kx + S - 1) / S));
        const last = W - 1 + P - kx;
        const hi = last < 0 ? lo : max(lo, min(OW, last / S + 1));
        for (let oy = 0; oy < OH; oy++) {
          const iy = oy * S - P + ky;
          if (iy >= 0 && iy < H) {
            const d = plane + (<usize>(iy * W) << 2);
            let ox = lo;
            if (S == 2) {
              // Four outputs into eight consecutive inputs (the even ones; the odd ones get + 0),
              // while the eighth is inside the row (measured: the stride-2 input gradient at
              // 32->32 @28, batch 128, 1 thread, 18.8 -> 20.1 GFLOP/s median; 64->64 @14 14.3 ->
              // 15.7).
              const zero = f32x4.splat(0);
              for (; ox + 4 <= hi && 2 * ox - P + kx + 8 <= W; ox += 4) {
                const o = d + (<usize>(2 * ox - P + kx) << 2);
                const v = v128.load(s + (<usize>ox << 2));
                v128.store(o, f32x4.add(v128.load(o), v128.shuffle<f32>(v, zero, 0, 4, 1, 4)));
                const w = v128.shuffle<f32>(v, zero, 2, 4, 3, 4);
                v128.store(o, f32x4.add(v128.load(o, 16), w), 16);
              }
            }
            for (; ox < hi; ox++) {
              const o = d + (<usize>(ox * S - P + kx) << 2);
              store<f32>(o, load<f32>(o) + load<f32>(s + (<usize>ox << 2)));
            }
          }
          s += <usize>OW << 2;
        }
      }
    }
  }
}
