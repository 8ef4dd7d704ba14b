/**
 * Loading the embedded kernel modules: decodes the base64 in wasm/embedded.ts, picks the relaxed
 * SIMD build where `WebAssembly.validate` accepts it (plain SIMD otherwise), and instantiates it on
 * a given memory. Needs no permissions.
 *
 * @module
 */

import { PLAIN_SIMD, PLAIN_SIMD_SHARED, RELAXED_SIMD, RELAXED_SIMD_SHARED } from "./embedded.ts";

/**
 * The exports of the kernel module (wasm/assembly/index.ts), as the host calls them. Pointers are
 * byte offsets into the one memory and sizes count f32 elements, unless a name says bytes; `op` and
 * `kind` codes are indices in `UNARY_OPS`, `BINARY_OPS` and `LOSS_KINDS`; `geo` points at a
 * convolution's geometry (i32s: c, h, w, kh, kw, stride, pad, oh, ow, xstride, cstride). A kernel
 * whose last arguments are `begin, end` computes only that range (of elements, rows, planes,
 * images, tiles or groups, as its line says), so that the host can split it over threads; `scratch`
 * and `work` are the calling thread's scratch space.
 */
export interface Kernels {
  /** The first byte after the module's static data (math tables): the host allocates above it. */
  heapBase(): number;
  /**
   * Runs `n` rounds of 12 independent f32x4 multiply-adds on the 16 vectors at `p` (the FMA
   * ceiling, for scripts/bench.ts).
   */
  fmaCeiling(n: number, p: number): number;
  /** Bytes of scratch one thread needs for `gemm`. */
  gemmWorkspaceBytes(): number;
  /** Makes the GEMM scratch `work` forget the tag of the product it last packed for. */
  gemmForget(work: number): void;
  /**
   * C[i0..i1, j0..j1] (+)= A' B' with inner size `k` and A'(i, p) = a[i ars + p acs]. With `bmode`
   * 0, B'(p, j) = b[p brs + j bcs] and C has row stride `ldc`; with 2, B' is the batched im2col
   * view of the images at `b` (geometry `geo`) and C the convolution's output in NCHW layout. Adds
   * to C when `accumulate` is non-zero; `apacked` is 0 or A' packed by `packAAll`. The epilogue,
   * on the finished sum: `biasMode` 0 none, 1 the floats at `bias` added one a row of C, 2 one a
   * column; `act` 0 none, 1 ReLU. `tag` is 0, or a number shared by the chunks of one product and
   * no other, with which a thread's later chunks reuse the A' (same rows, one block) or B' (same
   * columns, one panel) its earlier chunk packed. `work` is this thread's `gemmWorkspaceBytes()`
   * bytes of scratch.
   */
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
    bias: number,
    biasMode: number,
    act: number,
    tag: number,
    work: number,
  ): void;
  /**
   * Products [begin, end) of a batch of dense products C[i] = A'[i] B'[i] (m x n, inner size k, C
   * with row stride n), the operands `aStride`, `bStride` and `cStride` bytes apart (0: shared),
   * whole products a call; `work` is this thread's `gemmWorkspaceBytes()` bytes of scratch.
   */
  gemmBatch(
    m: number,
    n: number,
    k: number,
    a: number,
    ars: number,
    acs: number,
    aStride: number,
    b: number,
    brs: number,
    bcs: number,
    bStride: number,
    c: number,
    cStride: number,
    begin: number,
    end: number,
    work: number,
  ): void;
  /**
   * Packs all of A' (m x k, A'(i, p) = a[i ars + p acs]) at `dst`, in the layout `gemm` reads
   * through `apacked`.
   */
  packAAll(a: number, ars: number, acs: number, m: number, k: number, dst: number): void;
  /**
   * C[i, j] = A'(i, :) . bt[j, :] for rows [begin, end), for n <= 4 columns (bt: B' transposed, row
   * stride `bts`).
   */
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
  /**
   * C[i, :] = sum over p < k of A'(i, p) B'(p, :) for rows [begin, end), for an inner size k <= 4
   * (B' at `bp`, row stride `bps`); then the n floats at `bias` (when not 0) added one a column and,
   * with `act` 1, ReLU.
   */
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
    bias: number,
    act: number,
    begin: number,
    end: number,
  ): void;
  /**
   * Few columns (n <= 4), A' with contiguous columns: C[i, j] = sum over p of a[i + p acs] b[p brs
   * + j bcs] for rows [begin, end) (C row stride `ldc`), summed as the packed GEMM sums (its bits);
   * `tile` is 128 bytes of this thread's scratch.
   */
  gemmOuterN(
    a: number,
    acs: number,
    b: number,
    brs: number,
    bcs: number,
    n: number,
    k: number,
    c: number,
    ldc: number,
    begin: number,
    end: number,
    tile: number,
  ): void;
  /**
   * Few rows (m <= 4), B' with contiguous rows: C[i, j] = sum over p of a[i ars + p acs] b[p brs +
   * j] for columns [begin, end) (C row stride `ldc`), summed as the packed GEMM sums (its bits);
   * `tile` is 128 bytes of this thread's scratch.
   */
  gemmOuterM(
    a: number,
    ars: number,
    acs: number,
    b: number,
    brs: number,
    m: number,
    k: number,
    c: number,
    ldc: number,
    begin: number,
    end: number,
    tile: number,
  ): void;
  /**
   * out[c][o][kk - 1 - t] = w[o][c][t] (the filter of a stride-1 convolution's input gradient) for
   * channels c in [begin, end).
   */
  flipFilter(
    w: number,
    out: number,
    o: number,
    c: number,
    kk: number,
    begin: number,
    end: number,
  ): void;
  /**
   * Writes rows [begin, end) (row = (c, ky, kx), oh ow long) of the im2col matrix of image `x` into
   * `col`.
   */
  im2col(x: number, geo: number, col: number, begin: number, end: number): void;
  /** Bytes of scratch one thread needs for `directConv` on that shape. */
  directConvScratchBytes(
    cout: number,
    h: number,
    w: number,
    kh: number,
    kw: number,
    pad: number,
  ): number;
  /**
   * y = the stride-1 convolution, padded by `pad`, of x (n x cin x h x wd) with w (cout x cin x kh
   * x kw), plus `bias` (0 for none), for images [begin, end).
   */
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
  /**
   * dx[i] = col2im of W^T dy[i] (a convolution's input gradient, `o` output channels) for images
   * [begin, end).
   */
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
  /** Adds the im2col-shaped `col` back into image `dx` for input channels [begin, end). */
  col2im(col: number, geo: number, dx: number, begin: number, end: number): void;
  /**
   * partial[g] = the sum over the images of group g (`gsize` each) of dy times x's transposed
   * im2col matrix, for groups [begin, end); `mode` 0 (an explicit im2col matrix), 1 (pointwise) or
   * 2 (stride 2, the result o x kk x c), as in wasm/assembly/conv_grad.ts.
   */
  convFilterGrad(
    x: number,
    dy: number,
    partial: number,
    n: number,
    gsize: number,
    o: number,
    mode: number,
    geo: number,
    begin: number,
    end: number,
    scratch: number,
  ): void;
  /**
   * Bytes of scratch one thread needs for `winogradConv` on `w`-wide images, `chunk` tiles at a
   * time.
   */
  winogradScratchBytes(tile: number, cin: number, cout: number, w: number, chunk: number): number;
  /**
   * Bytes of the transformed filter `winogradFilter` writes for `cout` output and `cin` input
   * channels.
   */
  winogradFilterBytes(tile: number, cout: number, cin: number): number;
  /**
   * The transformed filter `winogradConv` reads, from w (o x c x 3 x 3), or with `flip` that of its
   * input gradient, for the (effective) output channels [begin, end).
   */
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
  /**
   * A 3x3 stride-1 pad-1 convolution by Winograd F(tile x tile, 3x3) (`tile` 2 or 4) of tiles
   * [begin, end), `chunk` at a time.
   */
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
  /** Bytes of scratch one thread needs for `winogradFilterGrad`. */
  winogradFilterGradScratchBytes(c: number, o: number, chunk: number): number;
  /**
   * The filter gradient of a 3x3 stride-1 pad-1 convolution by Winograd F(3x3, 2x2): partial[g] for
   * tile groups [begin, end).
   */
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
  /** y[i] = op(x[i]) for i in [begin, end), `op` an index in `UNARY_OPS`. */
  unary(op: number, x: number, y: number, begin: number, end: number): void;
  /** dx[i] = dy[i] * op'(x[i]) for i in [begin, end), `op` an index in `UNARY_OPS`. */
  unaryBackward(op: number, x: number, dy: number, dx: number, begin: number, end: number): void;
  /**
   * o = a op b with broadcasting (`params`: rank, shape, strides of a and b, as i32s) over output
   * rows [begin, end).
   */
  binary(
    op: number,
    a: number,
    b: number,
    o: number,
    params: number,
    begin: number,
    end: number,
  ): void;
  /** y[i] = x[i] * scale + shift for i in [begin, end). */
  affine(x: number, y: number, scale: number, shift: number, begin: number, end: number): void;
  /** y[i] += alpha * x[i] for i in [begin, end), in place. */
  axpy(y: number, x: number, alpha: number, begin: number, end: number): void;
  /** y[i] = x[i] clamped to [lo, hi] for i in [begin, end). */
  clamp(x: number, y: number, lo: number, hi: number, begin: number, end: number): void;
  /**
   * y[i] = (s0 x0[i] + ... + s3 x3[i]) * scale over the first `terms` terms, clamped to
   * [-clip, clip] when `clipped` is 1, for i in [begin, end).
   */
  combine(
    terms: number,
    x0: number,
    s0: number,
    x1: number,
    s1: number,
    x2: number,
    s2: number,
    x3: number,
    s3: number,
    y: number,
    scale: number,
    clip: number,
    clipped: number,
    begin: number,
    end: number,
  ): void;
  /**
   * Adds input rows [begin, end) into the zeroed output `o` (`params`: rank, shape, output strides,
   * 0 on summed axes).
   */
  reduceSum(x: number, o: number, params: number, begin: number, end: number): void;
  /** Planes [begin, end) of dx (h x w) get the sums of their 2 x 2 blocks of dy (2h x 2w). */
  upsample2Backward(
    dy: number,
    dx: number,
    h: number,
    w: number,
    begin: number,
    end: number,
  ): void;
  /** The sum of squares of x[begin..end), accumulated in double precision. */
  sumSquares(x: number, begin: number, end: number): number;
  /**
   * Output rows [begin, end) of a permutation of x (`params`: rank, output shape, input strides per
   * output axis).
   */
  permute(x: number, o: number, params: number, begin: number, end: number): void;
  /**
   * Copies rows [begin, end) of `len` bytes from src to dst (row strides `srcStride`, `dstStride`
   * in bytes).
   */
  copyRows(
    src: number,
    srcStride: number,
    dst: number,
    dstStride: number,
    len: number,
    begin: number,
    end: number,
  ): void;
  /** o[i] = value for i in [begin, end). */
  fill(o: number, value: number, begin: number, end: number): void;
  /** Sets row r of o (`cols` wide) to value[r] for r in [begin, end): a bias broadcast. */
  fillRows(o: number, value: number, cols: number, begin: number, end: number): void;
  /** o[i] = table[index[i]] for i in [begin, end) (indices are integral floats). */
  gather(table: number, index: number, o: number, begin: number, end: number): void;
  /** Row i of o = row index[i] of src (rows of `row` elements) for i in [begin, end). */
  gatherRows(
    src: number,
    index: number,
    o: number,
    row: number,
    begin: number,
    end: number,
  ): void;
  /** Nearest-neighbour upsampling by `f` of planes [begin, end) of h x w, from x into y. */
  upsampleNearest(
    x: number,
    y: number,
    h: number,
    w: number,
    f: number,
    begin: number,
    end: number,
  ): void;
  /**
   * The gradient of `upsampleNearest`: planes [begin, end) of dx (h x w) get the sums of their
   * `f`-by-`f` blocks of dy.
   */
  upsampleNearestBackward(
    dy: number,
    dx: number,
    h: number,
    w: number,
    f: number,
    begin: number,
    end: number,
  ): void;
  /**
   * Group norm of (batch, group) rows [begin, end): y = (x + shift - mean) * rstd * gamma + beta
   * (its SiLU when `silu` is non-zero; `shift` 0 for none), storing each row's mean and rstd.
   */
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
  /**
   * The gradient of `groupNorm` for (batch, group) rows [begin, end): dx, the per (batch, channel)
   * partial sums dgPart and dbPart of the gamma and beta gradients, and dshift when `shift` is
   * non-zero.
   */
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
  /** Softmax of rows [begin, end) of a matrix `cols` wide. */
  softmax(x: number, y: number, cols: number, begin: number, end: number): void;
  /** dx = y * (dy - sum(y * dy)) for rows [begin, end) of a matrix `cols` wide. */
  softmaxBackward(
    y: number,
    dy: number,
    dx: number,
    cols: number,
    begin: number,
    end: number,
  ): void;
  /**
   * out[0] = the mean over n elements of the loss `kind` (an index in `LOSS_KINDS`; Huber's
   * threshold `delta`).
   */
  loss(kind: number, pred: number, target: number, n: number, delta: number, out: number): void;
  /**
   * out[i] = d(scale * mean loss)/d(pred[i]) for i in [begin, end), `scale` pointing at one float.
   */
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
  /**
   * One fused Adam (AdamW when `decoupled`) update of elements [begin, end), in place; bc1, bc2 are
   * the bias corrections. `clip` is 0, or points at the squared gradient norm (one float), the
   * gradient then being scaled down to norm `maxNorm` when its norm is larger.
   */
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
  /** target = decay * target + (1 - decay) * source over [begin, end), in place. */
  ema(target: number, source: number, decay: number, begin: number, end: number): void;
  /**
   * Uniforms in [0, 1) into elements [begin, end) (begin a multiple of 4) of out (n long), by
   * Philox-4x32-10 from block `counter` on `stream` with key (k0, k1), as src/random.ts draws them.
   */
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
  /**
   * Standard normals (Box-Muller) into elements [begin, end) of out, drawn as `randomUniform`
   * draws.
   */
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
  /** Integers in [lo, hi) into elements [begin, end) of out, drawn as `randomUniform` draws. */
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
