/**
 * 2-D convolution (NCHW input, OIHW filter) and its two gradients as implicit GEMM on the tiled
 * kernel of gemm.ts; the batch is folded into the GEMM's columns (forward, data gradient) or its
 * depth (filter gradient). Every kernel may split K across the grid's z (split z writes its
 * partial result at z times the output's size, in the output's layout; the forward adds the bias
 * in split 0), for products whose output alone gives too few workgroups; the splits are summed
 * after.
 *
 * Each kernel comes generic (the geometry read from its parameters) or specialised for one
 * {@link ConvShape} (the geometry as WGSL literals, so the im2col index arithmetic divides by
 * constants, which compilers turn into multiplications; the batch stays a parameter).
 *
 * - forward:  Y[o, (n,oy,ox)]     = sum over (c,ky,kx) of W[o, (c,ky,kx)] X[(c,ky,kx), (n,oy,ox)]
 * - data:     dX[c, (n,iy,ix)]    = sum over (o,ky,kx) of W[o,c,ky,kx] dY[o, n, (iy+pad-ky)/s, ...]
 * - filter:   dW[o, (c,ky,kx)]    = sum over (n,oy,ox) of dY[n,o,oy,ox] X[n,c,oy s-pad+ky, ...]
 *
 * @module
 */

import type { Conv2dGeometry } from "../../src/backend.ts";
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

/** A convolution's geometry without the batch: what a kernel may be specialised for. */
export type ConvShape = Omit<Conv2dGeometry, "n">;

/** The geometry as WGSL expressions: parameter reads, or literals when specialised. */
type GeometryTerms = Record<(typeof CONV_PARAMS)[number][0], string>;

function terms(shape: ConvShape | null): GeometryTerms {
  if (!shape) {
    return Object.fromEntries(CONV_PARAMS.map(([n]) => [n, `p.${n}`])) as GeometryTerms;
  }
  const u = (v: number) => `${v}u`;
  return {
    cC: u(shape.c),
    cH: u(shape.h),
    cW: u(shape.w),
    cO: u(shape.o),
    kH: u(shape.kh),
    kW: u(shape.kw),
    oH: u(shape.oh),
    oW: u(shape.ow),
    stride: u(shape.stride),
    pad: `${shape.pad}i`,
  };
}

function shapeKey(shape: ConvShape | null): string {
  if (!shape) return "any";
  const s = shape;
  return `${s.c}x${s.h}x${s.w}_${s.o}x${s.kh}x${s.kw}_${s.oh}x${s.ow}_s${s.stride}p${s.pad}`;
}

const cache = new Map<string, KernelSpec>();

function cached(
  kind: string,
  tile: GemmTile,
  shape: ConvShape | null,
  make: (q: GeometryTerms) => KernelSpec,
): KernelSpec {
  const key = `${kind}_${tile.bm}x${tile.bn}_${shapeKey(shape)}`;
  let k = cache.get(key);
  if (!k) {
    k = make(terms(shape));
    if (shape) k = { ...k, key: `${k.key}_${shapeKey(shape)}` };
    cache.set(key, k);
  }
  return k;
}

/**
 * Forward convolution: grid (ceil(n OH OW / bn), ceil(O / bm), splits). The bias is added when
 * `p.hasBias` is set (bind any read-only storage in its place otherwise).
 */
export function convForwardKernel(tile: GemmTile, shape: ConvShape | null = null): KernelSpec {
  return cached("fwd", tile, shape, (q) =>
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
      zMode: "split",
      loadA: `fn loadA(z: u32, r: u32, k: u32) -> f32 { return w[p.w_o + r * p.K + k]; }`,
      loadB: `fn loadB(z: u32, k: u32, c: u32) -> f32 {
  let khw = ${q.kH} * ${q.kW};
  let ci = k / khw;
  let kr = k - ci * khw;
  let ky = kr / ${q.kW};
  let kx = kr - ky * ${q.kW};
  let ohw = ${q.oH} * ${q.oW};
  let img = c / ohw;
  let pix = c - img * ohw;
  let oy = pix / ${q.oW};
  let ox = pix - oy * ${q.oW};
  let iy = i32(oy * ${q.stride} + ky) - ${q.pad};
  let ix = i32(ox * ${q.stride} + kx) - ${q.pad};
  if (iy < 0 || ix < 0 || iy >= i32(${q.cH}) || ix >= i32(${q.cW})) { return 0.0; }
  return x[p.x_o + ((img * ${q.cC} + ci) * ${q.cH} + u32(iy)) * ${q.cW} + u32(ix)];
}`,
      store: `fn store(z: u32, r: u32, c: u32, v: f32) {
  let ohw = ${q.oH} * ${q.oW};
  let img = c / ohw;
  let pix = c - img * ohw;
  var b = 0.0;
  if (p.hasBias != 0u && z == 0u) { b = bias[p.bias_o + r]; }
  y[p.y_o + z * p.M * p.N + (img * p.M + r) * ohw + pix] = v + b;
}`,
      aFastK: true,
      bFastN: true,
    }));
}

