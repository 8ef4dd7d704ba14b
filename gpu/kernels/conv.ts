/**
 * 2-D convolution (NCHW input, OIHW filter) and its two gradients as implicit GEMM on the tiled
 * kernel of gemm.ts; the batch is folded into the GEMM's columns (forward, data gradient) or its
 * depth (filter gradient, which also splits K across workgroups and sums the splits after).
 *
 * - forward:  Y[o, (n,oy,ox)]     = sum over (c,ky,kx) of W[o, (c,ky,kx)] X[(c,ky,kx), (n,oy,ox)]
 * - data:     dX[c, (n,iy,ix)]    = sum over (o,ky,kx) of W[o,c,ky,kx] dY[o, n, (iy+pad-ky)/s, ...]
 * - filter:   dW[o, (c,ky,kx)]    = sum over (n,oy,ox) of dY[n,o,oy,ox] X[n,c,oy s-pad+ky, ...]
 *
 * @module
 */

import type { KernelSpec, ParamType } from "../wgsl.ts";
import { gemmKernel, type GemmTile } from "./gemm.ts";

/** The convolution geometry as kernel parameters. */
export const CONV_PARAMS: readonly (readonly [string, ParamType])[] = [
  ["cC", "u32"],
  ["cH", "u32"],
  ["cW", "u32"],
  ["cO", "u32"],
  ["kH", "u32"],
  ["kW", "u32"],
  ["oH", "u32"],
  ["oW", "u32"],
  ["stride", "u32"],
  ["pad", "i32"],
];

const cache = new Map<string, KernelSpec>();

function cached(key: string, make: () => KernelSpec): KernelSpec {
  let k = cache.get(key);
  if (!k) {
    k = make();
    cache.set(key, k);
  }
  return k;
}

/**
 * Forward convolution: grid (ceil(n OH OW / bn), ceil(O / bm), 1). The bias is added when
 * `p.hasBias` is set (bind any read-only storage in its place otherwise).
 */
export function convForwardKernel(tile: GemmTile): KernelSpec {
  return cached(`fwd_${tile.bm}`, () =>
    gemmKernel({
      key: "conv_fwd",
      tile,
      bindings: [
        { name: "x", write: false },
        { name: "w", write: false },
        { name: "bias", write: false },
        { name: "y", write: true },
      ],
      params: [...CONV_PARAMS, ["hasBias", "u32"]],
      zMode: "batch",
      loadA: `fn loadA(z: u32, r: u32, k: u32) -> f32 { return w[p.w_o + r * p.K + k]; }`,
      loadB: `fn loadB(z: u32, k: u32, c: u32) -> f32 {
  let khw = p.kH * p.kW;
  let ci = k / khw;
  let kr = k - ci * khw;
  let ky = kr / p.kW;
  let kx = kr - ky * p.kW;
  let ohw = p.oH * p.oW;
  let img = c / ohw;
  let pix = c - img * ohw;
  let oy = pix / p.oW;
  let ox = pix - oy * p.oW;
  let iy = i32(oy * p.stride + ky) - p.pad;
  let ix = i32(ox * p.stride + kx) - p.pad;
  if (iy < 0 || ix < 0 || iy >= i32(p.cH) || ix >= i32(p.cW)) { return 0.0; }
  return x[p.x_o + ((img * p.cC + ci) * p.cH + u32(iy)) * p.cW + u32(ix)];
}`,
      store: `fn store(z: u32, r: u32, c: u32, v: f32) {
  let ohw = p.oH * p.oW;
  let img = c / ohw;
  let pix = c - img * ohw;
  var b = 0.0;
  if (p.hasBias != 0u) { b = bias[p.bias_o + r]; }
  y[p.y_o + (img * p.M + r) * ohw + pix] = v + b;
}`,
      aFastK: true,
      bFastN: true,
    }));
}

