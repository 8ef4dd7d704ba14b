/**
 * The `reference` backend: plain TypeScript loops over typed arrays. Slow and obviously correct; the
 * oracle that every other backend is tested against, and the last fallback. With `dtype: "float64"`
 * it computes in double precision, which the gradient checks use.
 *
 * @module
 */

import type {
  AdamSettings,
  Backend,
  BinaryOp,
  Conv2dGeometry,
  DType,
  GroupNormGeometry,
  GroupNormGrads,
  GroupNormResult,
  LossKind,
  RandomDraw,
  Storage,
  UnaryOp,
} from "../backend.ts";
import { checkGroupNormShift } from "../backend.ts";
import { fillNormal, fillUniform, uniformToInt } from "../random.ts";
import { broadcastStrides, sizeOf } from "../shape.ts";

type Arr = Float32Array | Float64Array;

/** Storage of the reference backend: a typed array (possibly a view of a larger one). */
export class ReferenceStorage implements Storage {
  /** The elements. */
  readonly data: Arr;
  /** Wraps a typed array. */
  constructor(data: Arr) {
    this.data = data;
  }
  /** Number of elements. */
  get length(): number {
    return this.data.length;
  }
}

function arr(s: Storage): Arr {
  if (!(s instanceof ReferenceStorage)) {
    throw new TypeError("reference backend: got storage from another backend");
  }
  return s.data;
}

/** dst [cols, rows] = transpose of src [rows, cols] starting at `off`. */
function transposeInto(src: Arr, off: number, rows: number, cols: number, dst: Float64Array): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) dst[c * rows + r] = src[off + r * cols + c];
  }
}

/** C[co + i n + j] = sum_p A[i k + p] B[j k + p], in 4 x 4 blocks with scalar edges. */
function gemmNT(
  A: Float64Array,
  B: Float64Array,
  C: Arr,
  co: number,
  m: number,
  n: number,
  k: number,
) {
  const m4 = m - (m % 4), n4 = n - (n % 4);
  for (let i = 0; i < m4; i += 4) {
    const a0 = i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
    for (let j = 0; j < n4; j += 4) {
      const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let p = 0; p < k; p++) {
        const x0 = A[a0 + p], x1 = A[a1 + p], x2 = A[a2 + p], x3 = A[a3 + p];
        const y0 = B[b0 + p], y1 = B[b1 + p], y2 = B[b2 + p], y3 = B[b3 + p];
        c00 += x0 * y0, c01 += x0 * y1, c02 += x0 * y2, c03 += x0 * y3;
        c10 += x1 * y0, c11 += x1 * y1, c12 += x1 * y2, c13 += x1 * y3;
        c20 += x2 * y0, c21 += x2 * y1, c22 += x2 * y2, c23 += x2 * y3;
        c30 += x3 * y0, c31 += x3 * y1, c32 += x3 * y2, c33 += x3 * y3;
      }
      const r0 = co + i * n + j, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
      C[r0] = c00, C[r0 + 1] = c01, C[r0 + 2] = c02, C[r0 + 3] = c03;
      C[r1] = c10, C[r1 + 1] = c11, C[r1 + 2] = c12, C[r1 + 3] = c13;
      C[r2] = c20, C[r2 + 1] = c21, C[r2 + 2] = c22, C[r2 + 3] = c23;
      C[r3] = c30, C[r3 + 1] = c31, C[r3 + 2] = c32, C[r3 + 3] = c33;
    }
  }
  // Edges: rows past m4 (all columns) and columns past n4 (rows below m4).
  for (let i = 0; i < m; i++) {
    for (let j = i < m4 ? n4 : 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += A[i * k + p] * B[j * k + p];
      C[co + i * n + j] = s;
    }
  }
}

/**
 * How `shape` broadcasts to `out`: "repeat" when it equals a trailing part of `out` (leading ones),
 * so element i reads i % len; "spread" when it equals a leading part (trailing ones), so element i
 * reads floor(i / len). Null for any other pattern.
 */
