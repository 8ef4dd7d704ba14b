/**
 * The one kernel interface every backend implements (`reference`, `wasm`, `webgpu`).
 *
 * A {@link Storage} is an opaque handle owned by its backend: a typed array for `reference`, an
 * offset in the WebAssembly memory for `wasm`, a `GPUBuffer` range for `webgpu`. Launching a kernel
 * is a synchronous call that takes handles and returns handles (WebGPU only records it); the only
 * asynchronous operation is {@link Backend.read}. Shapes are plain numbers passed with each call, so
 * a backend never has to inspect a tensor.
 *
 * Autograd lives above this interface (src/autograd.ts): every backward rule is expressed with these
 * kernels, so a model runs unchanged on every backend.
 *
 * @module
 */

/** Element type of a backend's storage. `float64` exists on the reference backend, for gradient checks. */
export type DType = "float32" | "float64";

/** The names of the backends. */
export type BackendName = "reference" | "wasm" | "webgpu";

/** An opaque handle to `length` elements of a backend's memory. */
export interface Storage {
  /** Number of elements. */
  readonly length: number;
}

/** Element-wise functions of one argument. */
export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "square"
  | "abs"
  | "sign"
  | "floor"
  | "relu"
  | "silu"
  | "gelu"
  | "tanh"
  | "sigmoid"
  | "sin"
  | "cos";

/** Element-wise functions of two arguments, with NumPy broadcasting. */
export type BinaryOp = "add" | "sub" | "mul" | "div" | "max" | "min";

/** The regression losses: squared error, absolute error and Huber (smooth L1 with threshold delta). */
export type LossKind = "l2" | "l1" | "huber";

/** The geometry of a 2D convolution in NCHW layout with an OIHW filter. */
export interface Conv2dGeometry {
  /** Batch size. */
  n: number;
  /** Input channels. */
  c: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Output channels. */
  o: number;
  /** Kernel height. */
  kh: number;
  /** Kernel width. */
  kw: number;
  /** Stride (both axes). */
  stride: number;
  /** Zero padding (both axes, both sides). */
  pad: number;
  /** Output height: floor((h + 2 pad - kh) / stride) + 1. */
  oh: number;
  /** Output width: floor((w + 2 pad - kw) / stride) + 1. */
  ow: number;
}

/** The geometry of a group normalisation over NC(HW) data. */
export interface GroupNormGeometry {
  /** Batch size. */
  n: number;
  /** Channels. */
  c: number;
  /** Spatial size per channel (H*W; 1 for vectors). */
  hw: number;
  /** Number of groups; divides c. */
  groups: number;
  /** Added to the variance. */
  eps: number;
  /**
   * Fuse a SiLU after the affine: y = silu(gamma * xhat + beta) instead of gamma * xhat + beta
   * (default false). The backward then needs `beta` too, and recomputes the pre-activation from
   * x, mean, rstd, gamma and beta, so nothing beyond mean and rstd is stored.
   */
  silu?: boolean;
}

/** Throws the one error for a GroupNorm shift whose length is not n x c of geometry g. */
export function checkGroupNormShift(g: GroupNormGeometry, length: number): void {
  if (length !== g.n * g.c) {
    throw new RangeError(`groupNorm: shift needs ${g.n * g.c} values, got ${length}`);
  }
}

/** Settings of one fused Adam/AdamW update over a flat parameter buffer. */
export interface AdamSettings {
  /** Learning rate of this step. */
  lr: number;
  /** First-moment decay. */
  beta1: number;
  /** Second-moment decay. */
  beta2: number;
  /** Denominator epsilon. */
  eps: number;
  /** Weight decay; coupled (added to the gradient) for Adam, decoupled for AdamW. */
  weightDecay: number;
  /** True for AdamW's decoupled weight decay. */
  decoupled: boolean;
  /** 1-based step number, for bias correction. */
  step: number;
  /**
   * Global-norm gradient clipping: when set, `gradSquaredNorm` holds the squared norm of the whole
   * gradient (one element, computed on the device) and gradients are scaled by
   * min(1, maxNorm / norm) inside the kernel, so clipping needs no read-back.
   */
  clip: { maxNorm: number; gradSquaredNorm: Storage } | null;
}

/** Where a random fill draws from (see src/random.ts for the exact definition). */
export interface RandomDraw {
  /** The seed, an integer in [0, 2^53). */
  seed: number;
  /** Stream under the seed. */
  stream: number;
  /** First Philox block. */
  counter: number;
}

/** The results of a group-norm forward pass that its backward needs. */
export interface GroupNormResult {
  /** Normalised, scaled and shifted output (same shape as the input). */
  y: Storage;
  /** Per (n, group) mean, length n*groups. */
  mean: Storage;
  /** Per (n, group) reciprocal standard deviation, length n*groups. */
  rstd: Storage;
}

