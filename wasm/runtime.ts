/**
 * The wasm backend's runtime, shared by its op groups (wasm/ops/): the one WebAssembly memory and
 * its allocator (wasm/heap.ts), the kernel instance (wasm/kernels.ts), the block where the host
 * writes small parameters, the worker threads (wasm/threads.ts) with the helpers that split a
 * kernel's range over them, the GEMM scratch, the scopes and the checks on storage handles.
 *
 * Large kernels are split over worker threads that share the memory: each kernel takes the range
 * of rows or elements it computes, the main thread computes one share and joins the others with
 * Atomics. The split never changes a result: one thread and many give the same bits. Where shared
 * memory is unavailable, or with `threads: 1`, everything runs on the calling thread.
 *
 * @module
 */

import type { Conv2dGeometry, Storage } from "../src/backend.ts";
import { ScopeStack } from "../src/backends/scopes.ts";
import type { ConvPolicyOptions } from "./conv_policy.ts";
import { Heap } from "./heap.ts";
import { instantiate, kernelModule, type Kernels } from "./kernels.ts";
import { CHUNKS_PER_THREAD, MAX_CHUNKS, ThreadPool } from "./threads.ts";

const PAGE = 65536;
/** Bytes of the block where the host writes small parameters (shapes, strides, geometry). */
const PARAMS_BYTES = 1024;
/** Ranks above this (after merging axes) are refused. */
const MAX_RANK = (PARAMS_BYTES / 4 - 1) / 3 | 0;
/**
 * Element-wise work below this many elements stays on one thread (by default). The spiral demo's
 * activations (256 x 96 = 24,576 values) and its Adam update (28,514 parameters) are split, and a
 * training step of its network on two threads takes 0.93x the time it took with 32,768 here
 * (docs/performance.md).
 */
const PARALLEL_ELEMENTS = 1 << 14;
/** GEMMs below this many multiply-adds stay on one thread (by default). */
const PARALLEL_MACS = 1 << 17;
/**
 * Normal draws below this many stay on one thread (by default): each costs about 85 cycles (a
 * logarithm, a square root and a sine or cosine in double precision, as the reference computes
 * them), far more than an element-wise op.
 */
const PARALLEL_DRAWS = 1 << 11;

/** The kernels that can be split over threads, by index (the workers' job table). */
const PARALLEL_KERNELS = [
  "gemm",
  "flipFilter",
  "col2im",
  "convFilterGrad",
  "unary",
  "unaryBackward",
  "binary",
  "affine",
  "axpy",
  "clamp",
  "combine",
  "permute",
  "copyRows",
  "fill",
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
  "gemmBatch",
  "gemmOuterN",
  "gemmOuterM",
] as const;
/** The name of a kernel that can be split over threads. */
export type ParallelKernel = typeof PARALLEL_KERNELS[number];
const KERNEL_INDEX = new Map<string, number>(PARALLEL_KERNELS.map((n, i) => [n, i]));

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
   * multiply-adds for GEMMs, normal draws (default 16384, 131072 and 2048; tests use 0 to split
   * everything).
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

/** An allocation in the memory. */
export class Block {
  /** Byte offset in the memory. */
  readonly ptr: number;
  /** Size in bytes. */
  readonly bytes: number;
  /** True once it went back to the allocator. */
  released = false;
  /** Records an allocation of `bytes` at `ptr`. */
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
  /** The runtime that owns it. */
  readonly owner: WasmRuntime;
  /** Wraps an allocation; use the runtime's methods to make storage. */
  constructor(owner: WasmRuntime, block: Block, ptr: number, length: number, isView: boolean) {
    this.owner = owner;
    this.block = block;
    this.ptr = ptr;
    this.length = length;
    this.isView = isView;
  }
}

