/**
 * Loading the embedded kernel modules: decodes the base64 in wasm/embedded.ts, picks the relaxed
 * SIMD build where `WebAssembly.validate` accepts it (plain SIMD otherwise), and instantiates it on
 * a given memory. Needs no permissions.
 *
 * @module
 */

import { PLAIN_SIMD, PLAIN_SIMD_SHARED, RELAXED_SIMD, RELAXED_SIMD_SHARED } from "./embedded.ts";

/** The exports of the kernel module (pointers are byte offsets, sizes count f32 elements). */
export interface Kernels {
  heapBase(): number;
  fmaCeiling(n: number, p: number): number;
  gemmWorkspaceBytes(): number;
  gemm(
    i0: number,
    i1: number,
    j0: number,
    j1: number,
    k: number,
    a: number,
    ars: number,
    acs: number,
    bmode: number,
    b: number,
    brs: number,
    bcs: number,
    c: number,
    ldc: number,
    accumulate: number,
    geo: number,
    apacked: number,
    work: number,
  ): void;
  packAAll(a: number, ars: number, acs: number, m: number, k: number, dst: number): void;
  gemmSkinnyN(
    a: number,
    ars: number,
    bt: number,
    bts: number,
    n: number,
    k: number,
    c: number,
    ldc: number,
    begin: number,
    end: number,
  ): void;
  gemmSkinnyK(
    a: number,
    ars: number,
    acs: number,
    bp: number,
    bps: number,
    n: number,
    k: number,
    c: number,
    ldc: number,
    begin: number,
    end: number,
  ): void;
  flipFilter(
    w: number,
    out: number,
    o: number,
    c: number,
    kk: number,
    begin: number,
    end: number,
  ): void;
  im2col(x: number, geo: number, col: number, begin: number, end: number): void;
  directConvScratchBytes(
    cout: number,
    h: number,
    w: number,
    kh: number,
    kw: number,
    pad: number,
  ): number;
  directConv(
    x: number,
    w: number,
    bias: number,
    y: number,
    cin: number,
    cout: number,
    h: number,
    wd: number,
    kh: number,
    kw: number,
    pad: number,
    begin: number,
    end: number,
    scratch: number,
  ): void;
  convDataPerImage(
    dy: number,
    w: number,
    dx: number,
    o: number,
    geo: number,
    begin: number,
    end: number,
    scratch: number,
  ): void;
  col2im(col: number, geo: number, dx: number, begin: number, end: number): void;
  convFilterGrad(
    x: number,
    dy: number,
    partial: number,
    n: number,
    gsize: number,
    o: number,
    pointwise: number,
    geo: number,
    begin: number,
    end: number,
    scratch: number,
  ): void;
  winogradScratchBytes(tile: number, cin: number, cout: number, w: number, chunk: number): number;
  winogradFilterBytes(tile: number, cout: number, cin: number): number;
  winogradFilter(
    tile: number,
    w: number,
    ut: number,
    o: number,
    c: number,
    flip: number,
    begin: number,
    end: number,
  ): void;
  winogradConv(
    x: number,
    ut: number,
    bias: number,
    y: number,
    cin: number,
    cout: number,
    h: number,
    w: number,
    tile: number,
    chunk: number,
    begin: number,
    end: number,
    scratch: number,
  ): void;
  winogradFilterGradScratchBytes(c: number, o: number, chunk: number): number;
  winogradFilterGrad(
    x: number,
    dy: number,
    partial: number,
    c: number,
    o: number,
    h: number,
    w: number,
    chunk: number,
    tiles: number,
    gsize: number,
    begin: number,
    end: number,
    scratch: number,
  ): void;
  unary(op: number, x: number, y: number, begin: number, end: number): void;
  unaryBackward(op: number, x: number, dy: number, dx: number, begin: number, end: number): void;
  binary(
    op: number,
    a: number,
    b: number,
    o: number,
    params: number,
    begin: number,
    end: number,
  ): void;
  affine(x: number, y: number, scale: number, shift: number, begin: number, end: number): void;
  axpy(y: number, x: number, alpha: number, begin: number, end: number): void;
  clamp(x: number, y: number, lo: number, hi: number, begin: number, end: number): void;
  reduceSum(x: number, o: number, params: number, begin: number, end: number): void;
  upsample2Backward(
    dy: number,
    dx: number,
    h: number,
    w: number,
    begin: number,
    end: number,
  ): void;
  sumSquares(x: number, begin: number, end: number): number;
  permute(x: number, o: number, params: number, begin: number, end: number): void;
  copyRows(
    src: number,
    srcStride: number,
    dst: number,
    dstStride: number,
    len: number,
    begin: number,
    end: number,
  ): void;
  fillRows(o: number, value: number, cols: number, begin: number, end: number): void;
  gather(table: number, index: number, o: number, begin: number, end: number): void;
  gatherRows(
    src: number,
    index: number,
    o: number,
    row: number,
    begin: number,
    end: number,
  ): void;
  upsampleNearest(
    x: number,
    y: number,
    h: number,
    w: number,
    f: number,
    begin: number,
    end: number,
  ): void;
  upsampleNearestBackward(
    dy: number,
    dx: number,
    h: number,
    w: number,
    f: number,
    begin: number,
    end: number,
  ): void;
  groupNorm(
    x: number,
    gamma: number,
    beta: number,
    shift: number,
    y: number,
    mean: number,
    rstd: number,
    c: number,
    hw: number,
    groups: number,
    eps: number,
    silu: number,
    begin: number,
    end: number,
  ): void;
  groupNormBackward(
    dy: number,
    x: number,
    gamma: number,
    beta: number,
    shift: number,
    mean: number,
    rstd: number,
    dx: number,
    dgPart: number,
    dbPart: number,
    dshift: number,
    c: number,
    hw: number,
    groups: number,
    silu: number,
    begin: number,
    end: number,
  ): void;
  softmax(x: number, y: number, cols: number, begin: number, end: number): void;
  softmaxBackward(
    y: number,
    dy: number,
    dx: number,
    cols: number,
    begin: number,
    end: number,
  ): void;
  loss(kind: number, pred: number, target: number, n: number, delta: number, out: number): void;
  lossBackward(
    kind: number,
    pred: number,
    target: number,
    n: number,
    delta: number,
    scale: number,
    out: number,
    begin: number,
    end: number,
  ): void;
  adam(
    params: number,
    grads: number,
    m: number,
    v: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    decoupled: number,
    bc1: number,
    bc2: number,
    clip: number,
    maxNorm: number,
    begin: number,
    end: number,
  ): void;
  ema(target: number, source: number, decay: number, begin: number, end: number): void;
  randomUniform(
    out: number,
    n: number,
    counter: number,
    stream: number,
    k0: number,
    k1: number,
    begin: number,
    end: number,
  ): void;
  randomNormal(
    out: number,
    n: number,
    counter: number,
    stream: number,
    k0: number,
    k1: number,
    begin: number,
    end: number,
  ): void;
  randomInt(
    out: number,
    n: number,
    counter: number,
    stream: number,
    k0: number,
    k1: number,
    lo: number,
    hi: number,
    begin: number,
    end: number,
  ): void;
}

