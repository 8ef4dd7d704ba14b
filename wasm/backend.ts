/**
 * The `wasm` backend: AssemblyScript kernels compiled to WebAssembly SIMD (relaxed SIMD's fused
 * multiply-add where the engine accepts it), every tensor in one WebAssembly memory managed by a
 * host-side allocator (wasm/heap.ts). Host code only schedules kernels: nothing runs per element
 * in JavaScript.
 *
 * Large kernels are split over worker threads that share the memory (wasm/threads.ts): each kernel
 * takes the range of rows or elements it computes, the main thread computes one share and joins
 * the others with Atomics. The split never changes a result: one thread and many give the same
 * bits. Where shared memory is unavailable, or with `threads: 1`, everything runs on the calling
 * thread.
 *
 * The module is embedded (wasm/embedded.ts), so importing this file by path or by URL needs no
 * build step and no permission.
 *
 * @module
 */

import {
  type AdamBuffers,
  type AdamSettings,
  type Backend,
  BINARY_OPS,
  type BinaryOp,
  type BroadcastShapes,
  checkGroupNormShift,
  type ConcatSpec,
  type Conv2dGeometry,
  fullMatmulSpec,
  type GroupNormGeometry,
  type GroupNormGrads,
  type GroupNormParams,
  type GroupNormResult,
  type GroupNormSaved,
  LOSS_KINDS,
  type LossSpec,
  type MatmulSpec,
  NON_DIFFERENTIABLE_UNARY_OPS,
  type RandomDraw,
  type SliceSpec,
  type Storage,
  UNARY_OPS,
  type UnaryOp,
  type UpsampleSpec,
} from "../src/backend.ts";
import { seedKey } from "../src/random.ts";
import { Heap } from "./heap.ts";
import { instantiate, kernelModule, type Kernels } from "./kernels.ts";
import { MAX_CHUNKS, ThreadPool } from "./threads.ts";
import { sizeOf } from "../src/shape.ts";
import { broadcastStrides, mergeAxes, rowMajorStrides } from "../src/backends/strides.ts";

const PAGE = 65536;
/** Bytes of the block where the host writes small parameters (shapes, strides, geometry). */
const PARAMS_BYTES = 1024;
/** Ranks above this (after merging axes) are refused. */
const MAX_RANK = (PARAMS_BYTES / 4 - 1) / 3 | 0;
/** Element-wise work below this many elements stays on one thread (by default). */
const PARALLEL_ELEMENTS = 1 << 15;
/** GEMMs below this many multiply-adds stay on one thread (by default). */
const PARALLEL_MACS = 1 << 17;
/** Chunks a split kernel is cut into per thread (more balance under load, more overhead). */
const CHUNKS_PER_THREAD = 4;

/** The kernels that can be split over threads, by index (the workers' job table). */
const PARALLEL_KERNELS = [
  "gemm",
  "flipFilter",
  "im2col",
  "col2im",
  "convFilterGrad",
  "unary",
  "unaryBackward",
  "binary",
  "affine",
  "axpy",
  "clamp",
  "permute",
  "copyRows",
  "fillRows",
  "gather",
  "gatherRows",
  "upsampleNearest",
  "upsampleNearestBackward",
  "upsample2Backward",
  "groupNorm",
  "groupNormBackward",
  "softmax",
  "softmaxBackward",
  "lossBackward",
  "adam",
  "ema",
  "randomUniform",
  "randomNormal",
  "randomInt",
  "winogradFilter",
  "winogradConv",
  "winogradFilterGrad",
  "directConv",
  "convDataPerImage",
  "gemmSkinnyN",
  "gemmSkinnyK",
] as const;
type ParallelKernel = typeof PARALLEL_KERNELS[number];
const KERNEL_INDEX = new Map<string, number>(PARALLEL_KERNELS.map((n, i) => [n, i]));

/**
 * The kernels' op codes are the positions in the one list of each (the AssemblyScript kernels
 * switch on the same numbers: wasm/assembly/elementwise.ts, and wasm/assembly/optim.ts for the
 * losses).
 */
const codes = <T extends string>(list: readonly T[]) =>
  Object.fromEntries(list.map((op, i) => [op, i])) as Record<T, number>;
const UNARY_CODES = codes(UNARY_OPS);
const BINARY_CODES = codes(BINARY_OPS);
const LOSS_CODES = codes(LOSS_KINDS);

/** An allocation in the memory. */
class Block {
  readonly ptr: number;
  readonly bytes: number;
  freed = false;
  constructor(ptr: number, bytes: number) {
    this.ptr = ptr;
    this.bytes = bytes;
  }
}

/** Storage of the wasm backend: `length` float32 values at byte offset `ptr` of the memory. */
export class WasmStorage implements Storage {
  /** Number of elements. */
  readonly length: number;
  /** Byte offset in the memory. */
  readonly ptr: number;
  /** The allocation this storage lives in. */
  readonly block: Block;
  /** True for a view of another storage (freeing it does nothing). */
  readonly isView: boolean;
  /** The backend that owns it. */
  readonly owner: WasmBackend;
  /** Wraps an allocation; use the backend's methods to make storage. */
  constructor(owner: WasmBackend, block: Block, ptr: number, length: number, isView: boolean) {
    this.owner = owner;
    this.block = block;
    this.ptr = ptr;
    this.length = length;
    this.isView = isView;
  }
}

/** Options of the wasm backend. */
export interface WasmBackendOptions {
  /**
   * Threads to split large kernels over (default: the number of cores, at most 8). With 1, or
   * where shared WebAssembly memory is unavailable, everything runs on the calling thread; the
   * results are the same either way.
   */
  threads?: number;
  /**
   * Work below which a kernel stays on one thread: elements for element-wise kernels,
   * multiply-adds for GEMMs (default 32768 and 131072; tests use 0 to split everything).
   */
  parallelThreshold?: number;
  /**
   * Milliseconds without parallel work after which the worker threads stop (default 300; they
   * start again on demand). Deno keeps a process alive while it has workers.
   */
  threadIdleMs?: number;
  /** Force the relaxed-SIMD (true) or plain-SIMD (false) build; default: relaxed where valid. */
  relaxedSimd?: boolean;
  /** Initial memory in MiB (default 16); it grows as needed. */
  initialMiB?: number;
  /** The most memory the backend may use, in MiB (default 4096, the 32-bit limit). */
  maxMiB?: number;
  /**
   * 3x3 stride-1 pad-1 convolutions by Winograd: the forward and input gradient by F(2x2, 3x3),
   * the filter gradient by F(3x3, 2x2); `"auto"` (default) where it was measured faster, `true`
   * always, `false` never.
   */
  winograd?: boolean | "auto";
  /**
   * The output tile of the Winograd forward and input gradient: 4 for F(4x4, 3x3) (36
   * multiply-adds per 16 outputs against F(2x2, 3x3)'s 64, with larger transforms), 2 for
   * F(2x2, 3x3), `"auto"` (default) for 4 where it was measured faster.
   */
  winogradTile?: 2 | 4 | "auto";
  /**
   * The convolution shortcuts (default true): a direct kernel for few output channels or one
   * input channel, and the input gradient of strided convolutions split over threads by images;
   * false runs those shapes by the GEMM paths as before (for comparison).
   */
  convShortcuts?: boolean;
  /**
   * The skinny GEMM kernels (default true): matrix products with at most 4 columns or an inner
   * size of at most 4 by plain SIMD loops instead of the packed GEMM; false for comparison.
   */
  skinnyGemm?: boolean;
}