function broadcastPattern(
  shape: readonly number[],
  out: readonly number[],
): { kind: "repeat" | "spread"; len: number } | null {
  const r = out.length;
  let lead = 0;
  while (lead < r && shape[lead] === 1) lead++;
  if (shape.slice(lead).every((d, i) => d === out[lead + i])) {
    return { kind: "repeat", len: sizeOf(out.slice(lead)) };
  }
  let trail = r;
  while (trail > 0 && shape[trail - 1] === 1) trail--;
  if (shape.slice(0, trail).every((d, i) => d === out[i])) {
    return { kind: "spread", len: sizeOf(out.slice(trail)) };
  }
  return null;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

function silu(x: number): number {
  return x * sigmoid(x);
}

function siluGrad(x: number): number {
  const s = sigmoid(x);
  return s * (1 + x * (1 - s));
}

/** GELU, tanh form (PyTorch's `approximate="tanh"`), the same on every backend. */
function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
}

function geluGrad(x: number): number {
  const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
  const th = Math.tanh(u);
  const du = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * du;
}

const UNARY: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  square: (x) => x * x,
  abs: Math.abs,
  sign: Math.sign,
  floor: Math.floor,
  relu: (x) => (x > 0 ? x : 0),
  silu,
  gelu,
  tanh: Math.tanh,
  sigmoid,
  sin: Math.sin,
  cos: Math.cos,
};

const UNARY_GRAD: Partial<Record<UnaryOp, (x: number) => number>> = {
  neg: () => -1,
  exp: Math.exp,
  log: (x) => 1 / x,
  sqrt: (x) => 0.5 / Math.sqrt(x),
  rsqrt: (x) => -0.5 / (x * Math.sqrt(x)),
  square: (x) => 2 * x,
  abs: Math.sign,
  relu: (x) => (x > 0 ? 1 : 0),
  silu: siluGrad,
  gelu: geluGrad,
  tanh: (x) => {
    const t = Math.tanh(x);
    return 1 - t * t;
  },
  sigmoid: (x) => {
    const s = sigmoid(x);
    return s * (1 - s);
  },
  sin: Math.cos,
  cos: (x) => -Math.sin(x),
};

const BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: (a, b) => (a >= b ? a : b),
  min: (a, b) => (a <= b ? a : b),
};

/** Options of {@link ReferenceBackend}. */
export interface ReferenceOptions {
  /** Element type; `float64` for gradient checks. Default `float32`. */
  dtype?: DType;
}

/** The reference backend. */
export class ReferenceBackend implements Backend {
  /** Always `"reference"`. */
  readonly name = "reference" as const;
  /** Element type. */
  readonly dtype: DType;
  #make: (n: number) => Arr;

  /** A reference backend computing in `dtype` (default float32). */
  constructor(options: ReferenceOptions = {}) {
    this.dtype = options.dtype ?? "float32";
    this.#make = this.dtype === "float64" ? (n) => new Float64Array(n) : (n) => new Float32Array(n);
  }

  #new(n: number): ReferenceStorage {
    return new ReferenceStorage(this.#make(n));
  }

  alloc(length: number): Storage {
    return this.#new(length);
  }

  upload(data: ArrayLike<number>): Storage {
    const s = this.#new(data.length);
    s.data.set(data);
    return s;
  }

  write(dst: Storage, data: ArrayLike<number>, offset = 0): void {
    arr(dst).set(data, offset);
  }

  read(src: Storage): Promise<Float32Array | Float64Array> {
    return Promise.resolve(arr(src).slice());
  }

  view(src: Storage, offset: number, length: number): Storage {
    const a = arr(src);
    if (offset < 0 || offset + length > a.length) {
      throw new RangeError(
        `view [${offset}, ${offset + length}) is outside storage of ${a.length}`,
      );
    }
    return new ReferenceStorage(a.subarray(offset, offset + length));
  }

  free(_s: Storage): void {}

  beginScope(): void {}

  endScope(_keep?: readonly Storage[]): void {}

  fill(dst: Storage, value: number): void {
    arr(dst).fill(value);
  }

  copy(dst: Storage, src: Storage): void {
    arr(dst).set(arr(src));
  }

  unary(op: UnaryOp, x: Storage): Storage {
    const a = arr(x), f = UNARY[op], out = this.#new(a.length), o = out.data;
    for (let i = 0; i < a.length; i++) o[i] = f(a[i]);
    return out;
  }