/** Gradients of a group-norm layer. */
export interface GroupNormGrads {
  /** Gradient of the input. */
  dx: Storage;
  /** Gradient of the per-channel scale. */
  dgamma: Storage;
  /** Gradient of the per-channel shift. */
  dbeta: Storage;
  /**
   * Gradient of the per-(sample, channel) input shift, n*c values (dx summed over each channel
   * plane); present exactly when the backward was given a `shift`.
   */
  dshift?: Storage;
}

/**
 * The kernels. All take and return {@link Storage} handles of this backend; every returned handle is
 * new storage unless the method says it works in place.
 */
export interface Backend {
  /** Which backend this is. */
  readonly name: BackendName;
  /** Element type of its storage. */
  readonly dtype: DType;

  // ---- memory ---------------------------------------------------------------------------------
  /** New zero-filled storage of `length` elements. */
  alloc(length: number): Storage;
  /** New storage holding a copy of `data`. */
  upload(data: ArrayLike<number>): Storage;
  /** Copies `data` into `dst` starting at element `offset` (synchronous; queued on a GPU). */
  write(dst: Storage, data: ArrayLike<number>, offset?: number): void;
  /** Reads a storage back to the host. The only asynchronous call. */
  read(src: Storage): Promise<Float32Array | Float64Array>;
  /** A handle to elements [offset, offset + length) of `src`, sharing its memory. */
  view(src: Storage, offset: number, length: number): Storage;
  /** Releases storage (views: nothing). Using it afterwards is an error. */
  free(s: Storage): void;
  /**
   * Opens a scope: storage allocated until the matching {@link Backend.endScope} is released there,
   * except the handles it is told to keep, which pass to the enclosing scope. Scopes nest. The
   * training loop wraps each step in one, so a step allocates nothing that outlives it.
   */
  beginScope(): void;
  /** Closes the innermost scope, releasing its storage except `keep`. */
  endScope(keep?: readonly Storage[]): void;
  /** Sets every element of `dst` to `value`, in place. */
  fill(dst: Storage, value: number): void;
  /** Copies `src` into `dst` (equal lengths), in place. */
  copy(dst: Storage, src: Storage): void;

  // ---- element-wise ---------------------------------------------------------------------------
  /** y = op(x). */
  unary(op: UnaryOp, x: Storage): Storage;
  /** dx = dy * op'(x), for differentiable ops. */
  unaryBackward(op: UnaryOp, x: Storage, dy: Storage): Storage;
  /** out = a op b with NumPy broadcasting of `aShape` and `bShape` to `outShape` (same rank). */
  binary(
    op: BinaryOp,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage;
  /** y = x * scale + shift, with scalar scale and shift. */
  affine(x: Storage, scale: number, shift: number): Storage;
  /** y += alpha * x, in place (equal lengths). */
  axpy(y: Storage, x: Storage, alpha: number): void;
  /** y = min(max(x, lo), hi). */
  clamp(x: Storage, lo: number, hi: number): Storage;
  /** Sums `x` (of `shape`) over the axes where `outShape` (same rank) has 1 and `shape` does not. */
  reduceSum(x: Storage, shape: readonly number[], outShape: readonly number[]): Storage;
  /** One element: the sum of squares of all elements of every given storage. */
  sumSquares(xs: readonly Storage[]): Storage;
  /** Permutes the axes of `x` (of `shape`): out axis i is input axis perm[i]. */
  permute(x: Storage, shape: readonly number[], perm: readonly number[]): Storage;

  // ---- linear algebra -------------------------------------------------------------------------
  /**
   * Batched matrix product C[i] = op(A[i]) @ op(B[i]) for i < batch, with C[i] of m x n.
   * A[i] is m x k (k x m when transA), B[i] is k x n (n x k when transB), all row-major and
   * contiguous. `batchA`/`batchB` false means the operand is shared by every batch entry.
   */
  matmul(
    a: Storage,
    b: Storage,
    batch: number,
    m: number,
    k: number,
    n: number,
    transA: boolean,
    transB: boolean,
    batchA?: boolean,
    batchB?: boolean,
  ): Storage;

  // ---- convolution ----------------------------------------------------------------------------
  /** y[n,o,oh,ow] = sum x * w (+ bias[o]), NCHW input, OIHW filter, zero padding. */
  conv2d(x: Storage, w: Storage, bias: Storage | null, g: Conv2dGeometry): Storage;
  /** Gradient of the input of {@link Backend.conv2d}. */
  conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry): Storage;
  /** Gradient of the filter of {@link Backend.conv2d}. */
  conv2dBackwardFilter(x: Storage, dy: Storage, g: Conv2dGeometry): Storage;