/** The wasm backend. Create it with {@link createWasmBackend} (or `new WasmBackend()`). */
export class WasmBackend implements Backend {
  /** Always `"wasm"`. */
  readonly name = "wasm" as const;
  /** Always `"float32"`. */
  readonly dtype = "float32" as const;
  /** True when the relaxed-SIMD build runs. */
  readonly relaxedSimd: boolean;
  /** Threads that compute (the calling one included). */
  readonly threads: number;
  readonly #memory: WebAssembly.Memory;
  readonly #heap: Heap;
  readonly #k: Kernels;
  readonly #pool: ThreadPool | null;
  readonly #minElements: number;
  readonly #minMacs: number;
  readonly #winograd: boolean | "auto";
  readonly #winogradTile: 2 | 4 | "auto";
  readonly #shortcuts: boolean;
  readonly #skinnyGemm: boolean;
  #f32: Float32Array;
  #i32: Int32Array;
  #scopes: Block[][] = [];
  #work: number[] = [];
  #disposed = false;
  /** Byte offsets of the parameter block and of the convolution geometry block. */
  readonly #params: number;
  readonly #geo: number;

  /**
   * A backend with its own memory. Synchronous: worker threads start in the background and take
   * work once they listen (see {@link createWasmBackend}, which waits for them).
   */
  constructor(options: WasmBackendOptions = {}) {
    const wanted = Math.max(
      1,
      Math.min(64, Math.floor(options.threads ?? Math.min(8, navigator.hardwareConcurrency || 1))),
    );
    const maxPages = Math.min(65536, Math.floor(((options.maxMiB ?? 4096) * 2 ** 20) / PAGE));
    const initial = Math.min(
      maxPages,
      Math.max(2, Math.ceil(((options.initialMiB ?? 16) * 2 ** 20) / PAGE)),
    );
    let memory: WebAssembly.Memory | null = null;
    if (wanted > 1) {
      try {
        memory = new WebAssembly.Memory({ initial, maximum: maxPages, shared: true });
      } catch {
        memory = null; // no shared memory here: one thread
      }
    }
    const shared = memory !== null;
    this.#memory = memory ?? new WebAssembly.Memory({ initial });
    const choice = kernelModule(shared, options.relaxedSimd);
    this.relaxedSimd = choice.relaxed;
    this.threads = shared ? wanted : 1;
    this.#f32 = new Float32Array(this.#memory.buffer);
    this.#i32 = new Int32Array(this.#memory.buffer);
    this.#k = instantiate(choice.module, this.#memory);
    this.#heap = new Heap(this.#memory, this.#k.heapBase(), maxPages, () => {
      this.#f32 = new Float32Array(this.#memory.buffer);
      this.#i32 = new Int32Array(this.#memory.buffer);
    });
    this.#params = this.#heap.alloc(PARAMS_BYTES);
    this.#geo = this.#heap.alloc(64);
    this.#minElements = options.parallelThreshold ?? PARALLEL_ELEMENTS;
    this.#minMacs = options.parallelThreshold ?? PARALLEL_MACS;
    this.#winograd = options.winograd ?? "auto";
    const tile = options.winogradTile ?? "auto";
    if (tile !== 2 && tile !== 4 && tile !== "auto") {
      throw new RangeError(`wasm backend: winogradTile must be 2, 4 or "auto", got ${tile}`);
    }
    this.#winogradTile = tile;
    this.#shortcuts = options.convShortcuts ?? true;
    this.#skinnyGemm = options.skinnyGemm ?? true;
    this.#pool = shared
      ? new ThreadPool(
        choice.module,
        this.#memory,
        (bytes) => this.#heap.alloc(bytes),
        this.threads - 1,
        this.#k as unknown as Record<string, unknown>,
        PARALLEL_KERNELS,
        { idleMs: options.threadIdleMs },
      )
      : null;
  }

  /** Starts the worker threads and resolves once they take work (at once with one thread). */
  ready(): Promise<void> {
    return this.#pool ? this.#pool.start() : Promise.resolve();
  }

  /**
   * Runs kernel `name` over [0, total): on this thread alone when the workers do not listen or
   * `total` is below `min`, otherwise cut into chunks (multiples of `grain`, a few per thread)
   * that every thread claims in turn. `args(begin, end)` gives the kernel's arguments, with begin
   * and end at `beginArg` and `beginArg + 1` (default: the last two); `perThread` gives a value
   * each thread passes as the last argument instead (its GEMM scratch).
   */
  #par(
    name: ParallelKernel,
    total: number,
    grain: number,
    min: number,
    args: (begin: number, end: number) => number[],
    beginArg?: number,
    perThread?: (thread: number) => number,
  ): void {
    const fn = this.#k[name] as (...a: number[]) => void;
    const pool = this.#pool;
    const own = perThread ? (a: number[], t: number) => (a[a.length - 1] = perThread(t), a) : null;
    if (pool === null || total < min || total <= grain || !pool.active()) {
      const a = args(0, total);
      fn(...(own ? own(a, 0) : a));
      return;
    }
    const units = Math.ceil(total / grain);
    const chunks = Math.min(units, this.threads * CHUNKS_PER_THREAD, MAX_CHUNKS);
    const bounds = new Array<number>(chunks + 1);
    for (let c = 0; c <= chunks; c++) {
      bounds[c] = Math.min(total, Math.round((units * c) / chunks) * grain);
    }
    const template = args(0, total);
    const ownValues = perThread ? Array.from({ length: this.threads }, (_, t) => perThread(t)) : [];
    pool.run(
      KERNEL_INDEX.get(name)!,
      template,
      beginArg ?? template.length - 2,
      bounds,
      perThread ? template.length - 1 : -1,
      ownValues,
    );
  }

  /**
   * {@link #par} for a kernel that takes a scratch block as its last argument: split over the
   * threads when the work (`macs` multiply-adds) is large enough, with one block of `bytes` for
   * each thread that runs, freed afterwards.
   */
  #parScratch(
    name: ParallelKernel,
    total: number,
    grain: number,
    macs: number,
    bytes: number,
    args: (begin: number, end: number) => number[],
    beginArg: number,
  ): void {
    const parallel = this.#pool !== null && this.#pool.active() && macs >= this.#minMacs;
    const scratch = Array.from(
      { length: parallel ? this.threads : 1 },
      () => this.#heap.alloc(bytes),
    );
    try {
      this.#par(name, total, grain, parallel ? 0 : Infinity, args, beginArg, (t) => scratch[t]);
    } finally {
      for (const b of scratch) this.#heap.free(b, bytes);
    }
  }

  /** An element-wise kernel over [0, n), split over threads when large. */
  #each(name: ParallelKernel, n: number, args: (begin: number, end: number) => number[]): void {
    this.#par(name, n, 16, this.#minElements, args);
  }

  /** The allocator (for tests and statistics). */
  get heap(): Heap {
    return this.#heap;
  }

  // ---- memory -----------------------------------------------------------------------------

  #block(bytes: number): Block {
    if (this.#disposed) throw new Error("wasm backend: used after dispose()");
    const b = new Block(this.#heap.alloc(bytes), bytes);
    const top = this.#scopes[this.#scopes.length - 1];
    if (top) top.push(b);
    return b;
  }

  #new(length: number): WasmStorage {
    if (!Number.isInteger(length) || length < 0) {
      throw new RangeError(`wasm backend: cannot allocate ${length} elements`);
    }
    const b = this.#block(length * 4);
    return new WasmStorage(this, b, b.ptr, length, false);
  }

  /** Checks that `s` is live storage of this backend and returns it. */
  #s(s: Storage): WasmStorage {
    if (!(s instanceof WasmStorage) || s.owner !== this) {
      throw new TypeError("wasm backend: got storage from another backend");
    }
    if (s.block.freed) throw new Error("wasm backend: storage used after it was freed");
    return s;
  }

  #p(s: Storage): number {
    return this.#s(s).ptr;
  }

  alloc(length: number): Storage {
    const s = this.#new(length);
    this.#f32.fill(0, s.ptr >> 2, (s.ptr >> 2) + length);
    return s;
  }

  upload(data: ArrayLike<number>): Storage {
    const s = this.#new(data.length);
    this.#f32.set(data, s.ptr >> 2);
    return s;
  }

  write(dst: Storage, data: ArrayLike<number>, offset = 0): void {
    const d = this.#s(dst);
    if (offset < 0 || offset + data.length > d.length) {
      throw new RangeError(
        `write of ${data.length} values at ${offset} is outside storage of ${d.length}`,
      );
    }
    this.#f32.set(data, (d.ptr >> 2) + offset);
  }

  read(src: Storage): Promise<Float32Array> {
    const s = this.#s(src);
    return Promise.resolve(this.#f32.slice(s.ptr >> 2, (s.ptr >> 2) + s.length));
  }

  view(src: Storage, offset: number, length: number): Storage {
    const s = this.#s(src);
    if (offset < 0 || length < 0 || offset + length > s.length) {
      throw new RangeError(
        `view [${offset}, ${offset + length}) is outside storage of ${s.length}`,
      );
    }
    return new WasmStorage(this, s.block, s.ptr + offset * 4, length, true);
  }

  free(s: Storage): void {
    const w = this.#s(s);
    if (w.isView) return;
    w.block.freed = true;
    this.#heap.free(w.block.ptr, w.block.bytes);
  }

  beginScope(): void {
    this.#scopes.push([]);
  }

  endScope(keep: readonly Storage[] = []): void {
    const blocks = this.#scopes.pop();
    if (!blocks) throw new Error("wasm backend: endScope() without beginScope()");
    const kept = new Set<Block>();
    for (const k of keep) kept.add(this.#s(k).block);
    const parent = this.#scopes[this.#scopes.length - 1];
    for (const b of blocks) {
      if (b.freed) continue;
      if (kept.has(b)) {
        parent?.push(b);
      } else {
        b.freed = true;
        this.#heap.free(b.ptr, b.bytes);
      }
    }
  }

  fill(dst: Storage, value: number): void {
    const d = this.#s(dst);
    this.#f32.fill(value, d.ptr >> 2, (d.ptr >> 2) + d.length);
  }

  copy(dst: Storage, src: Storage): void {
    const d = this.#s(dst), s = this.#s(src);
    if (d.length !== s.length) throw new RangeError(`copy: lengths ${d.length} and ${s.length}`);
    this.#f32.copyWithin(d.ptr >> 2, s.ptr >> 2, (s.ptr >> 2) + s.length);
  }

  /** Writes i32 values into the parameter block. */
  #setParams(values: readonly number[]): number {
    this.#i32.set(values, this.#params >> 2);
    return this.#params;
  }

  /** Writes an n-d loop description: rank, shape, then each stride list. */
  #loop(shape: readonly number[], strides: readonly (readonly number[])[]): number {
    if (shape.length > MAX_RANK) {
      throw new RangeError(`wasm backend: rank ${shape.length} is above ${MAX_RANK}`);
    }
    return this.#setParams([shape.length, ...shape, ...strides.flat()]);
  }

  // ---- element-wise -----------------------------------------------------------------------

  unary(op: UnaryOp, x: Storage): Storage {
    const code = UNARY_CODES[op];
    if (code === undefined) throw new Error(`unknown unary op ${op}`);
    const xs = this.#s(x), out = this.#new(xs.length);
    this.#each("unary", xs.length, (b, e) => [code, xs.ptr, out.ptr, b, e]);
    return out;
  }

  unaryBackward(op: UnaryOp, x: Storage, dy: Storage): Storage {
    const code = UNARY_CODES[op];
    if (code === undefined || NON_DIFFERENTIABLE_UNARY_OPS.has(op)) {
      throw new Error(`unary op ${op} has no gradient`);
    }
    const xs = this.#s(x), dp = this.#p(dy), out = this.#new(xs.length);
    this.#each("unaryBackward", xs.length, (b, e) => [code, xs.ptr, dp, out.ptr, b, e]);
    return out;
  }

  binary(op: BinaryOp, a: Storage, b: Storage, shapes: BroadcastShapes): Storage {
    const { a: aShape, b: bShape, out: outShape } = shapes;
    const code = BINARY_CODES[op];
    if (code === undefined) throw new Error(`unknown binary op ${op}`);
    const as = this.#s(a), bs = this.#s(b);
    const n = sizeOf(outShape), out = this.#new(n);
    if (n === 0) return out;
    let loop;
    if (as.length === n && bs.length === n) {
      loop = { shape: [n], strides: [[1], [1]] };
    } else {
      loop = mergeAxes(outShape, [
        broadcastStrides(aShape, outShape),
        broadcastStrides(bShape, outShape),
      ]);
    }
    const params = this.#loop(loop.shape, loop.strides);
    const rank = loop.shape.length, len = loop.shape[rank - 1];
    if (rank === 1) {
      this.#each("binary", n, (b0, e0) => [code, as.ptr, bs.ptr, out.ptr, params, b0, e0]);
    } else {
      this.#par(
        "binary",
        n / len,
        1,
        Math.ceil(this.#minElements / len),
        (b0, e0) => [code, as.ptr, bs.ptr, out.ptr, params, b0, e0],
      );
    }
    return out;
  }

  affine(x: Storage, scale: number, shift: number): Storage {
    const xs = this.#s(x), out = this.#new(xs.length);
    this.#each("affine", xs.length, (b, e) => [xs.ptr, out.ptr, scale, shift, b, e]);
    return out;
  }

  axpy(y: Storage, x: Storage, alpha: number): void {
    const ys = this.#s(y), xs = this.#s(x);
    if (ys.length !== xs.length) {
      throw new RangeError(`axpy: lengths ${ys.length} and ${xs.length}`);
    }
    this.#each("axpy", ys.length, (b, e) => [ys.ptr, xs.ptr, alpha, b, e]);
  }

  clamp(x: Storage, lo: number, hi: number): Storage {
    const xs = this.#s(x), out = this.#new(xs.length);
    this.#each("clamp", xs.length, (b, e) => [xs.ptr, out.ptr, lo, hi, b, e]);
    return out;
  }

  reduceSum(x: Storage, shape: readonly number[], outShape: readonly number[]): Storage {
    const xs = this.#s(x), out = this.alloc(sizeOf(outShape)) as WasmStorage;
    const n = sizeOf(shape);
    if (n === 0) return out;
    const loop = mergeAxes(shape, [rowMajorStrides(shape), broadcastStrides(outShape, shape)]);
    const params = this.#loop(loop.shape, [loop.strides[1]]);
    const rows = n / loop.shape[loop.shape.length - 1];
    // Rows may add into the same outputs: one thread.
    this.#k.reduceSum(xs.ptr, out.ptr, params, 0, rows);
    return out;
  }

  sumSquares(xs: readonly Storage[]): Storage {
    let s = 0;
    for (const x of xs) {
      const w = this.#s(x);
      s += this.#k.sumSquares(w.ptr, 0, w.length);
    }
    return this.upload([s]);
  }

  permute(x: Storage, shape: readonly number[], perm: readonly number[]): Storage {
    const xs = this.#s(x), out = this.#new(xs.length);
    if (xs.length === 0) return out;
    const inStrides = rowMajorStrides(shape);
    const outShape = perm.map((p) => shape[p]);
    const loop = mergeAxes(outShape, [rowMajorStrides(outShape), perm.map((p) => inStrides[p])]);
    const params = this.#loop(loop.shape, [loop.strides[1]]);
    const len = loop.shape[loop.shape.length - 1];
    this.#par(
      "permute",
      xs.length / len,
      1,
      Math.ceil(this.#minElements / len),
      (b, e) => [xs.ptr, out.ptr, params, b, e],
    );
    return out;
  }

  // ---- linear algebra ---------------------------------------------------------------------

  /** Thread t's GEMM scratch; every thread's is allocated at once, outside every scope. */
  #workspace(t: number): number {
    while (this.#work.length < this.threads) {
      this.#work.push(this.#heap.alloc(this.#k.gemmWorkspaceBytes()));
    }
    return this.#work[t];
  }

  /**
   * C[m x n] (+)= A' B' (see wasm/assembly/gemm.ts for the modes), split over threads by columns
   * (multiples of the 8-wide micro-tile) or by rows (multiples of 6), whichever is larger.
   */
  #gemm(
    m: number,
    n: number,
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
  ): void {
    const geo = this.#geo, work = (t: number) => this.#workspace(t);
    const min = m * n * k >= this.#minMacs ? 0 : Infinity;
    if (n < m) {
      const rest = [k, a, ars, acs, bmode, b, brs, bcs, c, ldc, accumulate, geo, 0, 0];
      this.#par("gemm", m, 6, min, (i0, i1) => [i0, i1, 0, n, ...rest], 0, work);
      return;
    }
    // Split by columns: every chunk needs all of A', so pack it once for all threads.
    const shared = min === 0 && this.#pool?.active() && n > 8;
    const apacked = shared ? this.#heap.alloc(Math.ceil(m / 6) * 6 * k * 4) : 0;
    if (apacked) this.#k.packAAll(a, ars, acs, m, k, apacked);
    const rest = [k, a, ars, acs, bmode, b, brs, bcs, c, ldc, accumulate, geo, apacked, 0];
    try {
      this.#par("gemm", n, 8, min, (j0, j1) => [0, m, j0, j1, ...rest], 2, work);
    } finally {
      if (apacked) this.#heap.free(apacked, Math.ceil(m / 6) * 6 * k * 4);
    }
  }

  /**
   * Whether a GEMM runs by a skinny kernel: 1 for few columns (n <= 4, rows of A' contiguous), 2
   * for a short inner size (k <= 4), 0 for the packed GEMM, whose packing and 6x8 tiles waste
   * most of their work there. Measured (backend.matmul with allocation, row-major, the old and new
   * module in one process, median of 7, 1 thread, on a loaded 2-core machine; GFLOP/s, packed ->
   * skinny): 64x256 -> 2 2.2 -> 13.4, 10000x256 -> 2 3.8 -> 8.9, 64x3 -> 256 5.4 -> 9.0,
   * 10000x3 -> 256 5.9 -> 9.1 (the last two store-bound). Other shapes were not measured.
   */
  #skinny(m: number, n: number, k: number, transA: boolean): number {
    if (n <= 4 && !transA && k >= 4) return 1;
    if (k <= 4 && m >= 4) return 2;
    return 0;
  }

  /** C[m x n] = A' B' by gemmSkinnyN (kind 1) or gemmSkinnyK (2), split over threads by rows. */
  #matmulSkinny(
    kind: number,
    m: number,
    n: number,
    k: number,
    a: number,
    ars: number,
    acs: number,
    b: number,
    brs: number,
    bcs: number,
    c: number,
  ): void {
    const min = m * n * k >= this.#minMacs ? 0 : Infinity;
    // B' with the layout the kernel reads: rows of k (kind 1) or of n (kind 2) contiguous.
    const want = kind === 1 ? brs === 1 : bcs === 1;
    let tmp = 0;
    if (!want) {
      tmp = this.#heap.alloc(n * k * 4);
      const f = this.#f32, src = b >> 2, dst = tmp >> 2;
      for (let p = 0; p < k; p++) {
        for (let j = 0; j < n; j++) {
          const v = f[src + p * brs + j * bcs];
          f[dst + (kind === 1 ? j * k + p : p * n + j)] = v;
        }
      }
    }
    const bq = tmp || b;
    try {
      if (kind === 1) {
        const bts = tmp ? k : bcs;
        this.#par("gemmSkinnyN", m, 4, min, (i0, i1) => [a, ars, bq, bts, n, k, c, n, i0, i1]);
      } else {
        const bps = tmp ? n : brs;
        this.#par("gemmSkinnyK", m, 4, min, (i0, i1) => [a, ars, acs, bq, bps, n, k, c, n, i0, i1]);
      }
    } finally {
      if (tmp) this.#heap.free(tmp, n * k * 4);
    }
  }

  matmul(a: Storage, b: Storage, spec: MatmulSpec): Storage {
    const { batch, m, k, n, transA, transB, batchA, batchB } = fullMatmulSpec(spec);
    const ap = this.#p(a), bp = this.#p(b);
    // The GEMM writes every output unless k = 0, when the product is zeros.
    const out = k === 0 ? this.alloc(batch * m * n) as WasmStorage : this.#new(batch * m * n);
    if (m === 0 || n === 0 || k === 0) return out;
    const ars = transA ? 1 : k, acs = transA ? m : 1;
    const brs = transB ? 1 : n, bcs = transB ? k : 1;
    const skinny = this.#skinnyGemm ? this.#skinny(m, n, k, transA) : 0;
    for (let bi = 0; bi < batch; bi++) {
      if (skinny) {
        const bb = bp + (batchB ? bi * k * n * 4 : 0);
        this.#matmulSkinny(
          skinny,
          m,
          n,
          k,
          ap + (batchA ? bi * m * k * 4 : 0),
          ars,
          acs,
          bb,
          brs,
          bcs,
          out.ptr + bi * m * n * 4,
        );
        continue;
      }
      this.#gemm(
        m,
        n,
        k,
        ap + (batchA ? bi * m * k * 4 : 0),
        ars,
        acs,
        0,
        bp + (batchB ? bi * k * n * 4 : 0),
        brs,
        bcs,
        out.ptr + bi * m * n * 4,
        n,
        0,
      );
    }
    return out;
  }

  // ---- convolution ------------------------------------------------------------------------

  #geometry(g: Omit<Conv2dGeometry, "n">, xstride = 0, cstride = 0): void {
    this.#i32.set(
      [g.c, g.h, g.w, g.kh, g.kw, g.stride, g.pad, g.oh, g.ow, xstride, cstride],
      this.#geo >> 2,
    );
  }

  /**
   * out[n] (+)= A' times the im2col view of image n of `x`, for the whole batch in one GEMM
   * (mode 2: columns run over (n, oy, ox)); `g` is the geometry of the convolution computed, with
   * `g.o` rows of A'.
   */
  #batchedConv(
    g: Conv2dGeometry,
    a: number,
    ars: number,
    acs: number,
    x: number,
    out: number,
    accumulate: number,
  ): void {
    const ohw = g.oh * g.ow;
    this.#geometry(g, g.c * g.h * g.w, g.o * ohw);
    this.#gemm(g.o, g.n * ohw, g.c * g.kh * g.kw, a, ars, acs, 2, x, 0, 0, out, ohw, accumulate);
  }

  /**
   * Whether a convolution of geometry g with cin input and cout output channels (the forward one,
   * or the input gradient's as a forward convolution) runs by Winograd F(2x2, 3x3).
   */
  #useWinograd(g: Conv2dGeometry, cin: number, cout: number): boolean {
    if (g.kh !== 3 || g.kw !== 3 || g.stride !== 1 || g.pad !== 1) return false;
    if (cin === 0 || cout === 0 || g.h === 0 || g.w === 0) return false;
    if (this.#winograd !== "auto") return this.#winograd;
    // Measured (batch 64-128, 1 and 2 threads): faster for 8 to 128 input channels (1 to 96 output
    // channels) at 7x7 to 28x28 (8->8 @28: 36 vs 20 GFLOP/s; 16->16 @28: 45 vs 32); slower with
    // 1 input channel; other shapes were not measured.
    return cin >= 8 && g.h >= 7 && g.w >= 7;
  }

  /** The Winograd output tile (2 or 4) for an h x w image with cin input channels. */
  #winogradTileFor(h: number, w: number, cin: number): 2 | 4 {
    if (this.#winogradTile !== "auto") return this.#winogradTile;
    // Measured against F(2x2, 3x3) (forward, batch 64, best of 9 interleaved, loaded 2-core
    // machine): 1 thread 1.32 to 1.46x at 28x28 (32->32, 64->64, 96->32), 1.16 to 1.25x at 14x14
    // (64->64, 128->64), 1.10 to 1.20x at 7x7; 2 threads 1.42 to 1.52x, 1.08 to 1.21x, 1.02 to
    // 1.08x; slower on a few tiles of few channels (0.6 to 0.8x: 5 to 20 channels at 3x3 to 9x9,
    // batch 1 to 3).
    return h >= 7 && w >= 7 && cin >= 16 ? 4 : 2;
  }

  /**
   * y (n x cout x h x w) = the 3x3 stride-1 pad-1 convolution of x (n x cin x h x w) by Winograd
   * F(2x2, 3x3) or F(4x4, 3x3), plus bias (0 for none). The filter w is cout x cin x 3 x 3, or,
   * with `flip`, the forward filter (cin x cout x 3 x 3) whose input gradient this computes.
   */
  #winogradConv(
    x: number,
    w: number,
    flip: boolean,
    bias: number,
    y: number,
    n: number,
    cin: number,
    cout: number,
    h: number,
    wd: number,
  ): void {
    const k = this.#k;
    const four = this.#winogradTileFor(h, wd, cin) === 4;
    const side = four ? 4 : 2;
    const tiles = n * Math.ceil(h / side) * Math.ceil(wd / side);
    // Tiles a thread transforms and multiplies at a time: V and M (64 (cin + cout) bytes a tile
    // for F(2x2), 144 (cin + cout) for F(4x4)) about 1 MiB, a multiple of the micro-kernel's 8
    // columns (and of 12 for F(2x2), as before); for F(4x4), at most an even share of the work,
    // so that small batches still split into several pieces a thread (at 7x7, batch 64, 64->64
    // the 256 tiles would otherwise be 5 chunks of 56 for 2 threads).
    const share = Math.ceil(tiles / (this.threads * CHUNKS_PER_THREAD));
    const chunk = four
      ? Math.max(
        16,
        Math.min(240, Math.floor(7282 / (cin + cout) / 8) * 8, Math.ceil(share / 8) * 8),
      )
      : Math.max(48, Math.min(480, Math.floor(16384 / (cin + cout) / 12) * 12));
    const utBytes = k.winogradFilterBytes(side, cout, cin);
    const scratchBytes = k.winogradScratchBytes(side, cin, cout, wd, chunk);
    const ut = this.#heap.alloc(utBytes);
    try {
      // The filter transform, split over the effective output channels (6-row slivers).
      const [o, c, f] = flip ? [cin, cout, 1] : [cout, cin, 0];
      const macs = cin * cout * (four ? 200 : 30);
      this.#par("winogradFilter", cout, 6, macs >= this.#minMacs ? 0 : Infinity, (b, e) => [
        side,
        w,
        ut,
        o,
        c,
        f,
        b,
        e,
      ]);
      this.#parScratch(
        "winogradConv",
        tiles,
        chunk,
        n * cin * cout * h * wd * 9,
        scratchBytes,
        (b, e) => [x, ut, bias, y, cin, cout, h, wd, side, chunk, b, e, 0],
        10,
      );
    } finally {
      this.#heap.free(ut, utBytes);
    }
  }

  /** Whether the filter gradient of a convolution of geometry g runs by Winograd F(3x3, 2x2). */
  #useWinogradFilter(g: Conv2dGeometry): boolean {
    if (g.kh !== 3 || g.kw !== 3 || g.stride !== 1 || g.pad !== 1) return false;
    if (g.n === 0 || g.c === 0 || g.o === 0 || g.h === 0 || g.w === 0) return false;
    if (this.#winograd !== "auto") return this.#winograd;
    // Measured against the direct filter gradient (tiles: 2x2 output tiles over the batch; 1 and
    // 2 threads on a loaded 2-core machine, GFLOP/s counted as the direct convolution's): faster
    // at every UNet shape at batch 64 and 128, 1.5 to 3x from 8 input channels, mostly 2.2 to 2.9x
    // (batch 128, 1 thread: 16->16 @28 25 vs 10 GFLOP/s, 64->64 @14 35 vs 14, 64->64 @7 26 vs 12)
    // and 1.3x for the first layer, 1->16 @28. Small problems: 1.6 to 2.6x at 64 tiles (batch 4
    // at 7x7, 16 to 256 channels), even or slower at 16 tiles (0.84x for 256->256 @7, batch 1)
    // and below; one input channel: 0.9x at batch 1 (196 tiles), even at 4, 1.2x from 16 (3,136).
    const tiles = g.n * Math.ceil(g.h / 2) * Math.ceil(g.w / 2);
    return tiles >= (g.c === 1 ? 2048 : 64);
  }

  /**
   * dW (o x c x 3 x 3) of a 3x3 stride-1 pad-1 convolution of x by Winograd F(3x3, 2x2), from
   * the output gradient dy: for each of the 16 positions xi of a transformed tile, the GEMM
   * M[xi] = sum over 2x2 output tiles of (A dy A^T)[xi] times (B^T d B)[xi] (o x c), then
   * dW = G^T M G. The tiles (over the whole batch) are cut into at most 16 groups fixed by the
   * geometry alone; each group is one thread's work, and the group sums are added in order, so
   * the bits do not depend on the threads.
   */
  #winogradFilterGrad(x: number, dy: number, g: Conv2dGeometry): Storage {
    const k = this.#k;
    const { n, c, o, h } = g, wd = g.w;
    const tiles = n * Math.ceil(h / 2) * Math.ceil(wd / 2);
    // Tiles a thread transforms and multiplies at a time: the transformed x and dy (64 (c + o)
    // bytes a tile) about 1 MiB, 96 to 384 tiles (measured: the same speed from 96 up), a
    // multiple of 4 (the kernels' four tiles a vector).
    const chunk = Math.max(96, Math.min(384, Math.floor(16384 / (c + o) / 4) * 4));
    // At most 16 groups of at least 64 tiles, a multiple of 4, fixed by the geometry alone.
    const gsize = Math.ceil(tiles / Math.min(16, Math.ceil(tiles / 64)) / 4) * 4;
    const groups = Math.ceil(tiles / gsize), size = o * c * 9;
    const partial = this.#new(groups * size);
    const scratchBytes = k.winogradFilterGradScratchBytes(c, o, chunk);
    this.#parScratch(
      "winogradFilterGrad",
      groups,
      1,
      n * o * c * 9 * h * wd,
      scratchBytes,
      (b, e) => [x, dy, partial.ptr, c, o, h, wd, chunk, tiles, gsize, b, e, 0],
      10,
    );
    if (groups === 1) return partial;
    const out = this.reduceSum(partial, [groups, size], [1, size]);
    this.free(partial);
    return out;
  }

  /**
   * Whether a stride-1 convolution with cin input and cout output channels (the forward one, or
   * the input gradient's as a forward convolution with padding `pad`) runs by directConv.
   */
  #useDirect(g: Conv2dGeometry, cin: number, cout: number, pad: number): boolean {
    if (!this.#shortcuts || this.#winograd === true || g.stride !== 1) return false;
    if (pad > g.kh - 1 || pad > g.kw - 1 || cin === 0 || cout === 0) return false;
    // Measured at batch 64, 3x3 pad 1, 28x28, 1 and 2 threads (loaded 2-core machine, GFLOP/s as
    // the direct convolution's): 16->1 forward 4.5 vs 11.2 ms (1 thread; Winograd F(2x2, 3x3),
    // whose GEMM has M = 1) and 1.5 vs 8.1 (2), its input gradient 2.0 vs 2.9 ms and 1.5 vs 1.7
    // (implicit GEMM with K = 9); 1->16 forward 1.2 vs 2.0 ms and 1.5 vs 2.5 (K = 9). Other
    // shapes were not measured; the kernel's loads (one per multiply-add) lose to the GEMM's
    // register tiles once both channel counts are larger.
    return (cout <= 4 || cin === 1) && cout <= 64;
  }

  /**
   * y (n x cout x oh x ow) = the stride-1 convolution (padding `pad`) of x (n x cin x h x w) by
   * w (cout x cin x kh x kw), plus bias (0 for none), by directConv, split over images.
   */
  #directConv(
    x: number,
    w: number,
    bias: number,
    y: number,
    n: number,
    cin: number,
    cout: number,
    h: number,
    wd: number,
    kh: number,
    kw: number,
    pad: number,
  ): void {
    const k = this.#k;
    const oh = h + 2 * pad - kh + 1, ow = wd + 2 * pad - kw + 1;
    const bytes = k.directConvScratchBytes(cout, h, wd, kh, kw, pad);
    this.#parScratch(
      "directConv",
      n,
      1,
      n * cin * cout * kh * kw * oh * ow,
      bytes,
      (b, e) => [x, w, bias, y, cin, cout, h, wd, kh, kw, pad, b, e, 0],
      11,
    );
  }

  conv2d(x: Storage, w: Storage, bias: Storage | null, g: Conv2dGeometry): Storage {
    const xp = this.#p(x), wp = this.#p(w), bp = bias ? this.#p(bias) : 0;
    const { n, c, o, oh, ow } = g;
    const ohw = oh * ow, ckk = c * g.kh * g.kw;
    // The bias fill or the GEMM writes every output unless there is neither.
    const out = bp || ckk > 0 ? this.#new(n * o * ohw) : this.alloc(n * o * ohw) as WasmStorage;
    if (out.length === 0) return out;
    if (this.#useDirect(g, c, o, g.pad)) {
      this.#directConv(xp, wp, bp, out.ptr, n, c, o, g.h, g.w, g.kh, g.kw, g.pad);
      return out;
    }
    if (this.#useWinograd(g, c, o)) {
      this.#winogradConv(xp, wp, false, bp, out.ptr, n, c, o, g.h, g.w);
      return out;
    }
    if (bp) {
      for (let ni = 0; ni < n; ni++) {
        const yp = out.ptr + ni * o * ohw * 4;
        this.#par("fillRows", o, 1, this.#minElements / ohw, (b, e) => [yp, bp, ohw, b, e]);
      }
    }
    if (ckk === 0) return out;
    // One implicit GEMM over the whole batch: W (o x ckk) times the im2col view of every image.
    this.#batchedConv(g, wp, ckk, 1, xp, out.ptr, bp ? 1 : 0);
    return out;
  }

  conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry): Storage {
    const dp = this.#p(dy), wp = this.#p(w);
    const { n, c, h, o, oh, ow, kh, kw } = g;
    const ohw = oh * ow, hw = h * g.w, kk = kh * kw, ckk = c * kk;
    const pointwise = kh === 1 && kw === 1 && g.stride === 1 && g.pad === 0;
    const flipped = !pointwise && g.stride === 1 && kh === kw && g.pad <= kh - 1;
    const out = flipped || pointwise || this.#shortcuts
      ? this.#new(n * c * hw)
      : this.alloc(n * c * hw) as WasmStorage;
    if (out.length === 0) return out;
    if (o === 0 || ohw === 0) {
      this.fill(out, 0);
      return out;
    }
    // The direct kernel before Winograd, as in conv2d.
    const direct = flipped && this.#useDirect(g, o, c, kh - 1 - g.pad);
    if (!direct && this.#useWinograd(g, o, c)) {
      // dx is the forward convolution of dy with the flipped, transposed filter (see below).
      this.#winogradConv(dp, wp, true, 0, out.ptr, n, o, c, h, g.w);
      return out;
    }
    if (pointwise) {
      // dx = W^T dy, image by image, as one batched GEMM (a 1x1 im2col view is the image).
      const gd = { ...g, c: o, h: oh, w: ow, o: c, oh: h, ow: g.w };
      this.#batchedConv(gd, wp, 1, c, dp, out.ptr, 0);
      return out;
    }
    if (flipped) {
      // Stride 1: dx is the forward convolution of dy (padded by k - 1 - pad) with the filter
      // flipped in space and transposed in channels, one implicit GEMM over the batch.
      const wf = this.#new(o * ckk);
      this.#par(
        "flipFilter",
        c,
        1,
        this.#minElements / (o * kk),
        (b, e) => [wp, wf.ptr, o, c, kk, b, e],
      );
      const gd = { ...g, c: o, h: oh, w: ow, o: c, pad: kh - 1 - g.pad, oh: h, ow: g.w };
      if (direct) {
        this.#directConv(dp, wf.ptr, 0, out.ptr, n, o, c, oh, ow, kh, kw, gd.pad);
      } else this.#batchedConv(gd, wf.ptr, o * kk, 1, dp, out.ptr, 0);
      this.free(wf);
      return out;
    }
    this.#geometry(g);
    // Otherwise: the im2col-shaped gradient W^T dy, added back into the image row by row.
    if (this.#shortcuts) {
      // Image by image, the images split over threads; splitting each image's GEMM and col2im
      // instead costs a synchronisation per image (measured at batch 64, 3x3 stride 2 pad 1, 2
      // threads on a loaded 2-core machine: 16->16 @28 4.0 to 4.9 vs 8.1 to 13.2 ms, 32->32
      // @14 5.6 to 7.5 vs 8.4 to 14.3 ms; the same on 1 thread).
      const bytes = this.#k.gemmWorkspaceBytes() + ckk * ohw * 4;
      const geo = this.#geo;
      this.#parScratch(
        "convDataPerImage",
        n,
        1,
        n * o * ckk * ohw,
        bytes,
        (b, e) => [dp, wp, out.ptr, o, geo, b, e, 0],
        5,
      );
      return out;
    }
    const col = this.#new(ckk * ohw);
    for (let ni = 0; ni < n; ni++) {
      const db = dp + ni * o * ohw * 4, xb = out.ptr + ni * c * hw * 4;
      const geo = this.#geo;
      this.#gemm(ckk, ohw, o, wp, 1, ckk, 0, db, ohw, 1, col.ptr, ohw, 0);
      this.#par(
        "col2im",
        c,
        1,
        this.#minElements / (kk * ohw),
        (b, e) => [col.ptr, geo, xb, b, e],
      );
    }
    this.free(col);
    return out;
  }

  conv2dBackwardFilter(x: Storage, dy: Storage, g: Conv2dGeometry): Storage {
    const xp = this.#p(x), dp = this.#p(dy);
    const { n, c, o, oh, ow } = g;
    const ckk = c * g.kh * g.kw, ohw = oh * ow;
    if (o * ckk === 0 || ohw === 0 || n === 0) return this.alloc(o * ckk);
    if (this.#useWinogradFilter(g)) return this.#winogradFilterGrad(xp, dp, g);
    this.#geometry(g);
    const pointwise = g.kh === 1 && g.kw === 1 && g.stride === 1 && g.pad === 0;
    // Images in at most 16 groups (fixed by n alone, so the bits do not depend on the threads):
    // each group's dW = sum of dy[i] times the transposed im2col of x[i] is one thread's work,
    // then the group sums are added in order.
    const gsize = Math.ceil(n / Math.min(n, 16)), groups = Math.ceil(n / gsize);
    const partial = groups === 1 ? this.#new(o * ckk) : this.#new(groups * o * ckk);
    const scratchBytes = this.#k.gemmWorkspaceBytes() + (pointwise ? 0 : ckk * ohw * 4);
    const geo = this.#geo, pw = pointwise ? 1 : 0;
    this.#parScratch(
      "convFilterGrad",
      groups,
      1,
      n * o * ckk * ohw,
      scratchBytes,
      (b, e) => [xp, dp, partial.ptr, n, gsize, o, pw, geo, b, e, 0],
      8,
    );
    if (groups === 1) return partial;
    const out = this.reduceSum(partial, [groups, o * ckk], [1, o * ckk]);
    this.free(partial);
    return out;
  }

  // ---- normalisation and softmax ----------------------------------------------------------

  /** The pointer of a group norm's optional shift (0 for none), its length checked. */
  #gnShift(g: GroupNormGeometry, shift?: Storage): number {
    if (!shift) return 0;
    checkGroupNormShift(g, shift.length);
    return this.#p(shift);
  }

  groupNorm(x: Storage, p: GroupNormParams, g: GroupNormGeometry): GroupNormResult {
    const { gamma, beta, shift } = p;
    const xs = this.#s(x), gp = this.#p(gamma), bp = this.#p(beta), sp = this.#gnShift(g, shift);
    const y = this.#new(xs.length), mean = this.#new(g.n * g.groups);
    const rstd = this.#new(g.n * g.groups);
    const rowSize = (g.c / g.groups) * g.hw, silu = g.silu ? 1 : 0;
    this.#par(
      "groupNorm",
      g.n * g.groups,
      1,
      Math.ceil(this.#minElements / rowSize),
      (b, e) => [
        xs.ptr,
        gp,
        bp,
        sp,
        y.ptr,
        mean.ptr,
        rstd.ptr,
        g.c,
        g.hw,
        g.groups,
        g.eps,
        silu,
        b,
        e,
      ],
    );
    return { y, mean, rstd };
  }

  groupNormBackward(dy: Storage, saved: GroupNormSaved, g: GroupNormGeometry): GroupNormGrads {
    const { x, gamma, beta, shift, mean, rstd } = saved;
    const xs = this.#s(x), dp = this.#p(dy), gp = this.#p(gamma);
    const mp = this.#p(mean), rp = this.#p(rstd), sp = this.#gnShift(g, shift);
    if (g.silu && !beta) throw new TypeError("groupNormBackward: a fused SiLU needs beta");
    const bp = g.silu ? this.#p(beta!) : 0;
    const dx = this.#new(xs.length);
    const dgPart = this.#new(g.n * g.c), dbPart = this.#new(g.n * g.c);
    const dshift = shift ? this.#new(g.n * g.c) : null;
    const rowSize = (g.c / g.groups) * g.hw;
    this.#par(
      "groupNormBackward",
      g.n * g.groups,
      1,
      Math.ceil(this.#minElements / rowSize),
      (b, e) => [
        dp,
        xs.ptr,
        gp,
        bp,
        sp,
        mp,
        rp,
        dx.ptr,
        dgPart.ptr,
        dbPart.ptr,
        dshift ? dshift.ptr : 0,
        g.c,
        g.hw,
        g.groups,
        g.silu ? 1 : 0,
        b,
        e,
      ],
    );
    const dgamma = this.reduceSum(dgPart, [g.n, g.c], [1, g.c]);
    const dbeta = this.reduceSum(dbPart, [g.n, g.c], [1, g.c]);
    this.free(dgPart);
    this.free(dbPart);
    return dshift ? { dx, dgamma, dbeta, dshift } : { dx, dgamma, dbeta };
  }

  softmax(x: Storage, rows: number, cols: number): Storage {
    const xp = this.#p(x), out = this.#new(rows * cols);
    if (cols === 0) return out;
    this.#par(
      "softmax",
      rows,
      1,
      Math.ceil(this.#minElements / cols),
      (b, e) => [xp, out.ptr, cols, b, e],
    );
    return out;
  }

  softmaxBackward(y: Storage, dy: Storage, rows: number, cols: number): Storage {
    const yp = this.#p(y), dp = this.#p(dy), out = this.#new(rows * cols);
    if (cols === 0) return out;
    this.#par(
      "softmaxBackward",
      rows,
      1,
      Math.ceil(this.#minElements / cols),
      (b, e) => [yp, dp, out.ptr, cols, b, e],
    );
    return out;
  }

  // ---- resampling and layout --------------------------------------------------------------

  upsampleNearest(x: Storage, u: UpsampleSpec): Storage {
    const { planes, h, w, factor } = u;
    const xp = this.#p(x), out = this.#new(planes * h * w * factor * factor);
    this.#par(
      "upsampleNearest",
      planes,
      1,
      Math.ceil(this.#minElements / (h * w * factor * factor)),
      (b, e) => [xp, out.ptr, h, w, factor, b, e],
    );
    return out;
  }

  upsampleNearestBackward(dy: Storage, u: UpsampleSpec): Storage {
    const { planes, h, w, factor } = u;
    const dp = this.#p(dy), out = this.#new(planes * h * w);
    if (factor === 2) {
      this.#par(
        "upsample2Backward",
        planes,
        1,
        Math.ceil(this.#minElements / (h * w * 4)),
        (b, e) => [dp, out.ptr, h, w, b, e],
      );
      return out;
    }
    this.#par(
      "upsampleNearestBackward",
      planes,
      1,
      Math.ceil(this.#minElements / (h * w * factor * factor)),
      (b, e) => [dp, out.ptr, h, w, factor, b, e],
    );
    return out;
  }

  /** Copies `rows` rows of `len` elements between strided layouts. */
  #copyRows(
    src: number,
    srcStride: number,
    dst: number,
    dstStride: number,
    len: number,
    rows: number,
  ) {
    if (len === 0 || rows === 0) return;
    this.#par(
      "copyRows",
      rows,
      1,
      Math.ceil(this.#minElements / len),
      (b, e) => [src, srcStride * 4, dst, dstStride * 4, len * 4, b, e],
    );
  }

  concat(xs: readonly Storage[], c: ConcatSpec): Storage {
    const { outer, sizes, inner } = c;
    const total = sizes.reduce((a, b) => a + b, 0);
    const ptrs = xs.map((x) => this.#p(x));
    const out = this.#new(outer * total * inner);
    let off = 0;
    ptrs.forEach((p, i) => {
      const len = sizes[i] * inner;
      this.#copyRows(p, len, out.ptr + off * 4, total * inner, len, outer);
      off += len;
    });
    return out;
  }

  slice(x: Storage, sl: SliceSpec): Storage {
    const { outer, axis, start, len, inner } = sl;
    const p = this.#p(x), out = this.#new(outer * len * inner);
    this.#copyRows(p + start * inner * 4, axis * inner, out.ptr, len * inner, len * inner, outer);
    return out;
  }

  gather(table: Storage, index: Storage): Storage {
    const tp = this.#p(table), ix = this.#s(index), out = this.#new(ix.length);
    this.#each("gather", ix.length, (b, e) => [tp, ix.ptr, out.ptr, b, e]);
    return out;
  }

  gatherRows(src: Storage, index: Storage, rowSize: number): Storage {
    const sp = this.#p(src), ix = this.#s(index), out = this.#new(ix.length * rowSize);
    this.#par(
      "gatherRows",
      ix.length,
      1,
      Math.ceil(this.#minElements / Math.max(1, rowSize)),
      (b, e) => [sp, ix.ptr, out.ptr, rowSize, b, e],
    );
    return out;
  }

  // ---- losses -----------------------------------------------------------------------------

  loss(spec: LossSpec, pred: Storage, target: Storage): Storage {
    const { kind, delta } = spec;
    const ps = this.#s(pred), out = this.#new(1);
    this.#k.loss(LOSS_CODES[kind], ps.ptr, this.#p(target), ps.length, delta, out.ptr);
    return out;
  }

  lossBackward(spec: LossSpec, pred: Storage, target: Storage, scale: Storage): Storage {
    const { kind, delta } = spec;
    const ps = this.#s(pred), tp = this.#p(target), sp = this.#p(scale);
    const out = this.#new(ps.length), code = LOSS_CODES[kind];
    this.#each(
      "lossBackward",
      ps.length,
      (b, e) => [code, ps.ptr, tp, ps.length, delta, sp, out.ptr, b, e],
    );
    return out;
  }

  // ---- optimisation -----------------------------------------------------------------------

  adam(b: AdamBuffers, s: AdamSettings): void {
    const { params, grads, m, v } = b;
    const ps = this.#s(params), gp = this.#p(grads), mp = this.#p(m), vp = this.#p(v);
    const clip = s.clip ? this.#p(s.clip.gradSquaredNorm) : 0;
    const bc1 = 1 - s.beta1 ** s.step, bc2 = 1 - s.beta2 ** s.step;
    this.#each("adam", ps.length, (b, e) => [
      ps.ptr,
      gp,
      mp,
      vp,
      s.lr,
      s.beta1,
      s.beta2,
      s.eps,
      s.weightDecay,
      s.decoupled ? 1 : 0,
      bc1,
      bc2,
      clip,
      s.clip ? s.clip.maxNorm : 0,
      b,
      e,
    ]);
  }

  ema(target: Storage, source: Storage, decay: number): void {
    const t = this.#s(target), sp = this.#p(source);
    this.#each("ema", t.length, (b, e) => [t.ptr, sp, decay, b, e]);
  }

  // ---- random numbers ---------------------------------------------------------------------

  randomUniform(out: Storage, draw: RandomDraw): void {
    const o = this.#s(out), [k0, k1] = seedKey(draw.seed);
    this.#each(
      "randomUniform",
      o.length,
      (b, e) => [o.ptr, o.length, draw.counter, draw.stream, k0, k1, b, e],
    );
  }

  randomNormal(out: Storage, draw: RandomDraw): void {
    const o = this.#s(out), [k0, k1] = seedKey(draw.seed);
    this.#each(
      "randomNormal",
      o.length,
      (b, e) => [o.ptr, o.length, draw.counter, draw.stream, k0, k1, b, e],
    );
  }

  randomInt(out: Storage, draw: RandomDraw, lo: number, hi: number): void {
    const o = this.#s(out), [k0, k1] = seedKey(draw.seed);
    this.#each(
      "randomInt",
      o.length,
      (b, e) => [o.ptr, o.length, draw.counter, draw.stream, k0, k1, lo, hi, b, e],
    );
  }

  flush(): void {}

  dispose(): void {
    this.#disposed = true;
    this.#scopes = [];
    this.#pool?.close();
  }
}

/**
 * Creates a wasm backend and waits until its worker threads listen. Call `dispose()` when done
 * with it to stop them at once; otherwise they stop after a moment without work.
 */
export async function createWasmBackend(options: WasmBackendOptions = {}): Promise<Backend> {
  const be = new WasmBackend(options);
  await be.ready();
  return be;
}