  unaryBackward(op: UnaryOp, x: Storage, dy: Storage): Storage {
    const f = UNARY_GRAD[op];
    if (!f) throw new Error(`unary op ${op} has no gradient`);
    const a = arr(x), g = arr(dy), out = this.#new(a.length), o = out.data;
    for (let i = 0; i < a.length; i++) o[i] = g[i] * f(a[i]);
    return out;
  }

  binary(
    op: BinaryOp,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage {
    const f = BINARY[op], A = arr(a), B = arr(b);
    const n = sizeOf(outShape), out = this.#new(n), o = out.data;
    if (A.length === n && B.length === n) {
      for (let i = 0; i < n; i++) o[i] = f(A[i], B[i]);
      return out;
    }
    // Fast paths: each operand either full, repeated (a trailing block), or spread (one value per
    // block of trailing elements). Everything else goes through the general n-d walk below.
    const pa = broadcastPattern(aShape, outShape), pb = broadcastPattern(bShape, outShape);
    if (pa && pb) {
      for (let i = 0; i < n; i++) {
        const ia = pa.kind === "repeat" ? i % pa.len : Math.floor(i / pa.len);
        const ib = pb.kind === "repeat" ? i % pb.len : Math.floor(i / pb.len);
        o[i] = f(A[ia], B[ib]);
      }
      return out;
    }
    const sa = broadcastStrides(aShape, outShape), sb = broadcastStrides(bShape, outShape);
    const rank = outShape.length, idx = new Array<number>(rank).fill(0);
    let ia = 0, ib = 0;
    for (let i = 0; i < n; i++) {
      o[i] = f(A[ia], B[ib]);
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        ia += sa[d];
        ib += sb[d];
        if (idx[d] < outShape[d]) break;
        ia -= sa[d] * outShape[d];
        ib -= sb[d] * outShape[d];
        idx[d] = 0;
      }
    }
    return out;
  }

  affine(x: Storage, scale: number, shift: number): Storage {
    const a = arr(x), out = this.#new(a.length), o = out.data;
    for (let i = 0; i < a.length; i++) o[i] = a[i] * scale + shift;
    return out;
  }

  axpy(y: Storage, x: Storage, alpha: number): void {
    const Y = arr(y), X = arr(x);
    if (Y.length !== X.length) throw new RangeError(`axpy: lengths ${Y.length} and ${X.length}`);
    for (let i = 0; i < Y.length; i++) Y[i] += alpha * X[i];
  }

  clamp(x: Storage, lo: number, hi: number): Storage {
    const a = arr(x), out = this.#new(a.length), o = out.data;
    for (let i = 0; i < a.length; i++) o[i] = a[i] < lo ? lo : a[i] > hi ? hi : a[i];
    return out;
  }