  // ---- normalisation and softmax --------------------------------------------------------------
  /**
   * Group normalisation with per-channel affine (gamma, beta of length c), followed by a SiLU in
   * the same pass when `g.silu` is set. With `shift` (n*c values, one per (sample, channel)
   * plane), the input is x + shift broadcast over each plane (the UNet's time-embedding add),
   * fused into the same pass: the statistics, mean and rstd are those of x + shift.
   */
  groupNorm(
    x: Storage,
    gamma: Storage,
    beta: Storage,
    g: GroupNormGeometry,
    shift?: Storage,
  ): GroupNormResult;
  /**
   * Gradients of {@link Backend.groupNorm}. With `g.silu` set, `beta` is required: the gradient
   * goes through the SiLU inline, its input recomputed from x, mean, rstd, gamma and beta. With
   * `shift` (the forward's), x + shift is recomputed where needed and the result also holds
   * `dshift` [n*c], the input gradient summed over each channel plane.
   */
  groupNormBackward(
    dy: Storage,
    x: Storage,
    gamma: Storage,
    mean: Storage,
    rstd: Storage,
    g: GroupNormGeometry,
    beta?: Storage,
    shift?: Storage,
  ): GroupNormGrads;
  /** Softmax over the last axis of a rows x cols matrix. */
  softmax(x: Storage, rows: number, cols: number): Storage;
  /** dx of softmax from its output y and dy. */
  softmaxBackward(y: Storage, dy: Storage, rows: number, cols: number): Storage;

  // ---- resampling and layout ------------------------------------------------------------------
  /** Nearest-neighbour upsampling of `planes` planes of h x w by an integer factor. */
  upsampleNearest(x: Storage, planes: number, h: number, w: number, factor: number): Storage;
  /** Gradient of {@link Backend.upsampleNearest} (sums each factor x factor block). */
  upsampleNearestBackward(
    dy: Storage,
    planes: number,
    h: number,
    w: number,
    factor: number,
  ): Storage;
  /**
   * Concatenation along a middle axis: input i is [outer, sizes[i], inner]; the output is
   * [outer, sum(sizes), inner].
   */
  concat(xs: readonly Storage[], outer: number, sizes: readonly number[], inner: number): Storage;
  /** The slice [outer, start:start+len, inner] of x viewed as [outer, axis, inner]. */
  slice(
    x: Storage,
    outer: number,
    axis: number,
    start: number,
    len: number,
    inner: number,
  ): Storage;
  /** out[i] = table[index[i]] (indices stored as integral floats). */
  gather(table: Storage, index: Storage): Storage;
  /** out row i = src row index[i], rows of `rowSize` elements. */
  gatherRows(src: Storage, index: Storage, rowSize: number): Storage;

  // ---- losses ---------------------------------------------------------------------------------
  /** One element: the mean over all elements of the loss between pred and target. */
  loss(kind: LossKind, pred: Storage, target: Storage, delta: number): Storage;
  /** d(scale * mean loss)/d(pred); `scale` is a one-element storage (the upstream gradient). */
  lossBackward(
    kind: LossKind,
    pred: Storage,
    target: Storage,
    delta: number,
    scale: Storage,
  ): Storage;

  // ---- optimisation ---------------------------------------------------------------------------
  /** One fused Adam/AdamW update of params from grads and moments m, v (all in place). */
  adam(params: Storage, grads: Storage, m: Storage, v: Storage, s: AdamSettings): void;
  /** target = decay * target + (1 - decay) * source, in place. */
  ema(target: Storage, source: Storage, decay: number): void;

  // ---- random numbers (src/random.ts defines the values) --------------------------------------
  /** Fills `out` with uniforms in [0, 1), in place. */
  randomUniform(out: Storage, draw: RandomDraw): void;
  /** Fills `out` with standard normals, in place. */
  randomNormal(out: Storage, draw: RandomDraw): void;
  /** Fills `out` with integers in [lo, hi) stored as floats, in place. */
  randomInt(out: Storage, draw: RandomDraw, lo: number, hi: number): void;

  /**
   * Marks the end of a unit of work (a training step, a sampling step): a GPU backend submits the
   * commands it recorded; backends that run kernels at once do nothing.
   */
  flush(): void;
  /** Releases everything the backend holds. */
  dispose(): void;
}

/** Output size of a convolution along one axis. */
export function convOutSize(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

/** The full geometry of a square-kernel convolution of x [n, c, h, w] to o channels. */
export function conv2dGeometry(
  n: number,
  c: number,
  h: number,
  w: number,
  o: number,
  k: number,
  stride: number,
  pad: number,
): Conv2dGeometry {
  return {
    n,
    c,
    h,
    w,
    o,
    kh: k,
    kw: k,
    stride,
    pad,
    oh: convOutSize(h, k, stride, pad),
    ow: convOutSize(w, k, stride, pad),
  };
}
