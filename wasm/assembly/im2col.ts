// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the explicit lowering of convolutions to the GEMM engine, for the cases the
// implicit-GEMM packer (packBIm2colBatched in gemm_pack.ts) does not cover: im2col writes an
// image's im2col matrix (rows (c, ky, kx), columns (oy, ox)), col2im adds such a matrix back into
// an image (the input gradient), and flipFilter turns a filter into that of a stride-1
// convolution's input gradient. `geo` is the convolution's geometry, as described in gemm.ts.
// im2col serves the filter gradient of convolutions that are neither pointwise nor stride 2 (whose
// products pack the image itself: gemm_pack_strided.ts). For 3x3 stride-2 pad-1 convolutions (the
// UNet's downsampling) col2im takes a window row's three taps at once (addThreeTaps), reading and
// writing each dx row once a window row instead of once a tap.

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
  const rowBytes = <usize>(OH * OW) << 2;
  for (let row = begin; row < end; row++) {
    const ci = row / KK;
    const rem = row - ci * KK;
    const ky = rem / KW;
    const kx = rem - ky * KW;
    const plane = x + (<usize>(ci * H * W) << 2);
    let d = col + <usize>row * rowBytes;
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
          for (let ox = lo; ox < hi; ox++) {
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
      if (S == 2 && KW == 3 && P == 1) {
        // The three taps of a window row at once: each dx row is read and written once a ky.
        const rowBytes = <usize>(OH * OW) << 2;
        let s = col + <usize>((ci * KH + ky) * 3) * rowBytes;
        for (let oy = 0; oy < OH; oy++) {
          const iy = 2 * oy - 1 + ky;
          if (iy >= 0 && iy < H) addThreeTaps(s, rowBytes, plane + (<usize>(iy * W) << 2), OW, W);
          s += <usize>OW << 2;
        }
        continue;
      }
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

/**
 * Adds one window row's three taps of a stride-2, pad-1, 3-wide col2im into dx row d (w floats):
 * tap kx's row (at s + kx rowBytes, ow floats) goes to columns 2 ox - 1 + kx. Each element gets
 * its taps in col2im's order (kx = 0 before kx = 2 on the odd columns), so the sums are the same
 * bits as three passes; even columns get + 0 in the second step, which leaves a value that is
 * never -0 (dx starts at +0) unchanged.
 */
@inline
function addThreeTaps(s: usize, rowBytes: usize, d: usize, ow: i32, w: i32): void {
  const s1 = s + rowBytes;
  const s2 = s1 + rowBytes;
  const zero = f32x4.splat(0);
  // Eight dx columns 2m..2m + 7: even ones s1[m..m + 3], odd ones s0[m + 1..m + 4] then
  // s2[m..m + 3] (inside the row: ow = (w - 1) / 2 + 1, so m + 5 <= ow gives 2m + 9 <= w).
  let m = 0;
  for (; m + 5 <= ow; m += 4) {
    const o = d + (<usize>(2 * m) << 2);
    const off = <usize>m << 2;
    const a = v128.load(s1 + off);
    const b = v128.load(s + off, 4);
    const c = v128.load(s2 + off);
    const lo = f32x4.add(v128.load(o), v128.shuffle<f32>(a, b, 0, 4, 1, 5));
    const hi = f32x4.add(v128.load(o, 16), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
    v128.store(o, f32x4.add(lo, v128.shuffle<f32>(zero, c, 0, 4, 1, 5)));
    v128.store(o, f32x4.add(hi, v128.shuffle<f32>(zero, c, 2, 6, 3, 7)), 16);
  }
  for (let ix = 2 * m; ix < w; ix++) {
    const o = d + (<usize>ix << 2);
    let v = load<f32>(o);
    if ((ix & 1) == 0) {
      const ox = ix >> 1;
      if (ox < ow) v += load<f32>(s1 + (<usize>ox << 2));
    } else {
      const ox0 = (ix + 1) >> 1;
      if (ox0 < ow) v += load<f32>(s + (<usize>ox0 << 2));
      const ox2 = (ix - 1) >> 1;
      if (ox2 < ow) v += load<f32>(s2 + (<usize>ox2 << 2));
    }
    store<f32>(o, v);
  }
}