/** The memory, kernels and threads of one wasm backend, and the helpers its op groups share. */
export class WasmRuntime {
  /** True when the relaxed-SIMD build runs. */
  readonly relaxedSimd: boolean;
  /** Threads that compute (the calling one included). */
  readonly threads: number;
  /** The memory every tensor lives in. */
  readonly memory: WebAssembly.Memory;
  /** The allocator over {@link memory}. */
  readonly heap: Heap;
  /** The kernels (the main thread's instance). */
  readonly k: Kernels;
  /** The worker threads, or null when everything runs on the calling thread. */
  readonly pool: ThreadPool | null;
  /** Element-wise work below this many elements stays on one thread. */
  readonly minElements: number;
  /** GEMMs below this many multiply-adds stay on one thread. */
  readonly minMacs: number;
  /** Normal draws below this many stay on one thread. */
  readonly minDraws: number;
  /** The options the choice of convolution algorithm depends on. */
  readonly conv: ConvPolicyOptions;
  /** Whether matrix products of few columns or a short inner size run by the skinny kernels. */
  readonly skinnyGemm: boolean;
  /** A float32 view of the whole memory (renewed when it grows). */
  f32: Float32Array;
  /** An int32 view of the whole memory (renewed when it grows). */
  i32: Int32Array;
  /** Byte offset of the parameter block. */
  readonly params: number;
  /** Byte offset of the convolution geometry block. */
  readonly geo: number;
  readonly #scopes = new ScopeStack<Block>("wasm");
  readonly #release = (b: Block): void => {
    b.released = true;
    this.heap.free(b.ptr, b.bytes);
  };
  #work: number[] = [];
  #gemmTag = 0;
  #disposed = false;

  /**
   * A runtime with its own memory. Synchronous: worker threads start in the background and take
   * work once they listen (see {@link ready}).
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
    // A browser page that is not cross-origin isolated may build a shared memory but not post it
    // to a worker; Deno defines no `crossOriginIsolated`, so this changes nothing there.
    const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
    if (wanted > 1 && isolated !== false) {
      try {
        memory = new WebAssembly.Memory({ initial, maximum: maxPages, shared: true });
      } catch {
        memory = null; // no shared memory here: one thread
      }
    }
    const shared = memory !== null;
    this.memory = memory ?? new WebAssembly.Memory({ initial });
    const choice = kernelModule(shared, options.relaxedSimd);
    this.relaxedSimd = choice.relaxed;
    this.threads = shared ? wanted : 1;
    this.f32 = new Float32Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
    this.k = instantiate(choice.module, this.memory);
    this.heap = new Heap(this.memory, this.k.heapBase(), maxPages, () => {
      this.f32 = new Float32Array(this.memory.buffer);
      this.i32 = new Int32Array(this.memory.buffer);
    });
    this.params = this.heap.alloc(PARAMS_BYTES);
    this.geo = this.heap.alloc(64);
    this.minElements = options.parallelThreshold ?? PARALLEL_ELEMENTS;
    this.minMacs = options.parallelThreshold ?? PARALLEL_MACS;
    this.minDraws = options.parallelThreshold ?? PARALLEL_DRAWS;
    const tile = options.winogradTile ?? "auto";
    if (tile !== 2 && tile !== 4 && tile !== "auto") {
      throw new RangeError(`wasm backend: winogradTile must be 2, 4 or "auto", got ${tile}`);
    }
    this.conv = {
      winograd: options.winograd ?? "auto",
      winogradTile: tile,
      convShortcuts: options.convShortcuts ?? true,
    };
    this.skinnyGemm = options.skinnyGemm ?? true;
    this.pool = shared
      ? new ThreadPool(
        choice.module,
        this.memory,
        (bytes) => this.heap.alloc(bytes),
        this.threads - 1,
        this.k as unknown as Record<string, unknown>,
        PARALLEL_KERNELS,
        { idleMs: options.threadIdleMs },
      )
      : null;
  }

  /** Starts the worker threads and resolves once they take work (at once with one thread). */
  ready(): Promise<void> {
    return this.pool ? this.pool.start() : Promise.resolve();
  }

  // ---- splitting work over the threads ----------------------------------------------------

  /**
   * Runs kernel `name` over [0, total): on this thread alone when the workers do not listen or
   * `total` is below `min`, otherwise cut into chunks (multiples of `grain`, a few per thread)
   * that every thread claims in turn. `args(begin, end)` gives the kernel's arguments, with begin
   * and end at `beginArg` and `beginArg + 1` (default: the last two); `perThread` gives a value
   * each thread passes as the last argument instead (its GEMM scratch).
   */
  par(
    name: ParallelKernel,
    total: number,
    grain: number,
    min: number,
    args: (begin: number, end: number) => number[],
    beginArg?: number,
    perThread?: (thread: number) => number,
  ): void {
    const fn = this.k[name] as (...a: number[]) => void;
    const pool = this.pool;
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
   * {@link par} for a kernel that takes a scratch block as its last argument: split over the
   * threads when the work (`macs` multiply-adds) is large enough, with one block of `bytes` for
   * each thread that runs, freed afterwards.
   */
  parScratch(
    name: ParallelKernel,
    total: number,
    grain: number,
    macs: number,
    bytes: number,
    args: (begin: number, end: number) => number[],
    beginArg: number,
  ): void {
    const parallel = this.pool !== null && this.pool.active() && macs >= this.minMacs;
    const scratch = Array.from(
      { length: parallel ? this.threads : 1 },
      () => this.heap.alloc(bytes),
    );
    try {
      this.par(name, total, grain, parallel ? 0 : Infinity, args, beginArg, (t) => scratch[t]);
    } finally {
      for (const b of scratch) this.heap.free(b, bytes);
    }
  }

  /** An element-wise kernel over [0, n), split over threads when large. */
  each(name: ParallelKernel, n: number, args: (begin: number, end: number) => number[]): void {
    this.par(name, n, 16, this.minElements, args);
  }

  /**
   * The tag of a new product (see `gemm` in wasm/kernels.ts): every chunk of the product gets it,
   * and no thread's GEMM scratch holds it from an earlier one (tags count up; when they run out,
   * every scratch forgets its tag before they start again).
   */
  gemmTag(): number {
    if (this.#gemmTag >= 0x7fffffff) {
      this.#gemmTag = 0;
      for (const w of this.#work) this.k.gemmForget(w);
    }
    return ++this.#gemmTag;
  }

  /** Thread t's GEMM scratch; every thread's is allocated at once, outside every scope. */
  gemmWorkspace(t: number): number {
    while (this.#work.length < this.threads) {
      this.#work.push(this.heap.alloc(this.k.gemmWorkspaceBytes()));
    }
    return this.#work[t];
  }

  // ---- storage ----------------------------------------------------------------------------

  /** A new allocation of `bytes`, recorded in the innermost scope. */
  #block(bytes: number): Block {
    if (this.#disposed) throw new Error("wasm backend: used after dispose()");
    const b = new Block(this.heap.alloc(bytes), bytes);
    this.#scopes.track(b);
    return b;
  }

  /** New storage of `length` elements, its contents undefined (the kernel writes them all). */
  uninit(length: number): WasmStorage {
    if (!Number.isInteger(length) || length < 0) {
      throw new RangeError(`wasm backend: cannot allocate ${length} elements`);
    }
    const b = this.#block(length * 4);
    return new WasmStorage(this, b, b.ptr, length, false);
  }

  /** New zero-filled storage of `length` elements. */
  zeros(length: number): WasmStorage {
    const s = this.uninit(length);
    this.f32.fill(0, s.ptr >> 2, (s.ptr >> 2) + length);
    return s;
  }

  /** A view of `length` elements of `s` from element `offset` on (bounds checked by the caller). */
  view(s: WasmStorage, offset: number, length: number): WasmStorage {
    return new WasmStorage(this, s.block, s.ptr + offset * 4, length, true);
  }

  /** Checks that `s` is live storage of this runtime and returns it. */
  s(s: Storage): WasmStorage {
    if (!(s instanceof WasmStorage) || s.owner !== this) {
      throw new TypeError("wasm backend: got storage from another backend");
    }
    if (s.block.released) throw new Error("wasm backend: storage used after it was freed");
    return s;
  }

  /** The byte offset of live storage `s` of this runtime. */
  p(s: Storage): number {
    return this.s(s).ptr;
  }

  /** Releases the allocation of `s` (nothing for a view). */
  free(s: Storage): void {
    const w = this.s(s);
    if (w.isView) return;
    w.block.released = true;
    this.heap.free(w.block.ptr, w.block.bytes);
  }

  /** Opens a scope. */
  beginScope(): void {
    this.#scopes.begin();
  }

  /** Closes the innermost scope, releasing its allocations except those of `keep`. */
  endScope(keep: readonly Storage[]): void {
    const kept = new Set<Block>();
    for (const k of keep) kept.add(this.s(k).block);
    this.#scopes.end(kept, this.#release);
  }

  // ---- parameters -------------------------------------------------------------------------

  /** Writes i32 values into the parameter block and returns its byte offset. */
  setParams(values: readonly number[]): number {
    this.i32.set(values, this.params >> 2);
    return this.params;
  }

  /** Writes an n-d loop description (rank, shape, then each stride list) into the parameters. */
  loop(shape: readonly number[], strides: readonly (readonly number[])[]): number {
    if (shape.length > MAX_RANK) {
      throw new RangeError(`wasm backend: rank ${shape.length} is above ${MAX_RANK}`);
    }
    return this.setParams([shape.length, ...shape, ...strides.flat()]);
  }

  /** Writes a convolution's geometry (and the batched GEMM's image strides) into its block. */
  geometry(g: Omit<Conv2dGeometry, "n">, xstride = 0, cstride = 0): void {
    this.i32.set(
      [g.c, g.h, g.w, g.kh, g.kw, g.stride, g.pad, g.oh, g.ow, xstride, cstride],
      this.geo >> 2,
    );
  }

  /** Refuses further allocations, forgets the scopes and stops the worker threads. */
  dispose(): void {
    this.#disposed = true;
    this.#scopes.clear();
    this.pool?.close();
  }
}