/** Which build: relaxed SIMD or plain SIMD, each for private or shared memory. */
export interface KernelChoice {
  /** True when the relaxed SIMD build validated. */
  relaxed: boolean;
  /** True for the build that imports a shared memory. */
  shared: boolean;
  /** The compiled module. */
  module: WebAssembly.Module;
}

function decode(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const cache = new Map<string, KernelChoice>();

/**
 * The kernel module for private (`shared` false) or shared memory: relaxed SIMD when this engine
 * validates it, plain SIMD otherwise, or only the one asked for with `relaxed`. Compiled once.
 */
export function kernelModule(shared: boolean, relaxed?: boolean): KernelChoice {
  const key = `${shared}/${relaxed}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const relaxedBytes = decode(shared ? RELAXED_SIMD_SHARED : RELAXED_SIMD);
  const useRelaxed = relaxed ?? WebAssembly.validate(relaxedBytes);
  const bytes = useRelaxed ? relaxedBytes : decode(shared ? PLAIN_SIMD_SHARED : PLAIN_SIMD);
  if (!WebAssembly.validate(bytes)) {
    throw new Error(
      "wasm backend: this JavaScript engine does not support WebAssembly SIMD; use the reference backend",
    );
  }
  const choice = { relaxed: useRelaxed, shared, module: new WebAssembly.Module(bytes) };
  cache.set(key, choice);
  return choice;
}

/** Instantiates a kernel module on `memory` (synchronously; the modules are small). */
export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): Kernels {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as Kernels;
}
