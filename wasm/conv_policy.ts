/**
 * Which algorithm the wasm backend runs a convolution by, and with what tile and chunk sizes: a
 * pure function of the convolution's geometry, the thread count and the backend's options, so the
 * choice can be tested without running a kernel.
 *
 * The forward pass and the input gradient pick among a direct kernel (few output channels or one
 * input channel), Winograd F(2x2, 3x3) or F(4x4, 3x3) (3x3 stride-1 pad-1 convolutions of enough
 * channels) and implicit GEMMs; the filter gradient between Winograd F(3x3, 2x2) (enough tiles)
 * and a GEMM over groups of images. The thresholds are where each was measured faster: the
 * measurements are in docs/wasm_kernel_choice.md.
 *
 * @module
 */

import type { Conv2dGeometry } from "../src/backend.ts";
import { CHUNKS_PER_THREAD } from "./threads.ts";

/** The backend options the choice depends on (see `WasmBackendOptions`). */
export interface ConvPolicyOptions {
  /** Winograd for 3x3 stride-1 pad-1 convolutions: where measured faster, always or never. */
  readonly winograd: boolean | "auto";
  /** The Winograd forward and input gradient's output tile, or where measured faster. */
  readonly winogradTile: 2 | 4 | "auto";
  /** The direct kernel and the input gradient split by images (false: the GEMM paths). */
  readonly convShortcuts: boolean;
}

/** The backend's default options. */
export const DEFAULT_CONV_POLICY: ConvPolicyOptions = {
  winograd: "auto",
  winogradTile: "auto",
  convShortcuts: true,
};

/**
 * The pass of a convolution: the forward one, the input gradient (`data`) or the filter gradient
 * (`filter`).
 */
export type ConvPass = "forward" | "data" | "filter";

/** The direct kernel (directConv), split over images; `pad` is the convolution it runs's. */
export interface DirectChoice {
  /** The algorithm. */
  readonly kind: "direct";
  /** The padding of the convolution run (for the input gradient: kernel size - 1 - pad). */
  readonly pad: number;
}

/** Winograd F(tile x tile, 3x3) for the forward pass or the input gradient. */
export interface WinogradChoice {
  /** The algorithm. */
  readonly kind: "winograd";
  /** The output tile's side: 2 for F(2x2, 3x3), 4 for F(4x4, 3x3). */
  readonly tile: 2 | 4;
  /** Output tiles over the batch. */
  readonly tiles: number;
  /** Tiles a thread transforms and multiplies at a time. */
  readonly chunk: number;
}

/** One implicit GEMM over the whole batch (the filter times the im2col view of every image). */
export interface GemmChoice {
  /** The algorithm. */
  readonly kind: "gemm";
}

/** How the forward pass runs. */
export type ForwardChoice = DirectChoice | WinogradChoice | GemmChoice;

/**
 * How the input gradient runs: by the direct kernel or Winograd on the flipped, transposed filter;
 * `pointwise`: a 1x1 stride-1 convolution's W^T dy as one batched GEMM; `flippedGemm`: stride 1,
 * the forward convolution of dy with the flipped filter as one implicit GEMM; `perImage`: W^T dy
 * and col2im image by image, the images split over threads; `col2im`: the same with each image's
 * GEMM and col2im split instead (the comparison path, without the shortcuts).
 */
export type DataChoice =
  | DirectChoice
  | WinogradChoice
  | { readonly kind: "pointwise" | "flippedGemm" | "perImage" | "col2im" };

/**
 * How the filter gradient runs: Winograd F(3x3, 2x2) over groups of output tiles, or a GEMM over
 * groups of images; either way the groups are fixed by the geometry alone (each is one thread's
 * work, and the group sums are added in order), so the bits do not depend on the threads.
 */