  reduceSum(x: Storage, shape: readonly number[], outShape: readonly number[]): Storage {
    const a = arr(x), out = this.#new(sizeOf(outShape)), o = out.data;
    const so = broadcastStrides(outShape, shape);
    const rank = shape.length, idx = new Array<number>(rank).fill(0);
    let io = 0;
    for (let i = 0; i < a.length; i++) {
      o[io] += a[i];
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        io += so[d];
        if (idx[d] < shape[d]) break;
        io -= so[d] * shape[d];
        idx[d] = 0;
      }
    }
    return out;
  }

  sumSquares(xs: readonly Storage[]): Storage {
    let s = 0;
    for (const x of xs) {
      const a = arr(x);
      for (let i = 0; i < a.length; i++) s += a[i] * a[i];
    }
    const out = this.#new(1);
    out.data[0] = s;
    return out;
  }

  permute(x: Storage, shape: readonly number[], perm: readonly number[]): Storage {
    const a = arr(x), out = this.#new(a.length), o = out.data;
    const rank = shape.length;
    const inStrides = new Array<number>(rank);
    let s = 1;
    for (let d = rank - 1; d >= 0; d--) {
      inStrides[d] = s;
      s *= shape[d];
    }
    const outShape = perm.map((p) => shape[p]);
    const st = perm.map((p) => inStrides[p]);
    const idx = new Array<number>(rank).fill(0);
    let ii = 0;
    for (let i = 0; i < o.length; i++) {
      o[i] = a[ii];
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        ii += st[d];
        if (idx[d] < outShape[d]) break;
        ii -= st[d] * outShape[d];
        idx[d] = 0;
      }
    }
    return out;
  }

  matmul(
    a: Storage,
    b: Storage,
    batch: number,
    m: number,
    k: number,
    n: number,
    transA: boolean,
    transB: boolean,
    batchA = true,
    batchB = true,
  ): Storage {
    const A = arr(a), B = arr(b), out = this.#new(batch * m * n), C = out.data;
    // Every case becomes C = A' B'^T with A' [m, k] and B' [n, k] row-major, so one blocked loop
    // (4 x 4 outputs per pass, both operands read along k) serves all four transpose cases.
    const at = new Float64Array(m * k), bt = new Float64Array(n * k);
    for (let bi = 0; bi < batch; bi++) {
      const ao = batchA ? bi * m * k : 0, bo = batchB ? bi * k * n : 0, co = bi * m * n;
      if (transA) transposeInto(A, ao, k, m, at);
      else at.set(A.subarray(ao, ao + m * k));
      if (transB) bt.set(B.subarray(bo, bo + n * k));
      else transposeInto(B, bo, k, n, bt);
      gemmNT(at, bt, C, co, m, n, k);
    }
    return out;
  }

  conv2d(x: Storage, w: Storage, bias: Storage | null, g: Conv2dGeometry): Storage {
    const X = arr(x), W = arr(w), Bv = bias ? arr(bias) : null;
    const { n, c, h, w: wd, o, kh, kw, stride, pad, oh, ow } = g;
    const out = this.#new(n * o * oh * ow), Y = out.data;
    for (let ni = 0; ni < n; ni++) {
      for (let oi = 0; oi < o; oi++) {
        const yo = (ni * o + oi) * oh * ow;
        if (Bv) Y.fill(Bv[oi], yo, yo + oh * ow);
        for (let ci = 0; ci < c; ci++) {
          const xo = (ni * c + ci) * h * wd;
          for (let ky = 0; ky < kh; ky++) {
            for (let kx = 0; kx < kw; kx++) {
              const wv = W[((oi * c + ci) * kh + ky) * kw + kx];
              for (let y = 0; y < oh; y++) {
                const iy = y * stride - pad + ky;
                if (iy < 0 || iy >= h) continue;
                for (let xx = 0; xx < ow; xx++) {
                  const ix = xx * stride - pad + kx;
                  if (ix < 0 || ix >= wd) continue;
                  Y[yo + y * ow + xx] += wv * X[xo + iy * wd + ix];
                }
              }
            }
          }
        }
      }
    }
    return out;
  }

  conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry): Storage {
    const D = arr(dy), W = arr(w);
    const { n, c, h, w: wd, o, kh, kw, stride, pad, oh, ow } = g;
    const out = this.#new(n * c * h * wd), DX = out.data;
    for (let ni = 0; ni < n; ni++) {
      for (let oi = 0; oi < o; oi++) {
        const yo = (ni * o + oi) * oh * ow;
        for (let ci = 0; ci < c; ci++) {
          const xo = (ni * c + ci) * h * wd;
          for (let ky = 0; ky < kh; ky++) {
            for (let kx = 0; kx < kw; kx++) {
              const wv = W[((oi * c + ci) * kh + ky) * kw + kx];
              for (let y = 0; y < oh; y++) {
                const iy = y * stride - pad + ky;
                if (iy < 0 || iy >= h) continue;
                for (let xx = 0; xx < ow; xx++) {
                  const ix = xx * stride - pad + kx;
                  if (ix < 0 || ix >= wd) continue;
                  DX[xo + iy * wd + ix] += wv * D[yo + y * ow + xx];
                }
              }
            }
          }
        }
      }
    }
    return out;
  }

  conv2dBackwardFilter(x: Storage, dy: Storage, g: Conv2dGeometry): Storage {
    const X = arr(x), D = arr(dy);
    const { n, c, h, w: wd, o, kh, kw, stride, pad, oh, ow } = g;
    const out = this.#new(o * c * kh * kw), DW = out.data;
    for (let ni = 0; ni < n; ni++) {
      for (let oi = 0; oi < o; oi++) {
        const yo = (ni * o + oi) * oh * ow;
        for (let ci = 0; ci < c; ci++) {
          const xo = (ni * c + ci) * h * wd;
          for (let ky = 0; ky < kh; ky++) {
            for (let kx = 0; kx < kw; kx++) {
              let s = 0;
              for (let y = 0; y < oh; y++) {
                const iy = y * stride - pad + ky;
                if (iy < 0 || iy >= h) continue;
                for (let xx = 0; xx < ow; xx++) {
                  const ix = xx * stride - pad + kx;
                  if (ix < 0 || ix >= wd) continue;
                  s += X[xo + iy * wd + ix] * D[yo + y * ow + xx];
                }
              }
              DW[((oi * c + ci) * kh + ky) * kw + kx] += s;
            }
          }
        }
      }
    }
    return out;
  }

  /** x, or x + shift broadcast over each (sample, channel) plane, in this backend's dtype. */
  #shifted(x: Storage, g: GroupNormGeometry, shift?: Storage): Arr {
    const X = arr(x);
    if (!shift) return X;
    const S = arr(shift), { n, c, hw } = g;
    checkGroupNormShift(g, S.length);
    const out = this.#make(X.length);
    for (let p = 0; p < n * c; p++) {
      for (let i = 0; i < hw; i++) out[p * hw + i] = X[p * hw + i] + S[p];
    }
    return out;
  }

  groupNorm(
    x: Storage,
    gamma: Storage,
    beta: Storage,
    g: GroupNormGeometry,
    shift?: Storage,
  ): GroupNormResult {
    const X = this.#shifted(x, g, shift), G = arr(gamma), Bt = arr(beta);
    const { n, c, hw, groups, eps } = g;
    const cpg = c / groups, size = cpg * hw;
    const y = this.#new(X.length), mean = this.#new(n * groups), rstd = this.#new(n * groups);
    for (let ni = 0; ni < n; ni++) {
      for (let gi = 0; gi < groups; gi++) {
        const base = (ni * c + gi * cpg) * hw;
        let s = 0;
        for (let i = 0; i < size; i++) s += X[base + i];
        const mu = s / size;
        let v = 0;
        for (let i = 0; i < size; i++) v += (X[base + i] - mu) ** 2;
        const r = 1 / Math.sqrt(v / size + eps);
        mean.data[ni * groups + gi] = mu;
        rstd.data[ni * groups + gi] = r;
        for (let cc = 0; cc < cpg; cc++) {
          const ch = gi * cpg + cc, sc = G[ch] * r, sh = Bt[ch] - mu * sc, o = base + cc * hw;
          if (g.silu) {
            for (let i = 0; i < hw; i++) y.data[o + i] = silu(X[o + i] * sc + sh);
          } else {
            for (let i = 0; i < hw; i++) y.data[o + i] = X[o + i] * sc + sh;
          }
        }
      }
    }
    return { y, mean, rstd };
  }

  groupNormBackward(
    dy: Storage,
    x: Storage,
    gamma: Storage,
    mean: Storage,
    rstd: Storage,
    g: GroupNormGeometry,
    beta?: Storage,
    shift?: Storage,
  ): GroupNormGrads {
    const X = this.#shifted(x, g, shift), G = arr(gamma), M = arr(mean), R = arr(rstd);
    const { n, c, hw, groups } = g;
    const cpg = c / groups, size = cpg * hw;
    const dx = this.#new(X.length), dgamma = this.#new(c), dbeta = this.#new(c);
    // The gradient at the affine's output: dy itself, or dy * silu'(z) with z recomputed.
    let D = arr(dy);
    if (g.silu) {
      if (!beta) throw new TypeError("groupNormBackward: a fused SiLU needs beta");
      const Bt = arr(beta), DZ = new Float64Array(X.length);
      for (let ni = 0; ni < n; ni++) {
        for (let gi = 0; gi < groups; gi++) {
          const mu = M[ni * groups + gi], r = R[ni * groups + gi];
          for (let cc = 0; cc < cpg; cc++) {
            const ch = gi * cpg + cc, o = (ni * c + ch) * hw;
            for (let i = 0; i < hw; i++) {
              DZ[o + i] = D[o + i] * siluGrad(G[ch] * (X[o + i] - mu) * r + Bt[ch]);
            }
          }
        }
      }
      D = DZ;
    }
    for (let ni = 0; ni < n; ni++) {
      for (let gi = 0; gi < groups; gi++) {
        const mu = M[ni * groups + gi], r = R[ni * groups + gi];
        const base = (ni * c + gi * cpg) * hw;
        let sd = 0, sdx = 0;
        for (let cc = 0; cc < cpg; cc++) {
          const ch = gi * cpg + cc, o = base + cc * hw;
          let db = 0, dg = 0;
          for (let i = 0; i < hw; i++) {
            const xh = (X[o + i] - mu) * r, d = D[o + i];
            db += d;
            dg += d * xh;
          }
          dbeta.data[ch] += db;
          dgamma.data[ch] += dg;
          sd += db * G[ch];
          sdx += dg * G[ch];
        }
        const md = sd / size, mdx = sdx / size;
        for (let cc = 0; cc < cpg; cc++) {
          const ch = gi * cpg + cc, o = base + cc * hw;
          for (let i = 0; i < hw; i++) {
            const xh = (X[o + i] - mu) * r;
            dx.data[o + i] = r * (D[o + i] * G[ch] - md - xh * mdx);
          }
        }
      }
    }
    if (!shift) return { dx, dgamma, dbeta };
    // d(x + shift) is dx; the shift's gradient sums it over each plane.
    const dshift = this.#new(n * c);
    for (let p = 0; p < n * c; p++) {
      let s = 0;
      for (let i = 0; i < hw; i++) s += dx.data[p * hw + i];
      dshift.data[p] = s;
    }
    return { dx, dgamma, dbeta, dshift };
  }

  softmax(x: Storage, rows: number, cols: number): Storage {
    const X = arr(x), out = this.#new(rows * cols), Y = out.data;
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let mx = -Infinity;
      for (let j = 0; j < cols; j++) mx = Math.max(mx, X[o + j]);
      let s = 0;
      for (let j = 0; j < cols; j++) s += Y[o + j] = Math.exp(X[o + j] - mx);
      for (let j = 0; j < cols; j++) Y[o + j] /= s;
    }
    return out;
  }

  softmaxBackward(y: Storage, dy: Storage, rows: number, cols: number): Storage {
    const Y = arr(y), D = arr(dy), out = this.#new(rows * cols), DX = out.data;
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let s = 0;
      for (let j = 0; j < cols; j++) s += Y[o + j] * D[o + j];
      for (let j = 0; j < cols; j++) DX[o + j] = Y[o + j] * (D[o + j] - s);
    }
    return out;
  }

  upsampleNearest(x: Storage, planes: number, h: number, w: number, factor: number): Storage {
    const X = arr(x), H = h * factor, W = w * factor, out = this.#new(planes * H * W), Y = out.data;
    for (let p = 0; p < planes; p++) {
      for (let y = 0; y < H; y++) {
        const src = p * h * w + Math.floor(y / factor) * w, dst = (p * H + y) * W;
        for (let xx = 0; xx < W; xx++) Y[dst + xx] = X[src + Math.floor(xx / factor)];
      }
    }
    return out;
  }

  upsampleNearestBackward(
    dy: Storage,
    planes: number,
    h: number,
    w: number,
    factor: number,
  ): Storage {
    const D = arr(dy),
      H = h * factor,
      W = w * factor,
      out = this.#new(planes * h * w),
      X = out.data;
    for (let p = 0; p < planes; p++) {
      for (let y = 0; y < H; y++) {
        const dst = p * h * w + Math.floor(y / factor) * w, src = (p * H + y) * W;
        for (let xx = 0; xx < W; xx++) X[dst + Math.floor(xx / factor)] += D[src + xx];
      }
    }
    return out;
  }

  concat(xs: readonly Storage[], outer: number, sizes: readonly number[], inner: number): Storage {
    const total = sizes.reduce((a, b) => a + b, 0), out = this.#new(outer * total * inner);
    const O = out.data;
    let off = 0;
    xs.forEach((x, i) => {
      const X = arr(x), len = sizes[i] * inner;
      for (let o = 0; o < outer; o++) {
        O.set(X.subarray(o * len, (o + 1) * len), o * total * inner + off);
      }
      off += len;
    });
    return out;
  }

  slice(
    x: Storage,
    outer: number,
    axis: number,
    start: number,
    len: number,
    inner: number,
  ): Storage {
    const X = arr(x), out = this.#new(outer * len * inner), O = out.data;
    for (let o = 0; o < outer; o++) {
      const src = (o * axis + start) * inner;
      O.set(X.subarray(src, src + len * inner), o * len * inner);
    }
    return out;
  }

  gather(table: Storage, index: Storage): Storage {
    const T = arr(table), I = arr(index), out = this.#new(I.length);
    for (let i = 0; i < I.length; i++) out.data[i] = T[I[i]];
    return out;
  }

  gatherRows(src: Storage, index: Storage, rowSize: number): Storage {
    const S = arr(src), I = arr(index), out = this.#new(I.length * rowSize);
    for (let i = 0; i < I.length; i++) {
      const r = I[i] * rowSize;
      out.data.set(S.subarray(r, r + rowSize), i * rowSize);
    }
    return out;
  }

  loss(kind: LossKind, pred: Storage, target: Storage, delta: number): Storage {
    const P = arr(pred), T = arr(target);
    let s = 0;
    for (let i = 0; i < P.length; i++) {
      const d = P[i] - T[i], a = Math.abs(d);
      s += kind === "l2"
        ? d * d
        : kind === "l1"
        ? a
        : a <= delta
        ? 0.5 * d * d
        : delta * (a - 0.5 * delta);
    }
    const out = this.#new(1);
    out.data[0] = s / P.length;
    return out;
  }

  lossBackward(
    kind: LossKind,
    pred: Storage,
    target: Storage,
    delta: number,
    scale: Storage,
  ): Storage {
    const P = arr(pred), T = arr(target), k = arr(scale)[0] / P.length;
    const out = this.#new(P.length), O = out.data;
    for (let i = 0; i < P.length; i++) {
      const d = P[i] - T[i];
      O[i] = k *
        (kind === "l2"
          ? 2 * d
          : kind === "l1"
          ? Math.sign(d)
          : Math.abs(d) <= delta
          ? d
          : delta * Math.sign(d));
    }
    return out;
  }

  adam(params: Storage, grads: Storage, m: Storage, v: Storage, s: AdamSettings): void {
    const P = arr(params), G = arr(grads), M = arr(m), V = arr(v);
    let gs = 1;
    if (s.clip) {
      const norm = Math.sqrt(arr(s.clip.gradSquaredNorm)[0]);
      if (norm > s.clip.maxNorm) gs = s.clip.maxNorm / norm;
    }
    const bc1 = 1 - s.beta1 ** s.step, bc2 = 1 - s.beta2 ** s.step;
    const wd = s.weightDecay;
    for (let i = 0; i < P.length; i++) {
      let g = G[i] * gs;
      if (!s.decoupled && wd !== 0) g += wd * P[i];
      M[i] = s.beta1 * M[i] + (1 - s.beta1) * g;
      V[i] = s.beta2 * V[i] + (1 - s.beta2) * g * g;
      let p = P[i];
      if (s.decoupled && wd !== 0) p -= s.lr * wd * p;
      P[i] = p - s.lr * (M[i] / bc1) / (Math.sqrt(V[i] / bc2) + s.eps);
    }
  }

  ema(target: Storage, source: Storage, decay: number): void {
    const T = arr(target), S = arr(source);
    for (let i = 0; i < T.length; i++) T[i] = decay * T[i] + (1 - decay) * S[i];
  }

  randomUniform(out: Storage, draw: RandomDraw): void {
    fillUniform(arr(out), draw);
  }

  randomNormal(out: Storage, draw: RandomDraw): void {
    fillNormal(arr(out), draw);
  }

  randomInt(out: Storage, draw: RandomDraw, lo: number, hi: number): void {
    const o = arr(out), u = new Float64Array(o.length);
    fillUniform(u, draw);
    for (let i = 0; i < o.length; i++) o[i] = uniformToInt(u[i], lo, hi);
  }

  flush(): void {}

  dispose(): void {}
}