/** Gradient of the input: grid (ceil(n H W / bn), ceil(C / bm), splits). */
export function convDataKernel(tile: GemmTile, shape: ConvShape | null = null): KernelSpec {
  return cached("data", tile, shape, (q) =>
    gemmKernel({
      key: "conv_data",
      tile,
      bindings: [{ name: "dy", write: false }, { name: "w", write: false }, {
        name: "dx",
        write: true,
      }],
      params: CONV_PARAMS,
      zMode: "split",
      loadA: `fn loadA(z: u32, r: u32, k: u32) -> f32 {
  let khw = ${q.kH} * ${q.kW};
  let o = k / khw;
  let kr = k - o * khw;
  return w[p.w_o + (o * ${q.cC} + r) * khw + kr];
}`,
      loadB: `fn loadB(z: u32, k: u32, c: u32) -> f32 {
  let khw = ${q.kH} * ${q.kW};
  let o = k / khw;
  let kr = k - o * khw;
  let ky = kr / ${q.kW};
  let kx = kr - ky * ${q.kW};
  let hw = ${q.cH} * ${q.cW};
  let img = c / hw;
  let pix = c - img * hw;
  let iy = pix / ${q.cW};
  let ix = pix - iy * ${q.cW};
  let ty = i32(iy) + ${q.pad} - i32(ky);
  let tx = i32(ix) + ${q.pad} - i32(kx);
  if (ty < 0 || tx < 0) { return 0.0; }
  let uy = u32(ty);
  let ux = u32(tx);
  if (uy % ${q.stride} != 0u || ux % ${q.stride} != 0u) { return 0.0; }
  let oy = uy / ${q.stride};
  let ox = ux / ${q.stride};
  if (oy >= ${q.oH} || ox >= ${q.oW}) { return 0.0; }
  return dy[p.dy_o + ((img * ${q.cO} + o) * ${q.oH} + oy) * ${q.oW} + ox];
}`,
      store: `fn store(z: u32, r: u32, c: u32, v: f32) {
  let hw = ${q.cH} * ${q.cW};
  let img = c / hw;
  let pix = c - img * hw;
  dx[p.dx_o + z * p.M * p.N + (img * ${q.cC} + r) * hw + pix] = v;
}`,
      aFastK: true,
      bFastN: true,
    }));
}

/**
 * Gradient of the filter, split over K: grid (ceil(C KH KW / bn), ceil(O / bm), splits); split z
 * writes its O x (C KH KW) partial at `out[z M N ...]`.
 */
export function convFilterKernel(tile: GemmTile, shape: ConvShape | null = null): KernelSpec {
  return cached("filter", tile, shape, (q) =>
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
  let ohw = ${q.oH} * ${q.oW};
  let img = k / ohw;
  let pix = k - img * ohw;
  return dy[p.dy_o + (img * ${q.cO} + r) * ohw + pix];
}`,
      loadB: `fn loadB(z: u32, k: u32, c: u32) -> f32 {
  let ohw = ${q.oH} * ${q.oW};
  let img = k / ohw;
  let pix = k - img * ohw;
  let oy = pix / ${q.oW};
  let ox = pix - oy * ${q.oW};
  let khw = ${q.kH} * ${q.kW};
  let ci = c / khw;
  let kr = c - ci * khw;
  let ky = kr / ${q.kW};
  let kx = kr - ky * ${q.kW};
  let iy = i32(oy * ${q.stride} + ky) - ${q.pad};
  let ix = i32(ox * ${q.stride} + kx) - ${q.pad};
  if (iy < 0 || ix < 0 || iy >= i32(${q.cH}) || ix >= i32(${q.cW})) { return 0.0; }
  return x[p.x_o + ((img * ${q.cC} + ci) * ${q.cH} + u32(iy)) * ${q.cW} + u32(ix)];
}`,
      store: `fn store(z: u32, r: u32, c: u32, v: f32) {
  out[p.out_o + (z * p.M + r) * p.N + c] = v;
}`,
      aFastK: true,
      bFastN: false,
    }));
}