/** Gradient of the input: grid (ceil(n H W / bn), ceil(C / bm), 1). */
export function convDataKernel(tile: GemmTile): KernelSpec {
  return cached(`data_${tile.bm}`, () =>
    gemmKernel({
      key: "conv_data",
      tile,
      bindings: [{ name: "dy", write: false }, { name: "w", write: false }, {
        name: "dx",
        write: true,
      }],
      params: CONV_PARAMS,
      zMode: "batch",
      loadA: `fn loadA(z: u32, r: u32, k: u32) -> f32 {
  let khw = p.kH * p.kW;
  let o = k / khw;
  let kr = k - o * khw;
  return w[p.w_o + (o * p.cC + r) * khw + kr];
}`,
      loadB: `fn loadB(z: u32, k: u32, c: u32) -> f32 {
  let khw = p.kH * p.kW;
  let o = k / khw;
  let kr = k - o * khw;
  let ky = kr / p.kW;
  let kx = kr - ky * p.kW;
  let hw = p.cH * p.cW;
  let img = c / hw;
  let pix = c - img * hw;
  let iy = pix / p.cW;
  let ix = pix - iy * p.cW;
  let ty = i32(iy) + p.pad - i32(ky);
  let tx = i32(ix) + p.pad - i32(kx);
  if (ty < 0 || tx < 0) { return 0.0; }
  let uy = u32(ty);
  let ux = u32(tx);
  if (uy % p.stride != 0u || ux % p.stride != 0u) { return 0.0; }
  let oy = uy / p.stride;
  let ox = ux / p.stride;
  if (oy >= p.oH || ox >= p.oW) { return 0.0; }
  return dy[p.dy_o + ((img * p.cO + o) * p.oH + oy) * p.oW + ox];
}`,
      store: `fn store(z: u32, r: u32, c: u32, v: f32) {
  let hw = p.cH * p.cW;
  let img = c / hw;
  let pix = c - img * hw;
  dx[p.dx_o + (img * p.cC + r) * hw + pix] = v;
}`,
      aFastK: true,
      bFastN: true,
    }));
}

/**
 * Gradient of the filter, split over K: grid (ceil(C KH KW / bn), ceil(O / bm), splits); split z
 * writes its O x (C KH KW) partial at `out[z M N ...]`.
 */
export function convFilterKernel(tile: GemmTile): KernelSpec {
  return cached(`filter_${tile.bm}`, () =>
    gemmKernel({
      key: "conv_filter",
      tile,
      bindings: [{ name: "dy", write: false }, { name: "x", write: false }, {
        name: "out",
        write: true,
      }],
      params: CONV_PARAMS,
      zMode: "split",
      loadA: `fn loadA(z: u32, r: u32, k: u32) -> f32 {
  let ohw = p.oH * p.oW;
  let img = k / ohw;
  let pix = k - img * ohw;
  return dy[p.dy_o + (img * p.cO + r) * ohw + pix];
}`,
      loadB: `fn loadB(z: u32, k: u32, c: u32) -> f32 {
  let ohw = p.oH * p.oW;
  let img = k / ohw;
  let pix = k - img * ohw;
  let oy = pix / p.oW;
  let ox = pix - oy * p.oW;
  let khw = p.kH * p.kW;
  let ci = c / khw;
  let kr = c - ci * khw;
  let ky = kr / p.kW;
  let kx = kr - ky * p.kW;
  let iy = i32(oy * p.stride + ky) - p.pad;
  let ix = i32(ox * p.stride + kx) - p.pad;
  if (iy < 0 || ix < 0 || iy >= i32(p.cH) || ix >= i32(p.cW)) { return 0.0; }
  return x[p.x_o + ((img * p.cC + ci) * p.cH + u32(iy)) * p.cW + u32(ix)];
}`,
      store: `fn store(z: u32, r: u32, c: u32, v: f32) {
  out[p.out_o + (z * p.M + r) * p.N + c] = v;
}`,
      aFastK: true,
      bFastN: false,
    }));
}