export type FilterChoice =
  | {
    /** The algorithm. */
    readonly kind: "winograd";
    /** 2x2 output tiles over the batch. */
    readonly tiles: number;
    /** Tiles a thread transforms and multiplies at a time. */
    readonly chunk: number;
    /** Tiles in a group. */
    readonly groupSize: number;
    /** Groups. */
    readonly groups: number;
  }
  | {
    /** The algorithm. */
    readonly kind: "gemm";
    /** Images in a group. */
    readonly groupSize: number;
    /** Groups. */
    readonly groups: number;
  };

/** The choice for each pass. */
export interface ConvChoices {
  /** The forward pass. */
  forward: ForwardChoice;
  /** The input gradient. */
  data: DataChoice;
  /** The filter gradient. */
  filter: FilterChoice;
}

const GEMM: GemmChoice = { kind: "gemm" };
const POINTWISE: DataChoice = { kind: "pointwise" };
const FLIPPED_GEMM: DataChoice = { kind: "flippedGemm" };
const PER_IMAGE: DataChoice = { kind: "perImage" };
const COL2IM: DataChoice = { kind: "col2im" };

/**
 * How the wasm backend runs pass `pass` of the convolution of geometry `g` on `threads` threads
 * with options `options` (docs/wasm_kernel_choice.md has the measurements behind it).
 */
export function chooseConv<P extends ConvPass>(
  pass: P,
  g: Conv2dGeometry,
  threads: number,
  options: ConvPolicyOptions,
): ConvChoices[P] {
  switch (pass) {
    case "forward":
      return forward(g, threads, options) as ConvChoices[P];
    case "data":
      return data(g, threads, options) as ConvChoices[P];
    case "filter":
      return filter(g, options) as ConvChoices[P];
  }
  throw new RangeError(`unknown convolution pass ${pass}`);
}

function forward(g: Conv2dGeometry, threads: number, o: ConvPolicyOptions): ForwardChoice {
  if (useDirect(g, g.c, g.o, g.pad, o)) return { kind: "direct", pad: g.pad };
  if (useWinograd(g, g.c, g.o, o)) return winograd(g.n, g.c, g.o, g.h, g.w, threads, o);
  return GEMM;
}

function data(g: Conv2dGeometry, threads: number, o: ConvPolicyOptions): DataChoice {
  const pointwise = g.kh === 1 && g.kw === 1 && g.stride === 1 && g.pad === 0;
  const flipped = !pointwise && g.stride === 1 && g.kh === g.kw && g.pad <= g.kh - 1;
  // The direct kernel before Winograd, as in the forward pass.
  const direct = flipped && useDirect(g, g.o, g.c, g.kh - 1 - g.pad, o);
  if (!direct && useWinograd(g, g.o, g.c, o)) return winograd(g.n, g.o, g.c, g.h, g.w, threads, o);
  if (pointwise) return POINTWISE;
  if (flipped) return direct ? { kind: "direct", pad: g.kh - 1 - g.pad } : FLIPPED_GEMM;
  // Image by image, the images split over threads, rather than each image's GEMM and col2im
  // split (a synchronisation per image).
  return o.convShortcuts ? PER_IMAGE : COL2IM;
}

function filter(g: Conv2dGeometry, o: ConvPolicyOptions): FilterChoice {
  const { n, c } = g;
  if (useWinogradFilter(g, o)) {
    const tiles = n * Math.ceil(g.h / 2) * Math.ceil(g.w / 2);
    // Tiles a thread transforms and multiplies at a time: the transformed x and dy (64 (c + o)
    // bytes a tile) about 1 MiB, 96 to 384 tiles, a multiple of 4 (the kernels' four tiles a
    // vector).
    const chunk = Math.max(96, Math.min(384, Math.floor(16384 / (c + g.o) / 4) * 4));
    // At most 16 groups of at least 64 tiles, a multiple of 4, fixed by the geometry alone.
    const groupSize = Math.ceil(tiles / Math.min(16, Math.ceil(tiles / 64)) / 4) * 4;
    return { kind: "winograd", tiles, chunk, groupSize, groups: Math.ceil(tiles / groupSize) };
  }
  // Images in at most 16 groups, fixed by n alone.
  const groupSize = Math.ceil(n / Math.min(n, 16));
  return { kind: "gemm", groupSize, groups: Math.ceil(n / groupSize) };
}

/** Whether g is a 3x3 stride-1 pad-1 convolution, the shape the Winograd kernels compute. */
function winogradShape(g: Conv2dGeometry): boolean {
  return g.kh === 3 && g.kw === 3 && g.stride === 1 && g.pad === 1;
}

/**
 * Whether a convolution of geometry g with cin input and cout output channels (the forward one,
 * or the input gradient's as a forward convolution) runs by Winograd.
 */
function useWinograd(g: Conv2dGeometry, cin: number, cout: number, o: ConvPolicyOptions): boolean {
  if (!winogradShape(g)) return false;
  if (cin === 0 || cout === 0 || g.h === 0 || g.w === 0) return false;
  if (o.winograd !== "auto") return o.winograd;
  return cin >= 8 && g.h >= 7 && g.w >= 7;
}

/**
 * Winograd for an n x cin x h x w input and cout output channels: the tile (4 where measured
 * faster) and the chunk of tiles.
 */
function winograd(
  n: number,
  cin: number,
  cout: number,
  h: number,
  w: number,
  threads: number,
  o: ConvPolicyOptions,
): WinogradChoice {
  const tile = o.winogradTile !== "auto" ? o.winogradTile : h >= 7 && w >= 7 && cin >= 16 ? 4 : 2;
  const tiles = n * Math.ceil(h / tile) * Math.ceil(w / tile);
  // Tiles a thread transforms and multiplies at a time: V and M (64 (cin + cout) bytes a tile
  // for F(2x2), 144 (cin + cout) for F(4x4)) about 1 MiB, a multiple of the micro-kernel's 8
  // columns (and of 12 for F(2x2), as before); for F(4x4), at most an even share of the work,
  // so that small batches still split into several pieces a thread (at 7x7, batch 64, 64->64
  // the 256 tiles would otherwise be 5 chunks of 56 for 2 threads).
  const share = Math.ceil(tiles / (threads * CHUNKS_PER_THREAD));
  const chunk = tile === 4
    ? Math.max(
      16,
      Math.min(240, Math.floor(7282 / (cin + cout) / 8) * 8, Math.ceil(share / 8) * 8),
    )
    : Math.max(48, Math.min(480, Math.floor(16384 / (cin + cout) / 12) * 12));
  return { kind: "winograd", tile, tiles, chunk };
}

/** Whether the filter gradient of a convolution of geometry g runs by Winograd F(3x3, 2x2). */
function useWinogradFilter(g: Conv2dGeometry, o: ConvPolicyOptions): boolean {
  if (!winogradShape(g)) return false;
  if (g.n === 0 || g.c === 0 || g.o === 0 || g.h === 0 || g.w === 0) return false;
  if (o.winograd !== "auto") return o.winograd;
  const tiles = g.n * Math.ceil(g.h / 2) * Math.ceil(g.w / 2);
  return tiles >= (g.c === 1 ? 2048 : 64);
}

/**
 * Whether a stride-1 convolution with cin input and cout output channels (the forward one, or
 * the input gradient's as a forward convolution with padding `pad`) runs by the direct kernel,
 * whose loads (one per multiply-add) lose to the GEMM's register tiles once both channel counts
 * are larger.
 */
function useDirect(
  g: Conv2dGeometry,
  cin: number,
  cout: number,
  pad: number,
  o: ConvPolicyOptions,
): boolean {
  if (!o.convShortcuts || o.winograd === true || g.stride !== 1) return false;
  if (pad > g.kh - 1 || pad > g.kw - 1 || cin === 0 || cout === 0) return false;
  return (cout <= 4 || cin === 1) && cout <= 64;
}
